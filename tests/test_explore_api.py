"""The explorer's JSON API (docs/explorer.md, EXP-*) through aiohttp's test client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from _explore_paths import SMALL, get_update_path
from aiohttp.test_utils import TestClient, TestServer

from otamodel.env import build_scenario, get_scenario
from otamodel.explore import Explorer, create_app, get_compact_script, parse_compact_script
from otamodel.explore._session import PathError
from otamodel.model import Action
from otamodel.verify import OtaModel
from otamodel.verify._findings import run_check


def with_client(scenario: Any, body: Callable[[TestClient[Any, Any]], Awaitable[None]]) -> None:
    async def run() -> None:
        client: TestClient[Any, Any] = TestClient(TestServer(create_app(Explorer(scenario))))
        await client.start_server()
        try:
            await body(client)
        finally:
            await client.close()

    asyncio.run(run())


async def post(client: TestClient[Any, Any], url: str, body: Any, status: int = 200) -> Any:
    response = await client.post(url, data=json.dumps(body))
    data = await response.json()
    assert response.status == status, data
    return data


def test_compact_script_round_trip() -> None:
    actions = [Action("tick")] * 29 + [Action("timer"), Action("tick"), Action("ctrl", "rollback")]
    text = get_compact_script(actions)
    assert text == "tick*29, timer, tick, ctrl(rollback)"
    assert parse_compact_script(text) == tuple(actions)
    with pytest.raises(PathError, match="repeat count"):
        parse_compact_script("tick*x")


def test_info_and_initial_state() -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        info = await (await client.get("/api/info")).json()
        assert info["scenario"] == "explore-small"
        assert info["variant"] == "harmony-3.9.1"
        assert {p["name"] for p in info["properties"]} >= {"no-brick", "boots-valid-image"}
        assert "JUMP_TO_APP" in info["states"]["bootloader"]
        state = await post(client, "/api/state", {"path": []})
        assert state["step"] == 0 and state["last_step"] is None
        world = state["world"]
        assert world["machines"]["phase"] == "bootloader"
        assert world["machines"]["bootloader"]["state"] == "INIT"
        assert world["bootctl"]["type_name"] == "FACTORY_RESET"
        assert world["budgets"] == [{"name": "power_cut", "given": 1, "left": 1}]
        faults = {a["action"] for a in state["enabled"] if a["fault"]}
        assert faults == {"power_cut"}
        page = await client.get("/")
        assert page.status == 200 and "otamodel explorer" in await page.text()

    with_client(build_scenario(SMALL), body)


def test_full_update_then_power_cut_at_a_db_write() -> None:
    scenario = build_scenario(SMALL)
    path = get_update_path(scenario)

    async def body(client: TestClient[Any, Any]) -> None:
        done = await post(client, "/api/state", {"path": path})
        assert done["world"]["running"].endswith("(v2)")
        assert done["world"]["machines"]["phase"] == "app"
        rows = done["world"]["db"]["rows"]
        assert [r["version_read"] for r in rows][-1] == 2
        statuses = [c["status"] for c in done["callbacks"]]
        assert "DOWNLOAD_SUCCESS" in statuses or "DB_ENTRY_SUCCESS" in statuses
        assert parse_compact_script(done["script"]) == tuple(Action.parse(a) for a in path)
        # cut power while the first database write is pending
        steps = (await post(client, "/api/steps", {"path": path}))["steps"]
        write = next(
            s["index"] for s in steps if any("image_database.csv" in op for op in s["ops"])
        )
        before = path[: write - 1]
        pending = (await post(client, "/api/state", {"path": before}))["world"]["pending"]
        assert any("image_database.csv" in op for op in pending)
        cut = await post(client, "/api/state", {"path": [*before, "power_cut"]})
        assert cut["last_step"]["transition"] == "power cut"
        assert cut["world"]["machines"]["phase"] == "bootloader"
        assert cut["world"]["budgets"][0]["left"] == 0
        assert cut["world"]["pending"] == []
        moves = cut["last_step"]["machine_moves"]
        assert moves[0] == {"machine": "device", "from": "app", "to": "bootloader"}

    with_client(scenario, body)


def test_findings_and_state_space_jobs() -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        assert (await post(client, "/api/findings/run", {}))["status"] in ("running", "done")
        for _ in range(600):
            data = await (await client.get("/api/findings")).json()
            if data["status"] != "running":
                break
            await asyncio.sleep(0.05)
        assert data["status"] == "done", data
        assert data["summary"]["states"] == 1835 and data["summary"]["complete"]
        findings = data["findings"]
        assert {f["property"] for f in findings} >= {"no-brick", "flash-physics"}
        expected = run_check(OtaModel(build_scenario(SMALL))).findings
        assert [f["id"] for f in findings] == [f.id for f in expected]
        failing = {v["property"] for v in data["summary"]["verdicts"] if v["failing"]}
        assert failing == {f["property"] for f in findings if f["kind"] != "sometimes"}
        brick = next(f for f in findings if f["property"] == "no-brick")
        assert brick["story"] and brick["faults"] == ["power_cut"]
        assert 1 <= brick["decisive_step"] <= len(brick["path"])
        assert "power_cut" in brick["path"][: brick["decisive_step"]]
        await post(client, "/api/state", {"path": brick["path"]})

        await post(client, "/api/space/run", {})
        for _ in range(600):
            space = await (await client.get("/api/space")).json()
            if space["status"] != "running":
                break
            await asyncio.sleep(0.05)
        assert space["status"] == "done" and space["states"] == 1835
        start = (await post(client, "/api/state", {"path": []}))["space"]
        assert start["known"] and start["distance"] == 0
        assert start["goal_reachable"]["no-brick"] is True
        trapped = (await post(client, "/api/state", {"path": brick["path"]}))["space"]
        assert trapped["distance"] <= len(brick["path"])
        assert trapped["goal_reachable"]["no-brick"] is False

    with_client(build_scenario(SMALL), body)


def test_trace_export_and_import() -> None:
    scenario = build_scenario(SMALL)
    path = get_update_path(scenario)[:40]

    async def body(client: TestClient[Any, Any]) -> None:
        doc = await post(client, "/api/trace", {"path": path})
        assert doc["format"] == "otamodel-trace/1" and doc["actions"] == path
        loaded = await post(client, "/api/trace/load", doc)
        assert loaded["path"] == path
        other = dict(doc, scenario="erase", scenario_source={})
        error = await post(client, "/api/trace/load", other, status=400)
        assert "'erase'" in error["error"] and "'explore-small'" in error["error"]

    with_client(scenario, body)


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"path": ["warp"]}, 400, "unknown action 'warp'"),
        ({"path": ["tick", "timer"]}, 400, "$.path[1]"),
        ({"path": "tick"}, 400, "must be a list"),
        ({"path": [3]}, 400, "$.path[0]"),
        ({"script": "tick*"}, 400, "repeat count"),
        ({"script": 5}, 400, "$.script"),
        ([1, 2], 400, "JSON object"),
        ({"path": ["tick"] * 20_001}, 400, "at most"),
    ],
)
def test_bad_requests_get_clear_errors(body: Any, status: int, text: str) -> None:
    async def run(client: TestClient[Any, Any]) -> None:
        error = await post(client, "/api/state", body, status=status)
        assert text in error["error"]

    with_client(build_scenario(SMALL), run)


def test_malformed_transport_level_requests() -> None:
    async def body(client: TestClient[Any, Any]) -> None:
        response = await client.post("/api/state", data=b"{not json")
        assert response.status == 400
        assert "malformed JSON" in (await response.json())["error"]
        response = await client.post("/api/state", data=b"x" * (5 * 1024 * 1024))
        assert response.status == 413
        response = await client.get("/api/diagram/kernel.svg")
        assert response.status == 404 and "kernel" in (await response.json())["error"]
        response = await client.get("/api/nothing")
        assert response.status == 404
        response = await client.get("/static/..%2F_server.py")
        assert response.status == 404
        response = await client.delete("/api/state")
        assert response.status == 405
        # the server keeps serving after all of that
        assert (await client.get("/api/info")).status == 200

    with_client(get_scenario("erase"), body)
