"""The ``otamodel`` command.

Subcommands live in sibling modules (``records``, ``crypto``, ``patch``, ``model``, ``check``);
each registers itself on :data:`main`.

Exit status (CLI-1): 0 ok, 1 a negative result (a property violated, lint problems, an invalid
signature), 2 bad input or usage (one line on stderr naming the input and where in it), 3 a
documented bound was hit (the message names the option that raises it), 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM); a closed standard output (``| head``) ends quietly with
141, the status of a process stopped by SIGPIPE; 70 is an internal error (a bug in otamodel,
one line; ``OTAMODEL_TRACEBACK=1`` shows the traceback). Temporary files are removed in every
case.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any, NoReturn, TypeVar

import click

from otamodel.errors import BoundError, OtaModelError, name_input

_F = TypeVar("_F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_NEGATIVE = 1
EXIT_BAD_INPUT = 2
EXIT_BOUND = 3
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug, never the user's input
EXIT_INTERRUPTED = 130
EXIT_PIPE = 128 + signal.SIGPIPE
EXIT_TERMINATED = 128 + signal.SIGTERM


class _PipeClosed(BaseException):
    """Standard output was closed by the reader (click would turn EPIPE into exit 1)."""


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so that ``finally`` blocks remove temporary files."""


def _on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Terminated


def _fail(message: str, code: int) -> NoReturn:
    with contextlib.suppress(OSError, ValueError):
        click.echo(message.replace("\n", " ").strip(), err=True)
    sys.exit(code)


def _quiet_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the interpreter's final flush is silent."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _usage_line(exc: click.ClickException) -> str:
    ctx = getattr(exc, "ctx", None)
    where = f"{ctx.command_path}: " if ctx is not None else ""
    return f"error: {where}{exc.format_message()}"


_COMMANDS = {
    "manifest": "records",
    "db": "records",
    "bootctl": "records",
    "keygen": "crypto",
    "sign": "crypto",
    "verify": "crypto",
    "hex2bin": "crypto",
    "hexmerge": "crypto",
    "patch": "patch",
    "simulate": "model",
    "diagram": "model",
    "check": "check",
    "replay": "check",
    "report": "check",
    "explore": "explore",
    "cuts": "cuts",
    "release": "release",
    "serve": "release",
    "sweep": "sweep",
    "scenarios": "scenarios",
}
"""Which module defines a command: a command imports only its own module (and what that
needs), so ``otamodel patch apply`` starts without the model, rich or cryptography. A
command missing here is found by importing every command module."""


class _OtaGroup(click.Group):
    """A click group whose errors are one line with a documented exit status (CLI-1) and
    that imports a command's module only when the command is used."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            module = _COMMANDS.get(cmd_name)
            if module is not None:
                _load(module)
            if cmd_name not in self.commands:
                _register()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register()
        return super().list_commands(ctx)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        from otamodel._io import cleanup_temporaries

        previous = None
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            cleanup_temporaries()
            _fail("interrupted", EXIT_INTERRUPTED)
        except click.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
                click.echo(ctx.get_help())  # a bare group: its help, as click 8.1 did
                sys.exit(EXIT_OK)
            _fail(_usage_line(exc), exc.exit_code if exc.exit_code != 1 else EXIT_BAD_INPUT)
        except BoundError as exc:
            _fail(f"error: bound: {exc}", EXIT_BOUND)
        except OtaModelError as exc:
            _fail(f"error: {exc}", EXIT_BAD_INPUT)
        except (BrokenPipeError, _PipeClosed):
            _quiet_stdout()
            sys.exit(EXIT_PIPE)
        except KeyboardInterrupt:
            cleanup_temporaries()
            _fail("interrupted", EXIT_INTERRUPTED)
        except _Terminated:
            cleanup_temporaries()
            _fail("terminated", EXIT_TERMINATED)
        except MemoryError:
            cleanup_temporaries()
            _fail("error: bound: out of memory (lower the input size or the bounds)", EXIT_BOUND)
        except RecursionError:
            _fail("error: input nested too deeply", EXIT_BAD_INPUT)
        except OSError as exc:
            name = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            _fail(f"error:{name}: {exc.strerror or exc}", EXIT_BAD_INPUT)
        except Exception as exc:
            if os.environ.get("OTAMODEL_TRACEBACK"):
                raise
            _fail(
                f"error: internal error (a bug in otamodel; OTAMODEL_TRACEBACK=1 shows where): "
                f"{type(exc).__name__}: {exc}",
                EXIT_INTERNAL,
            )
        finally:
            cleanup_temporaries()
            if previous is not None:
                with contextlib.suppress(ValueError, TypeError):
                    signal.signal(signal.SIGTERM, previous)
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _PipeClosed from None


@contextlib.contextmanager
def about_input(source: object) -> Iterator[None]:
    """Name the user's input ``source`` in any format error raised inside the block (IO-7)."""
    try:
        yield
    except OtaModelError as exc:
        name_input(exc, str(source))
        raise


def json_option(
    help_text: str = "Print JSON instead (to FILE if given; - is stdout).",
    dest: str = "json_out",
) -> Callable[[_F], _F]:
    """``--json [FILE]``: JSON output, to standard output by default (CLI-2)."""
    return click.option(
        "--json",
        dest,
        is_flag=False,
        flag_value="-",
        default=None,
        metavar="[FILE]",
        help=help_text,
    )


class ScenarioType(click.ParamType):  # type: ignore[type-arg]
    """A shipped scenario's name, or a TOML/JSON scenario file read within the bounds
    (BOUND-5..BOUND-7); ``--help`` lists the names."""

    name = "scenario"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(_scenario_names()) + "|FILE.toml|FILE.json]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value)
        if text.lower().endswith((".toml", ".json")):
            _check_scenario_file(text)
            return text
        names = _scenario_names()
        if text not in names:
            self.fail(
                f"unknown scenario {text!r} (known: {', '.join(names)}, or a .toml/.json file)",
                param,
                ctx,
            )
        return text

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(n) for n in _scenario_names() if n.startswith(incomplete)]


def _scenario_names() -> list[str]:
    from importlib import resources

    folder = resources.files("otamodel") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _check_scenario_file(path: str) -> None:
    """Read a scenario file within the bounds and warn when its budgets make a long search."""
    from otamodel._limits import WARN_BUDGET_TOTAL, check_scenario_spec, read_document
    from otamodel.errors import ScenarioError

    spec = read_document(path, ScenarioError)
    total = check_scenario_spec(spec, path, ScenarioError)
    if total > WARN_BUDGET_TOTAL:
        click.echo(f"warning: {path}: {_describe_estimate(spec, total)}", err=True)


def _describe_estimate(spec: Any, total: int, cap: int = 20_000) -> str:
    """BOUND-7: estimate the state count of a large budget from two small searches (the same
    scenario with 1 and 2 units of budget), extrapolated geometrically."""
    from otamodel._limits import get_state_estimate
    from otamodel.checker import check
    from otamodel.env import build_scenario
    from otamodel.verify._properties import OtaModel

    kinds = [k for k, v in dict(spec.get("budget", {})).items() if isinstance(v, int) and v > 0]
    counts = []
    for units in (1, 2):
        budget = {k: 0 for k in kinds}
        for i in range(units):
            budget[kinds[i % len(kinds)]] += 1
        small = build_scenario({**spec, "budget": budget})
        report = check(OtaModel(small), max_states=cap, time_limit=5)
        counts.append(report.unique_states)
        if not report.is_complete:
            return (
                f"a total fault budget of {total}: already {report.unique_states:,}+ states with "
                f"{units}; the full search is far larger; bound it with --max-states or "
                "--time-limit"
            )
    low, high = get_state_estimate(counts[0], counts[1], total)
    return (
        f"a total fault budget of {total}: {counts[0]:,} states with 1 unit, {counts[1]:,} with "
        f"2, so an estimated {low:.1e} to {high:.1e} states with {total}; bound the run with "
        "--max-states or --time-limit"
    )


SCENARIO = ScenarioType()


class _VariantChoice(click.Choice):  # type: ignore[type-arg]
    """The variants, with the model's own message for an unknown one."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value in self.choices:
            return value
        from otamodel.model import Variant

        for member in Variant:  # the enum names keep working (Variant.from_name)
            if value == member.name:
                return member.value
        known = ", ".join(str(c) for c in self.choices)
        self.fail(f"unknown variant {value!r} (known: {known})", param, ctx)


def variant_choice() -> click.Choice:  # type: ignore[type-arg]
    """Every code variant the model has, for ``--variant`` (CLI-5)."""
    from otamodel.model import Variant

    return _VariantChoice([v.value for v in Variant])


def scenario_options(variant_help: str = "Code variant.") -> Callable[[_F], _F]:
    """``--scenario`` (a shipped name or a TOML/JSON file) and ``--variant``, as every command
    that runs the model takes them (CLI-5)."""

    def decorate(function: _F) -> _F:
        function = click.option(
            "--variant", type=variant_choice(), default=None, help=variant_help
        )(function)
        return click.option(
            "--scenario",
            "scenario_name",
            type=SCENARIO,
            default="default",
            show_default=True,
            help="Scenario name or TOML/JSON file.",
        )(function)

    return decorate


def get_cli_scenario(name: str, variant: str | None) -> Any:
    """The scenario named by ``--scenario``, built for ``--variant`` (already checked by its
    choice) when one is given."""
    from otamodel.env import get_scenario, with_variant

    scenario = get_scenario(name)
    return scenario if variant is None else with_variant(scenario, variant)


def _set_limits(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    import attrs

    from otamodel._limits import get_limits, set_limits

    if value is not None and param.name is not None:
        set_limits(attrs.evolve(get_limits(), **{param.name: value}))
    return value


def _limit_option(name: str, default: int, help_text: str) -> Any:
    return click.option(
        name,
        type=click.IntRange(1),
        default=default,
        show_default=True,
        expose_value=False,
        is_eager=True,
        callback=_set_limits,
        help=help_text,
    )


def _limit_options(func: Any) -> Any:
    from otamodel import _limits as lim

    for name, default, text in reversed(
        [
            ("--max-document-bytes", lim.MAX_DOCUMENT_BYTES, "Largest scenario/trace file."),
            ("--max-depth", lim.MAX_DEPTH, "Deepest nesting of a scenario/trace file."),
            ("--max-page-size", lim.MAX_PAGE_SIZE, "Largest scenario geometry.page_size."),
            (
                "--max-slot-bytes",
                lim.MAX_SLOT_BYTES,
                "Largest scenario slot (page_size x slot_pages).",
            ),
            ("--max-budget", lim.MAX_BUDGET, "Largest fault budget of one kind in a scenario."),
        ]
    ):
        func = _limit_option(name, default, text)(func)
    return func


@click.group(cls=_OtaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="otamodel")
@_limit_options
def main() -> None:
    """Executable, model-checked specification of the Harmony PIC32MZ-W1 OTA system.

    Exit status: 0 ok, 1 negative result, 2 bad input, 3 bound hit (the message names the
    option that raises it), 130 interrupted.
    """


def _register() -> None:
    for name in (
        "records",
        "crypto",
        "patch",
        "model",
        "check",
        "cuts",
        "explore",
        "release",
        "sweep",
        "scenarios",
    ):
        _load(name)


def _load(name: str) -> None:
    import importlib

    try:
        importlib.import_module(f"otamodel.cli.{name}")
    except ModuleNotFoundError as exc:  # a command family not written yet
        if exc.name != f"otamodel.cli.{name}":
            raise
