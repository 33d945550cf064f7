"""REL-30..REL-39: otamodel serve on loopback: files, faults, control, robustness, TLS."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _release import BASE_URL, make
from click.testing import CliRunner

pytest.importorskip("aiohttp")

from otamodel.cli import main
from otamodel.env import HttpTransport
from otamodel.model import REAL_GEOMETRY, Reply, make_image
from otamodel.release._faults import (
    FaultError,
    ServeConfig,
    load_config,
    parse_fault,
)
from otamodel.release._serve import ServerOptions, ServerThread
from otamodel.release._tls import make_self_signed, server_context

OPTIONS = ServerOptions(port=0, idle_timeout=1.0, header_timeout=0.5, max_connections=4)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("serve")
    top = tmp / "root"
    top.mkdir()
    for version in (2, 3):
        data = make_image(REAL_GEOMETRY, version, "app", 3).data
        make(tmp, data, version, name="app", folder=f"root/r{version}")
    (top / "r2" / "outside").symlink_to("/etc/hostname")
    return top


@pytest.fixture
def server(root: Path) -> Iterator[ServerThread]:
    with ServerThread(root, OPTIONS, ServeConfig(publish="r2")) as thread:
        yield thread


def _raw(port: int, request: bytes, timeout: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def _status(port: int, request: bytes) -> int:
    answer = _raw(port, request)
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def _get(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()


def _transport(server: ServerThread, **kw: object) -> HttpTransport:
    return HttpTransport(f"http://127.0.0.1:{server.port}", timeout=1.0, **kw)  # type: ignore[arg-type]


def _faults(server: ServerThread, *specs: str) -> None:
    server.call(lambda: server.server.set_faults([parse_fault(s) for s in specs]))


def test_serves_files_and_logs_timings(server: ServerThread, root: Path) -> None:
    t = _transport(server)
    manifest = t.get(0, f"{BASE_URL}/ota.json")
    image = t.get(0, f"{BASE_URL}/app.bin")
    assert isinstance(manifest, Reply) and isinstance(image, Reply)
    assert manifest.body == (root / "r2" / "ota.json").read_bytes()
    assert image.body == (root / "r2" / "app.bin").read_bytes()
    assert image.content_length == len(image.body)
    assert (
        _status(server.port, b"HEAD /app.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        == 200
    )
    log = list(server.server.log)
    assert [e["path"] for e in log[:2]] == ["/ota.json", "/app.bin"]
    assert all(e["status"] == 200 and e["ms"] >= 0 for e in log[:2])
    assert log[1]["bytes"] == len(image.body)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/../r3/ota.json", 403),
        ("/%2e%2e/%2e%2e/etc/passwd", 403),
        ("/./ota.json", 403),
        ("/outside", 403),
        ("/%00", 403),
        ("/missing.bin", 404),
        ("/", 404),
        ("/from-v2", 404),
    ],
)
def test_only_files_inside_the_release(server: ServerThread, path: str, status: int) -> None:
    assert _status(server.port, _get(server.port, path)) == status


def test_bad_requests_get_their_status_and_never_stop_the_server(server: ServerThread) -> None:
    port = server.port
    assert _status(port, b"DELETE /ota.json HTTP/1.1\r\nHost: x\r\n\r\n") == 405
    assert _status(port, b"PUT /ota.json HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n") == 405
    assert _status(port, b"FOO /ota.json HTTP/1.1\r\nHost: x\r\n\r\n") in (400, 501)
    assert _status(port, b"\x00\x01\x02 garbage\r\n\r\n") == 400
    assert _status(port, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n") in (400, 414)
    big = b"GET /ota.json HTTP/1.1\r\nX: " + b"b" * 9000 + b"\r\n\r\n"
    assert _status(port, big) in (400, 431)
    many = b"GET /ota.json HTTP/1.1\r\n" + b"".join(b"X%d: y\r\n" % i for i in range(200)) + b"\r\n"
    assert _status(port, many) in (400, 431)
    huge = b"POST /_otamodel/faults HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n"
    assert _status(port, huge + b"[" * 200000) == 413
    assert _status(port, _get(port, "/ota.json")) == 200


def test_slow_and_idle_clients_are_closed(server: ServerThread) -> None:
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as slow:
        slow.sendall(b"GET /ota.json HT")
        assert slow.recv(100) == b""  # closed: the head never completed
    assert time.monotonic() - start < 3
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as idle:
        assert idle.recv(100) == b""  # closed after the idle timeout
    assert server.server.stats["reaped"] >= 1
    assert _status(server.port, _get(server.port, "/ota.json")) == 200


def test_connections_are_bounded(server: ServerThread) -> None:
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
    try:
        time.sleep(0.1)
        assert _status(server.port, _get(server.port, "/ota.json")) == 503
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert _status(server.port, _get(server.port, "/ota.json")) == 200
    assert server.server.stats["refused"] >= 1


def test_faults_on_the_image(server: ServerThread, root: Path) -> None:
    image = (root / "r2" / "app.bin").read_bytes()
    url = f"{BASE_URL}/app.bin"
    t = _transport(server)
    _faults(server, "/app.bin:drop:bytes=5000")
    assert t.get(0, url) == Reply(image[:5000], len(image))
    _faults(server, "/app.bin:stall:bytes=4096,seconds=3")
    start = time.monotonic()
    assert t.get(0, url) == Reply(image[:4096], len(image))
    assert time.monotonic() - start < 2.5
    _faults(server, "/app.bin:length:length=missing")
    assert t.get(0, url) == Reply(image, None)
    _faults(server, "/app.bin:length:length=1000")
    assert t.get(0, url) == Reply(image[:1000], 1000)
    _faults(server, "/app.bin:length:length=99999")
    assert t.get(0, url) == Reply(image, 99999)
    _faults(server, "/app.bin:status:status=500")
    assert t.get(0, url) is None
    _faults(server, "/app.bin:flip:offset=5000")
    flipped = t.get(0, url)
    assert isinstance(flipped, Reply) and flipped.body[5000] == image[5000] ^ 1
    assert flipped.body[:5000] == image[:5000] and flipped.body[5001:] == image[5001:]
    _faults(server, "/app.bin:throttle:rate=40000")
    start = time.monotonic()
    assert t.get(0, url) == Reply(image, len(image))
    assert time.monotonic() - start >= 0.3


def test_after_times_and_switch(server: ServerThread, root: Path) -> None:
    t = _transport(server)
    url = f"{BASE_URL}/app.bin"
    server.call(server.server.served.clear)
    _faults(
        server, "/app.bin:status:status=404,after=/ota.json,times=1", "/ota.json:switch:release=r3"
    )
    assert isinstance(t.get(0, url), Reply)  # the manifest was not served yet
    t.get(0, f"{BASE_URL}/ota.json")
    assert server.server.publish == "r3"
    assert t.get(0, url) is None  # 404 once, after the manifest
    again = t.get(0, url)
    assert isinstance(again, Reply) and again.body == (root / "r3" / "app.bin").read_bytes()


def test_control_endpoint(server: ServerThread) -> None:
    port = server.port

    def post(action: str, body: bytes) -> tuple[int, bytes]:
        head = f"POST /_otamodel/{action} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        answer = _raw(port, head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return int(answer.split(b" ", 2)[1]), answer.split(b"\r\n\r\n", 1)[1]

    status, body = post("faults", b'[{"path": "/app.bin", "kind": "drop", "bytes": 10}]')
    assert status == 200 and json.loads(body)["faults"][0]["bytes"] == 10
    status, body = post("faults", b'[{"path": "/app.bin", "kind": "explode"}]')
    assert status == 400 and b"unknown kind" in body
    status, body = post("faults", b"{not json")
    assert status == 400 and b"malformed JSON" in body
    status, body = post("publish", b'{"release": "../.."}')
    assert status == 400 and b"outside the root" in body
    status, body = post("publish", b'{"release": "r3"}')
    assert status == 200 and json.loads(body)["publish"] == "r3"
    assert post("reset", b"")[0] == 200
    assert _status(port, _get(port, "/_otamodel/nothing")) == 405
    state = json.loads(_raw(port, _get(port, "/_otamodel/state")).split(b"\r\n\r\n", 1)[1])
    assert state["publish"] == "r3" and state["served"] == []


def test_https_with_a_self_signed_certificate(root: Path, tmp_path: Path) -> None:
    cert, key = make_self_signed(tmp_path / "tls")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    options = ServerOptions(port=0, ssl_context=server_context(cert, key))
    with ServerThread(root, options, ServeConfig(publish="r2")) as thread:
        base = f"https://127.0.0.1:{thread.port}"
        trusted = HttpTransport(base, cafile=str(cert), timeout=2.0)
        answer = trusted.get(0, f"{BASE_URL}/ota.json")
        assert isinstance(answer, Reply) and answer.body == (root / "r2" / "ota.json").read_bytes()
        assert HttpTransport(base, timeout=2.0).get(0, f"{BASE_URL}/ota.json") is None
        assert _status(thread.port, _get(thread.port, "/ota.json")) == 0  # plain HTTP on TLS


def test_fault_specs_and_files(tmp_path: Path, root: Path) -> None:
    assert parse_fault("/a.bin:drop:bytes=10,times=2").times == 2
    for bad in (
        "/a.bin",
        "/a.bin:melt",
        "/a.bin:drop:bytes=-1",
        "/a.bin:drop:colour=red",
        "a.bin:drop",
        "/a.bin:length",
        "/a.bin:switch",
        "/a:status:status=99",
    ):
        with pytest.raises(FaultError):
            parse_fault(bad)
    good = tmp_path / "faults.toml"
    good.write_text('publish = "r3"\n[[fault]]\npath = "/app.bin"\nkind = "flip"\noffset = 7\n')
    config = load_config(good)
    assert config.publish == "r3" and config.faults[0].offset == 7
    bad = tmp_path / "bad.toml"
    bad.write_text('[[fault]]\npath = "/x"\nkind = "drop"\nbites = 3\n')
    result = CliRunner().invoke(main, ["serve", str(root), "--faults", str(bad)])
    assert result.exit_code == 2 and "bites" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["serve", str(root), "--fault", "/x:melt"])
    assert result.exit_code == 2 and "unknown kind" in result.output
    result = CliRunner().invoke(main, ["serve", str(root), "--publish", "../.."])
    assert result.exit_code == 2 and "outside the root" in result.output
    result = CliRunner().invoke(main, ["serve", str(root), "--tls", "--cert-dir", str(root / "r2")])
    assert result.exit_code == 2 and "inside ROOT" in result.output
    assert not (root / "r2" / "key.pem").exists()


def test_lint_a_release_served_on_loopback(server: ServerThread) -> None:
    url = f"http://127.0.0.1:{server.port}/ota.json"
    result = CliRunner().invoke(main, ["release", "lint", url])
    assert result.exit_code == 0, result.output
    _faults(server, "/app.bin:status:status=404")
    result = CliRunner().invoke(main, ["release", "lint", url, "--json"])
    assert result.exit_code == 1, result.output
    assert {p["rule"] for p in json.loads(result.output)} == {"REL-11"}
    result = CliRunner().invoke(main, ["release", "lint", "http://example.com/ota.json"])
    assert result.exit_code == 2 and "loopback" in result.output


def test_the_serve_command_runs_and_stops_on_ctrl_c(root: Path) -> None:
    import re
    import signal
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "otamodel", "serve", str(root), "--port", "0", "--publish", "r2"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        port = int(re.search(r":(\d+)/", line).group(1))  # type: ignore[union-attr]
        assert _status(port, _get(port, "/ota.json")) == 200
        assert "GET /ota.json 200" in process.stderr.readline()
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_paths_listed_in_release_json_are_served(tmp_path: Path) -> None:
    """REL-34: a base URL with a path (http://host/v2/app.bin) finds its file through the
    release's release.json; a path it does not list is still 404, traversal still 403."""
    from otamodel.release import make_release

    source = tmp_path / "app.bin"
    source.write_bytes(b"\x5a" * 300)
    top = tmp_path / "root"
    top.mkdir()
    make_release(source, top / "r2", version=2, base_url=f"{BASE_URL}/v2", name="app")
    with ServerThread(top, OPTIONS, ServeConfig(publish="r2")) as server:
        answer = _transport(server).get(0, f"{BASE_URL}/v2/app.bin")
        assert isinstance(answer, Reply) and answer.body == source.read_bytes()
        assert _status(server.port, _get(server.port, "/v3/app.bin")) == 404
        assert _status(server.port, _get(server.port, "/v2/../../etc/passwd")) == 403
