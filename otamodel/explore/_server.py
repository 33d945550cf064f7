"""The explorer's HTTP side on aiohttp: the page, its static files and the JSON API
(EXP-1, EXP-2, EXP-10; the endpoints are documented in ``docs/explorer.md``).

Every error a request can cause is a JSON ``{"error": ...}`` with a 4xx status; an
unexpected exception is a 500 with a one-line message, never a traceback page."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from otamodel.errors import OtaModelError
from otamodel.explore._diagram import get_machine_state_names
from otamodel.explore._session import Explorer, PathError, parse_compact_script, parse_path

JsonDict = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MACHINE_NAMES = ("service", "core", "bootloader")

MAX_BODY = 4 * 1024 * 1024
"""EXP-10: the largest request body (a trace file of the default scenario is ~100 KB)."""

EXPLORER_KEY = web.AppKey("explorer", Explorer)
DIAGRAMS_KEY = web.AppKey("diagrams", dict)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """EXP-10: typed errors become 400 with their message; anything else a one-line 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and request.path.startswith("/api/"):
            return _error(exc.status, exc.reason)
        raise
    except OtaModelError as exc:
        return _error(400, str(exc))
    except Exception as exc:  # the server must keep serving
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")


async def _read_json(request: web.Request) -> JsonDict:
    """EXP-10: the body as a JSON object (malformed JSON or another type is a 400)."""
    try:
        body = await request.json(loads=json.loads)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # BOUND-6: deep nesting
        raise PathError(f"malformed JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise PathError("the body must be a JSON object", where="$")
    return body


def _get_actions(explorer: Explorer, body: JsonDict) -> Any:
    if "script" in body:
        script = body["script"]
        if not isinstance(script, str):
            raise PathError("script must be a string", where="$.script")
        return parse_compact_script(script)
    return parse_path(body.get("path", []))


async def _index(request: web.Request) -> web.StreamResponse:
    page = resources.files("otamodel.explore") / "static" / "index.html"
    return web.Response(text=page.read_text(encoding="utf-8"), content_type="text/html")


async def _no_icon(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    types = {".js": "application/javascript", ".css": "text/css"}
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix not in types or "/" in name or name.startswith("."):
        raise web.HTTPNotFound(reason=f"no static file {name!r}")
    item = resources.files("otamodel.explore") / "static" / name
    if not item.is_file():
        raise web.HTTPNotFound(reason=f"no static file {name!r}")
    return web.Response(text=item.read_text(encoding="utf-8"), content_type=types[suffix])


async def _info(request: web.Request) -> web.StreamResponse:
    """``GET /api/info``: the scenario, its variant, properties and machines."""
    explorer = request.app[EXPLORER_KEY]
    scenario = explorer.scenario
    return web.json_response(
        {
            "scenario": scenario.name,
            "description": scenario.description,
            "variant": scenario.config.variant.value,
            "properties": [
                {"name": p.name, "kind": p.kind.value, "description": p.description}
                for p in explorer.properties
            ],
            "machines": list(MACHINE_NAMES),
            "diagrams": shutil.which("dot") is not None,
            "opening": explorer.opening,
            "states": {name: get_machine_state_names(name) for name in MACHINE_NAMES},
        }
    )


async def _state(request: web.Request) -> web.StreamResponse:
    """``POST /api/state``: the world at the end of a path (``path`` or ``script``)."""
    explorer = request.app[EXPLORER_KEY]
    actions = _get_actions(explorer, await _read_json(request))
    return web.json_response(explorer.get_state(actions))


async def _steps(request: web.Request) -> web.StreamResponse:
    """``POST /api/steps``: what every step of a path changed."""
    explorer = request.app[EXPLORER_KEY]
    actions = _get_actions(explorer, await _read_json(request))
    return web.json_response({"steps": explorer.get_steps(actions)})


async def _trace_export(request: web.Request) -> web.StreamResponse:
    """``POST /api/trace``: the path as a trace file (``otamodel replay`` reads it)."""
    from otamodel.verify import get_trace_document

    explorer = request.app[EXPLORER_KEY]
    body = await _read_json(request)
    actions = _get_actions(explorer, body)
    explorer.replay(actions)
    name = body.get("property", "explore")
    doc = get_trace_document(
        scenario=explorer.scenario,
        property_name=str(name),
        verdict="explored",
        actions=actions,
    )
    return web.json_response(
        doc, headers={"Content-Disposition": 'attachment; filename="explore-trace.json"'}
    )


async def _trace_import(request: web.Request) -> web.StreamResponse:
    """``POST /api/trace/load``: a trace file's path, if it belongs to this scenario."""
    from otamodel.verify import parse_trace_document

    explorer = request.app[EXPLORER_KEY]
    trace = parse_trace_document(await _read_json(request))
    check_same_scenario(explorer, trace.scenario)
    explorer.replay(trace.actions)
    return web.json_response(
        {"path": [str(a) for a in trace.actions], "property": trace.property_name}
    )


def check_same_scenario(explorer: Explorer, other: Any) -> None:
    """EXP-10: a trace from another scenario or variant is refused, naming both."""
    mine = explorer.scenario
    if (other.name, other.config.variant) != (mine.name, mine.config.variant) or dict(
        other.source
    ) != dict(mine.source):
        raise PathError(
            f"the trace is for scenario {other.name!r} ({other.config.variant.value}); "
            f"this explorer runs {mine.name!r} ({mine.config.variant.value})",
            where="$.scenario",
        )


async def _findings(request: web.Request) -> web.StreamResponse:
    """``GET /api/findings``: the checker job's status, progress and findings."""
    explorer = request.app[EXPLORER_KEY]
    job = explorer.findings_job
    return web.json_response(
        {
            "status": job.status,
            "progress": job.progress,
            "error": job.error,
            "summary": explorer.summary,
            "findings": explorer.findings,
        }
    )


async def _findings_run(request: web.Request) -> web.StreamResponse:
    """``POST /api/findings/run``: start the checker (no-op while it runs)."""
    job = request.app[EXPLORER_KEY].start_findings()
    return web.json_response({"status": job.status})


async def _space(request: web.Request) -> web.StreamResponse:
    """``GET /api/space``: the state-space job's status and counts."""
    explorer = request.app[EXPLORER_KEY]
    job = explorer.space_job
    counts = explorer.get_position(explorer.initial, 0)
    return web.json_response(
        {"status": job.status, "progress": job.progress, "error": job.error, **counts}
    )


async def _space_run(request: web.Request) -> web.StreamResponse:
    """``POST /api/space/run``: explore the state space in the background."""
    job = request.app[EXPLORER_KEY].start_space()
    return web.json_response({"status": job.status})


async def _diagram(request: web.Request) -> web.StreamResponse:
    """``GET /api/diagram/{machine}.svg``: the machine drawn by Graphviz (cached)."""
    machine = request.match_info["machine"]
    if machine not in MACHINE_NAMES:
        raise web.HTTPNotFound(reason=f"no machine {machine!r}")
    cache = request.app[DIAGRAMS_KEY]
    if machine not in cache:
        cache[machine] = await asyncio.get_running_loop().run_in_executor(
            None, render_svg, request.app[EXPLORER_KEY], machine
        )
    svg = cache[machine]
    if svg is None:
        raise web.HTTPNotFound(reason="Graphviz 'dot' is not installed; states are listed")
    return web.Response(text=svg, content_type="image/svg+xml")


def render_svg(explorer: Explorer, machine: str) -> str | None:
    """EXP-3: the machine's diagram as SVG (None without Graphviz)."""
    from otamodel.explore._diagram import get_machine_dot

    dot = shutil.which("dot")
    if dot is None:
        return None
    source = get_machine_dot(machine, explorer.scenario)
    done = subprocess.run(
        [dot, "-Tsvg"], input=source.encode(), capture_output=True, check=False, timeout=60
    )
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8")


def create_app(explorer: Explorer) -> web.Application:
    """The aiohttp application serving one explorer."""
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY)
    app[EXPLORER_KEY] = explorer
    app[DIAGRAMS_KEY] = {}
    app.add_routes(
        [
            web.get("/", _index),
            web.get("/favicon.ico", _no_icon),
            web.get("/static/{name}", _static),
            web.get("/api/info", _info),
            web.post("/api/state", _state),
            web.post("/api/steps", _steps),
            web.post("/api/trace", _trace_export),
            web.post("/api/trace/load", _trace_import),
            web.get("/api/findings", _findings),
            web.post("/api/findings/run", _findings_run),
            web.get("/api/space", _space),
            web.post("/api/space/run", _space_run),
            web.get("/api/diagram/{machine}.svg", _diagram),
        ]
    )
    return app
