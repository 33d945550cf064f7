"""ENV-5: the model's downloader through a transport backed by a real HTTP server on
loopback (nothing leaves 127.0.0.1)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import attrs
import pytest
from _drive import run

from otamodel.env import Scenario, build_scenario, initial_world
from otamodel.model import CoreTask, Phase

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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
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
