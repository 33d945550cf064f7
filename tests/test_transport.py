"""ENV-5: the model's downloader through a transport backed by a real HTTP server on
loopback (nothing leaves 127.0.0.1)."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import attrs
import pytest
from _drive import run
from _loopback import BoundedHTTPServer, is_closed_by_server, start

from otamodel.env import Scenario, build_scenario, initial_world
from otamodel.model import SMALL_GEOMETRY, CoreTask, Phase

SPEC = {"name": "http", "releases": [{"version": 2}]}


RELEASE = [0]  # which release the loopback server publishes (set per request)


@attrs.frozen(eq=False)
class HttpTransport:
    """Maps the scenario's URLs onto a loopback server by path."""

    base: str

    def get(self, release: int, url: str) -> bytes | None:
        RELEASE[0] = release
        try:
            with urllib.request.urlopen(self.base + urlsplit(url).path, timeout=5) as answer:
                return bytes(answer.read())
        except urllib.error.HTTPError:
            return None


@pytest.fixture
def http_scenario() -> Iterator[Scenario]:
    scenario = build_scenario(SPEC)
    files = {}
    for index, release in enumerate(scenario.releases):
        files[index] = {urlsplit(url).path: body for url, body in release.files}
        files[index]["/ota.json"] = release.manifest
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            body = files[RELEASE[0]].get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = BoundedHTTPServer(Handler)
    start(server)
    base = f"http://127.0.0.1:{server.port}"
    try:
        yield attrs.evolve(scenario, transport=HttpTransport(base))
    finally:
        server.shutdown()
        server.server_close()
    assert "/ota.json" in requests and "/app_v2.bin" in requests


def test_update_over_a_loopback_http_server(http_scenario: Scenario) -> None:
    world = run(
        initial_world(http_scenario),
        until=lambda w: (
            w.phase is Phase.APP
            and w.running is not None
            and w.running.version == 2
            and w.core.task is CoreTask.IDLE
        ),
        max_steps=4000,
    )
    assert (
        world.fs.get("app_v2.bin") == next(i for i in http_scenario.images if i.version == 2).data
    )


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: object) -> None:
        return


def _get(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
        return bytes(answer.read())


def test_loopback_server_drops_idle_connections() -> None:
    server = BoundedHTTPServer(_Hello, idle_timeout=0.3)
    start(server)
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as idle:
            assert is_closed_by_server(idle, wait=10)
        assert _get(server.port) == b"hello"
    finally:
        server.shutdown()
        server.server_close()


def test_loopback_server_caps_concurrent_connections() -> None:
    server = BoundedHTTPServer(_Hello, idle_timeout=30, max_connections=2)
    start(server)
    try:
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
        with socket.create_connection(("127.0.0.1", server.port)) as extra:
            assert is_closed_by_server(extra, wait=10)
        assert server.refused == 1
        for sock in held:
            sock.close()
        for _ in range(100):  # the slots come back when the handlers see the close
            try:
                if _get(server.port) == b"hello":
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        else:
            pytest.fail("the server did not accept connections again")
    finally:
        server.shutdown()
        server.server_close()


def _truncate_run(scheduler: str, truncate_at: int | None) -> tuple[list[str], object]:
    """The default update; ``truncate`` injected once ``truncate_at`` bytes are copied."""
    from otamodel.env import enabled_actions, step
    from otamodel.model import Action
    from otamodel.model._enums import DownloadStep

    scenario = build_scenario(
        {
            "name": "truncate",
            "config": {"scheduler": scheduler},
            "releases": [{"version": 2}],
            "budget": {"truncate": 1},
        }
    )
    world = initial_world(scenario)
    callbacks: list[str] = []
    for _ in range(400):
        actions = enabled_actions(world)
        core = world.core
        action = Action("tick")
        if Action("truncate") in actions and truncate_at is not None:
            first = core.sub is DownloadStep.D_GET_CONTENT_LENGTH and truncate_at == 0
            if first or (core.sub is DownloadStep.D_DOWNLOAD and core.copied == truncate_at):
                action = Action("truncate")
        elif timers := [a for a in actions if a.kind == "timer"]:
            action = timers[0]
        result = step(world, action)
        assert not result.is_refused, result.refusal
        callbacks += [n.split(": ", 1)[1] for n in result.notes if n.startswith("app callback")]
        world = result.world
    return callbacks, world


@pytest.mark.parametrize("scheduler", ["freertos", "bare-metal"])
def test_truncate_ends_the_download_early_and_fails_the_digest(scheduler: str) -> None:
    """ENV-8: a Content-Length one byte into the next chunk: the download completes early
    (IMAGE_DOWNLOADED), the digest over those bytes fails, the file is deleted; with the
    bare-metal scheduler the app sees DOWNLOAD_SUCCESS (a full-length corrupt download shows
    IMAGE_DIGEST_VERIFY_START instead)."""
    chunk = SMALL_GEOMETRY.chunk
    callbacks, world = _truncate_run(scheduler, chunk)
    assert "IMAGE_DIGEST_VERIFY_FAILED" in callbacks and "DB_ENTRY_SUCCESS" not in callbacks
    assert world.net.content_length == chunk + 1  # type: ignore[attr-defined]
    assert world.fs.get("app_v2.bin") is None  # type: ignore[attr-defined]
    assert "DOWNLOAD_SUCCESS" in callbacks
    clean, _ = _truncate_run(scheduler, None)
    assert "DB_ENTRY_SUCCESS" in clean


def test_truncate_is_offered_only_while_an_image_downloads() -> None:
    """ENV-8: refused with no download, and once the length in force ends before it."""
    from otamodel.env import enabled_actions, step
    from otamodel.model import Action

    scenario = build_scenario(
        {"name": "t", "releases": [{"version": 2}], "budget": {"truncate": 1}}
    )
    world = initial_world(scenario)
    assert Action("truncate") not in enabled_actions(world)
    assert step(world, Action("truncate")).is_refused


def test_server_faults_stand_for_modelled_faults() -> None:
    """REL-40: the mapping the conformance harness uses (image 768 bytes, chunk 256,
    manifest 150 bytes)."""
    from otamodel.release._faults import ModelledFault, get_modelled_fault, parse_fault

    def modelled(spec: str) -> ModelledFault | None:
        return get_modelled_fault(parse_fault(spec), 768, chunk=256, stale_length=150)

    assert modelled("/a:drop:bytes=266") == ModelledFault("transfer_fail", 256)
    assert modelled("/a:drop:bytes=768") is None
    assert modelled("/a:status:status=404") == ModelledFault("transfer_fail", 0)
    assert modelled("/a:flip:offset=300") == ModelledFault("corrupt", 256)
    assert modelled("/a:length:length=257") == ModelledFault("truncate", 256)
    assert modelled("/a:length:length=512") == ModelledFault("truncate", 256)
    assert modelled("/a:length:length=100") == ModelledFault("transfer_fail", 0)
    assert modelled("/a:length:length=missing") == ModelledFault("truncate", 0)
    assert modelled("/a:length:length=1024") == ModelledFault("transfer_fail", 768)
    assert modelled("/a:length:length=768") is None
    assert modelled("/a:switch:release=r1") == ModelledFault("publish", 0)
    assert modelled("/a:throttle:rate=10") is None
