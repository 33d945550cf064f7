"""``otamodel sweep``: check a scenario over the cross product of parameter values (SCN-9)."""

from __future__ import annotations

import copy
import itertools
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import click

from otamodel._io import write_output
from otamodel.cli import main
from otamodel.errors import ScenarioError

#: Short names for the options a sweep varies most (case-insensitive).
ALIASES: dict[str, str] = {
    "num_imgs": "config.num_imgs",
    "autoreset": "config.autoreset",
    "autoupdate": "config.auto_update",
    "auto_update": "config.auto_update",
    "periodic": "config.periodic",
    "interval": "config.interval",
    "secure": "config.secure_boot",
    "secure_boot": "config.secure_boot",
    "patch": "config.patch",
    "scheduler": "config.scheduler",
    "tear_mode": "config.tear_mode",
    "json_max_size": "config.json_max_size",
    "variant": "variant",
    "factory_version": "factory_version",
    "durability": "fs.durability",
    "enforce_tls": "config.enforce_tls",
    "tls": "config.tls",
}

_WORDS = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}


@attrs.frozen
class Param:
    """One ``--param``: the name as given, the key path it sets, and its values."""

    name: str
    path: tuple[str | int, ...]
    values: tuple[Any, ...]


def parse_value(text: str) -> Any:
    """``on``/``off``/``true``/``false`` are booleans, decimal or 0x numbers integers, the rest
    strings (the scenario's own checks then say whether the key takes them)."""
    word = text.strip()
    if word.lower() in _WORDS:
        return _WORDS[word.lower()]
    try:
        return int(word, 0)
    except ValueError:
        return word


def parse_param(text: str) -> Param:
    """``NAME=V1,V2,…`` where NAME is an alias or a key path (``releases[0].version``)."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name or not values.strip():
        raise click.BadParameter(f"{text!r} is not NAME=V1,V2,…", param_hint="--param")
    key = ALIASES.get(name.lower(), name)
    path: list[str | int] = []
    for part in key.split("."):
        head, _, rest = part.partition("[")
        path.append(head)
        for index in rest.rstrip("]").split("]["):
            if index:
                if not index.isdigit():
                    raise click.BadParameter(f"bad index in {name!r}", param_hint="--param")
                path.append(int(index))
    parsed = tuple(parse_value(v) for v in values.split(","))
    return Param(name, tuple(path), parsed)


def apply_params(source: Mapping[str, Any], combo: Sequence[tuple[Param, Any]]) -> dict[str, Any]:
    """A copy of the scenario's description with each parameter's value set."""
    spec: dict[str, Any] = copy.deepcopy(dict(source))
    for param, value in combo:
        node: Any = spec
        for key in param.path[:-1]:
            if isinstance(key, int):
                if not isinstance(node, list) or key >= len(node):
                    raise ScenarioError(f"no item {key}", where=param.name)
                node = node[key]
            else:
                if not isinstance(node, dict):
                    raise ScenarioError(f"{key} is not a table", where=param.name)
                node = node.setdefault(key, {})
        last = param.path[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or last >= len(node):
                raise ScenarioError(f"no item {last}", where=param.name)
        elif not isinstance(node, dict):
            raise ScenarioError(f"{last} is not in a table", where=param.name)
        node[last] = value
    return spec


@attrs.define
class Finding:
    """One finding of the sweep, deduplicated across the runs by its ID (the ID ``otamodel
    check`` prints for the same scenario: CHK-33, TRACE-30/31)."""

    key: str  # the finding ID (``PG-20e3``), or ``property (unclassified)``
    prop: str
    runs: list[dict[str, Any]] = attrs.field(factory=list)
    example: str = ""
    story: str = ""


def run_sweep(
    source: Mapping[str, Any],
    params: Sequence[Param],
    *,
    max_states: int | None,
    time_limit: float | None,
    echo: Callable[[str], None],
) -> tuple[list[dict[str, Any]], dict[str, Finding]]:
    """SCN-9: check every combination the way ``otamodel check`` does (classified findings,
    fewest-faults traces); return the runs and the findings keyed by finding ID."""
    from otamodel.env import build_scenario
    from otamodel.env._scenario import LARGE_ESTIMATE, get_state_estimate
    from otamodel.verify._findings import get_story, run_check
    from otamodel.verify._properties import OtaModel

    runs: list[dict[str, Any]] = []
    findings: dict[str, Finding] = {}
    for values in itertools.product(*(p.values for p in params)):
        combo = list(zip(params, values, strict=True))
        label = {p.name: v for p, v in combo}
        try:
            scenario = build_scenario(apply_params(source, combo))
        except ScenarioError as exc:
            runs.append({"params": label, "error": str(exc)})
            echo(f"{_show(label)}: skipped: {exc}")
            continue
        if get_state_estimate(scenario) >= LARGE_ESTIMATE and not (max_states or time_limit):
            echo(f"{_show(label)}: warning: the budgets may give a very large state space (SCN-20)")
        report = run_check(OtaModel(scenario), max_states=max_states, time_limit=time_limit)
        ids: list[str] = []
        for item in report.findings:
            ids.append(item.id)
            finding = findings.setdefault(item.id, Finding(item.id, item.property))
            finding.runs.append(label)
            if not finding.story:
                finding.story = get_story(item)
                finding.example = " ".join(str(a) for a in item.trace.actions if a.kind != "tick")
        # A failing property without a classified finding (a bound cut the search) still shows.
        for res in report.results:
            if res.is_failing and not report.get_findings(res.name):
                key = f"{res.name} (unclassified)"
                ids.append(key)
                findings.setdefault(key, Finding(key, res.name)).runs.append(label)
        runs.append(
            {
                "params": label,
                "states": report.unique_states,
                "seconds": round(report.seconds, 3),
                "complete": report.is_complete,
                "findings": ids,
            }
        )
        done = "" if report.is_complete else f" (stopped: {report.stop_reason.value})"
        echo(f"{_show(label)}: {report.unique_states:,} states, {len(ids)} findings{done}")
    return runs, findings


def _show(label: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in label.items())


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


@attrs.frozen
class Needs:
    """SCN-9: which parameter values a finding needs. ``values``: per parameter whose values
    in the runs that show the finding are a strict subset of those that ran, that subset;
    ``exact``: the finding shows in every run that has those values (else it needs one of
    the combinations in ``combos``); ``missing``: the runs that do not show it."""

    seen: int
    ran: int
    values: tuple[tuple[str, tuple[str, ...]], ...]
    exact: bool
    combos: tuple[str, ...]
    missing: tuple[str, ...] = ()

    def describe(self) -> str:
        """``in every run`` / ``whenever autoreset=off, and only then`` / ``only in: …`` /
        ``in every run except: …``."""
        if self.seen == self.ran:
            return "in every run"
        condition = " and ".join(f"{name}={'|'.join(vals)}" for name, vals in self.values)
        if self.exact and condition:
            return f"whenever {condition}, and only then"
        if len(self.missing) < len(self.combos):
            return "in every run except: " + "; ".join(self.missing)
        return "only in: " + "; ".join(self.combos)

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": self.seen,
            "of": self.ran,
            "values": {name: list(vals) for name, vals in self.values},
            "exact": self.exact,
            "combinations": list(self.combos),
            "not_in": list(self.missing),
            "text": self.describe(),
        }


def get_needs(
    finding: Finding, params: Sequence[Param], runs: Sequence[Mapping[str, Any]]
) -> Needs:
    """SCN-9: the parameter values ``finding`` needs, from the runs that completed."""
    ran = [r["params"] for r in runs if "error" not in r]
    order = {p.name: [_fmt(v) for v in p.values] for p in params}
    values = []
    for param in params:
        seen = {_fmt(r[param.name]) for r in finding.runs}
        every = {_fmt(r[param.name]) for r in ran}
        if seen != every:
            ordered = tuple(v for v in dict.fromkeys(order[param.name]) if v in seen)
            values.append((param.name, ordered))
    allowed = dict(values)
    matching = [r for r in ran if all(_fmt(r[name]) in vals for name, vals in allowed.items())]
    shown = {_show(r) for r in finding.runs}
    exact = len(matching) == len(shown) and all(_show(r) in shown for r in matching)
    combos = tuple(_show(r) for r in ran if _show(r) in shown)
    missing = tuple(_show(r) for r in ran if _show(r) not in shown)
    return Needs(len(finding.runs), len(ran), tuple(values), exact, combos, missing)


@main.command("sweep")
@click.option(
    "--scenario",
    "scenario_name",
    default="default",
    show_default=True,
    help="Scenario name or TOML/JSON file.",
)
@click.option(
    "--param",
    "param_texts",
    multiple=True,
    required=True,
    metavar="NAME=V1,V2",
    help="A scenario key (or alias such as NUM_IMGS, autoreset) and its values.",
)
@click.option("--max-states", type=click.IntRange(1), default=None, help="Per run.")
@click.option("--time-limit", type=click.FloatRange(0.1), default=None, help="Per run, seconds.")
@click.option(
    "--json",
    "json_file",
    type=click.Path(dir_okay=False),
    help="Write the runs and findings as JSON ('-': standard output only).",
)
def sweep_command(
    scenario_name: str,
    param_texts: tuple[str, ...],
    max_states: int | None,
    time_limit: float | None,
    json_file: str | None,
) -> None:
    """Check a scenario for every combination of parameter values and show, per finding,
    which values it needs. Exit 0 when no run fails, 1 otherwise."""
    from otamodel.env import get_scenario

    params = [parse_param(t) for t in param_texts]
    scenario = get_scenario(scenario_name)
    source = dict(scenario.source)
    source.setdefault("name", scenario.name)
    runs, findings = run_sweep(
        source,
        params,
        max_states=max_states,
        time_limit=time_limit,
        echo=lambda text: click.echo(text, err=True),
    )
    ran = [r for r in runs if "error" not in r]
    to_stdout = json_file == "-"
    if not to_stdout:
        click.echo(
            f"{scenario.name}: {len(ran)} of {len(runs)} combinations checked, "
            f"{len(findings)} distinct findings (IDs as otamodel check prints them)"
        )
        for finding in sorted(findings.values(), key=lambda f: (f.prop, f.key)):
            needs = get_needs(finding, params, runs)
            click.echo(
                f"{finding.key}  {finding.prop}  {needs.seen}/{needs.ran} runs: {needs.describe()}"
            )
            if finding.story:
                click.echo(f"    {finding.story}")
    if json_file:
        doc = {
            "scenario": scenario.name,
            "params": {p.name: [_fmt(v) for v in p.values] for p in params},
            "runs": runs,
            "findings": [
                {
                    "id": f.key,
                    "property": f.prop,
                    "runs": len(f.runs),
                    "needs": get_needs(f, params, runs).to_json(),
                    "story": f.story,
                    "example": f.example,
                }
                for f in sorted(findings.values(), key=lambda f: (f.prop, f.key))
            ],
        }
        write_output(json_file, json.dumps(doc, indent=1, default=str) + "\n")
    sys.exit(1 if findings or len(ran) < len(runs) else 0)
