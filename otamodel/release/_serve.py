"""``otamodel serve``: a real HTTP/HTTPS release server with faults on demand (REL-33..REL-39).

Built on aiohttp. Files are served only from inside the root (no ``..``, no symlinks out,
no directories); each request is logged with its timing; faults (``_faults.py``) are applied
per path and can be changed at runtime through ``/_otamodel/`` (state, faults, publish, reset).
Connections are bounded and idle or slow clients are closed, so misbehaving clients never stop
the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
from aiohttp import web

from otamodel.release._faults import Fault, FaultError, FaultKind, ServeConfig, parse_fault
from otamodel.release._make import SUMMARY_NAME, ReleaseError, read_release

__all__ = ["ReleaseServer", "ServerOptions", "ServerThread"]

CONTROL = "/_otamodel"
_PIECE = 64 * 1024
_FAULTS = web.RequestKey("faults", list)
_SENT = web.RequestKey("sent", int)
_LOG = logging.getLogger("otamodel.serve")


class _OneLine(logging.Filter):
    """REL-37: aiohttp logs a malformed request with a traceback; keep one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {record.exc_info[1]!s}".splitlines()[0]
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


logging.getLogger("aiohttp.server").addFilter(_OneLine())


@attrs.frozen
class ServerOptions:
    """REL-33, REL-37: where and how to listen, and the client bounds."""

    host: str = "127.0.0.1"
    port: int = 8000
    ssl_context: ssl.SSLContext | None = None
    max_connections: int = 32
    idle_timeout: float = 10.0  # a connection with no request in progress and no bytes
    header_timeout: float = 5.0  # a request whose head has not arrived whole
    max_body: int = 64 * 1024  # control requests
    control: bool = True


@attrs.define
class _Conn:
    transport: asyncio.BaseTransport
    last: float
    started: float | None = None
    busy: int = 0


class _Guard(asyncio.Protocol):
    """REL-37: counts connections, refuses those over the bound, notes client activity."""

    def __init__(self, server: ReleaseServer, inner: asyncio.Protocol) -> None:
        self.server = server
        self.inner = inner
        self.conn: _Conn | None = None
        self.refused: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if len(self.server.conns) >= self.server.options.max_connections:
            # Answer 503 and close once the request has been read (closing with unread
            # bytes would reset the connection and lose the answer), or after a short wait.
            self.server.stats["refused"] += 1
            self.refused = transport
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
            asyncio.get_running_loop().call_later(0.5, transport.close)
            return
        self.conn = _Conn(transport, time.monotonic())
        self.server.conns[transport] = self.conn
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.conn is None:
            if self.refused is not None and data.endswith(b"\r\n\r\n"):
                self.refused.close()
            return
        self.conn.last = time.monotonic()
        if not self.conn.busy and self.conn.started is None:
            self.conn.started = self.conn.last
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.conn is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is None:
            return
        self.server.conns.pop(self.conn.transport, None)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.inner.resume_writing()


class ReleaseServer:
    """REL-33..REL-39: the server; run it with :meth:`start`/:meth:`stop` inside a loop."""

    def __init__(self, root: Path, options: ServerOptions, config: ServeConfig) -> None:
        self.root = root.resolve(strict=True)
        if not self.root.is_dir():
            raise FaultError("not a directory", where=str(root))
        self.options = options
        self.faults: list[Fault] = list(config.faults)
        self.publish = ""
        self.set_publish(config.publish)
        self.fired: dict[int, int] = {}
        self.served: set[str] = set()
        self.log: deque[dict[str, Any]] = deque(maxlen=1000)
        self.conns: dict[asyncio.BaseTransport, _Conn] = {}
        self.stats = {"requests": 0, "refused": 0, "reaped": 0}
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._server: asyncio.AbstractServer | None = None
        self._reaper: asyncio.Task[None] | None = None

    # -- state -------------------------------------------------------------------------------

    def set_publish(self, release: str) -> None:
        """REL-35: publish a sub-directory of the root (``""``: the root itself)."""
        folder = (self.root / release).resolve()
        if ".." in Path(release).parts or not folder.is_relative_to(self.root):
            raise FaultError(f"{release!r} lies outside the root", where="publish")
        if not folder.is_dir():
            raise FaultError(f"no release directory {release!r} under the root", where="publish")
        self.publish = release

    def set_faults(self, faults: list[Fault]) -> None:
        self.faults = faults
        self.fired = {}

    def get_state(self) -> dict[str, Any]:
        return {
            "publish": self.publish,
            "faults": [f.to_json() for f in self.faults],
            "served": sorted(self.served),
            "connections": len(self.conns),
            "stats": dict(self.stats),
        }

    # -- files -------------------------------------------------------------------------------

    def resolve(self, path: str) -> Path | int:
        """REL-34: the file for a URL path, or the status to answer: 403 for anything that
        leaves the published release (``..``, NUL, backslash, a symlink out), 404 for what is
        not a regular file inside it."""
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") or "\0" in p or "\\" in p for p in parts):
            return 403
        base = (self.root / self.publish).resolve()
        candidate = base.joinpath(*parts)
        listed = self.get_listed(base, path)
        if listed is not None and not candidate.is_file():
            candidate = base.joinpath(*listed.split("/"))
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return 404
        if not real.is_relative_to(self.root):
            return 403
        if not real.is_file():
            return 404
        return real

    @staticmethod
    def get_listed(base: Path, path: str) -> str | None:
        """REL-34: the file a release's ``release.json`` hosts at this URL path (a base URL
        with a path, ``http://host/v2``, puts ``/v2/app.bin`` at ``app.bin``), if any."""
        if not (base / SUMMARY_NAME).is_file():
            return None
        try:
            info = read_release(base)
        except ReleaseError:
            return None
        for hosted in info.get_files():
            try:
                if urlsplit(hosted.url).path == path:
                    return hosted.file
            except ValueError:
                continue
        return None

    def get_faults(self, path: str) -> list[Fault]:
        """REL-31: the faults that fire for this request (and count them)."""
        out = []
        for index, fault in enumerate(self.faults):
            if not fault.matches(path):
                continue
            if fault.after is not None and fault.after not in self.served:
                continue
            if fault.times is not None and self.fired.get(index, 0) >= fault.times:
                continue
            self.fired[index] = self.fired.get(index, 0) + 1
            out.append(fault)
        return out

    # -- handlers ----------------------------------------------------------------------------

    async def handle_file(self, request: web.Request) -> web.StreamResponse:
        """REL-34, REL-30: serve a file, applying the faults for its path."""
        path = request.path
        found = self.resolve(path)
        if isinstance(found, int):
            raise web.HTTPForbidden() if found == 403 else web.HTTPNotFound()
        faults = self.get_faults(path)
        request[_FAULTS] = [f.kind.value for f in faults]
        by_kind = {f.kind: f for f in faults}
        if FaultKind.STATUS in by_kind:
            return web.Response(status=by_kind[FaultKind.STATUS].status, text="fault\n")
        data = found.read_bytes()
        flip = by_kind.get(FaultKind.FLIP)
        if flip is not None and flip.offset < len(data):
            data = data[: flip.offset] + bytes([data[flip.offset] ^ 0x01]) + data[flip.offset + 1 :]
        response = web.StreamResponse(status=200)
        response.content_type = "application/octet-stream"
        length = by_kind.get(FaultKind.LENGTH)
        if length is None:
            response.content_length = len(data)
        elif length.length is not None:
            response.content_length = length.length
            data = data[: length.length]
            response.force_close()
        else:
            response.enable_chunked_encoding()
        self.served.add(path)
        switch = by_kind.get(FaultKind.SWITCH)
        if switch is not None:
            self.set_publish(switch.release)
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        await self._send(request, response, data, by_kind)
        return response

    async def _send(
        self,
        request: web.Request,
        response: web.StreamResponse,
        data: bytes,
        by_kind: dict[FaultKind, Fault],
    ) -> None:
        cut = by_kind.get(FaultKind.DROP) or by_kind.get(FaultKind.STALL)
        end = min(cut.bytes, len(data)) if cut is not None else len(data)
        throttle = by_kind.get(FaultKind.THROTTLE)
        piece = min(_PIECE, max(1, throttle.rate // 10)) if throttle else _PIECE
        sent = 0
        while sent < end:
            chunk = data[sent : min(end, sent + piece)]
            await response.write(chunk)
            sent += len(chunk)
            if throttle is not None:
                await asyncio.sleep(len(chunk) / throttle.rate)
        request[_SENT] = sent
        if cut is None:
            await response.write_eof()
            return
        if cut.kind is FaultKind.STALL:
            await asyncio.sleep(cut.seconds)
        if request.transport is not None:
            request.transport.close()

    async def handle_control(self, request: web.Request) -> web.Response:
        """REL-36: ``GET state``, ``POST faults`` (a JSON list or ``{"faults": [...]}``),
        ``POST publish`` (``{"release": NAME}``), ``POST reset``; bad input is a 400 naming
        the problem."""
        action = request.match_info["action"]
        try:
            if action == "state" and request.method == "GET":
                return web.json_response(self.get_state())
            if request.method != "POST":
                raise web.HTTPMethodNotAllowed(request.method, ["POST"])
            body: Any = None
            if action in ("faults", "publish"):
                try:
                    body = json.loads(await request.read() or b"null")
                except ValueError as exc:
                    raise FaultError(f"malformed JSON: {exc}") from None
            if action == "faults":
                items = body.get("faults") if isinstance(body, dict) else body
                if not isinstance(items, list):
                    raise FaultError("expected a list of faults")
                self.set_faults([parse_fault(f, f"faults[{i}]") for i, f in enumerate(items)])
            elif action == "publish":
                if not isinstance(body, dict) or not isinstance(body.get("release"), str):
                    raise FaultError('expected {"release": NAME}')
                self.set_publish(body["release"])
            elif action == "reset":
                self.served.clear()
                self.fired.clear()
            else:
                raise web.HTTPNotFound()
        except FaultError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.get_state())

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """REL-38: log every request with its timing; mark the connection busy meanwhile."""
        start = time.monotonic()
        conn = self.conns.get(request.transport) if request.transport is not None else None
        if conn is not None:
            conn.busy += 1
            conn.started = None
        self.stats["requests"] += 1
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            if conn is not None:
                conn.busy -= 1
                conn.last = time.monotonic()
            self._log(request, status, start)

    def _log(self, request: web.Request, status: int, start: float) -> None:
        entry = {
            "method": request.method,
            "path": request.path,
            "status": status,
            "bytes": request.get(_SENT, 0),
            "ms": round((time.monotonic() - start) * 1000, 2),
            "faults": request.get(_FAULTS, []),
            "peer": request.remote,
        }
        self.log.append(entry)
        faults = f" fault={','.join(entry['faults'])}" if entry["faults"] else ""
        _LOG.info(
            "%s %s %s %d %dB %.1fms%s",
            entry["peer"],
            entry["method"],
            entry["path"],
            status,
            entry["bytes"],
            entry["ms"],
            faults,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware], client_max_size=self.options.max_body)
        if self.options.control:
            app.router.add_route("*", CONTROL + "/{action}", self.handle_control)
        app.router.add_get("/{tail:.*}", self.handle_file, allow_head=True)
        return app

    async def _reap(self) -> None:
        """REL-37: close connections idle too long, or slow to send a request head."""
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            for conn in list(self.conns.values()):
                if conn.busy:
                    continue
                slow = conn.started is not None and now - conn.started > self.options.header_timeout
                if slow or now - conn.last > self.options.idle_timeout:
                    self.stats["reaped"] += 1
                    conn.transport.close()

    async def start(self) -> int:
        runner = web.AppRunner(
            self.make_app(),
            access_log=None,
            keepalive_timeout=self.options.idle_timeout,
            max_line_size=8190,
            max_field_size=8190,
            max_headers=64,
            handle_signals=False,
        )
        await runner.setup()
        self._runner = runner
        inner = runner.server
        assert inner is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Guard(self, inner()),
            self.options.host,
            self.options.port,
            ssl=self.options.ssl_context,
            reuse_address=True,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._reaper = asyncio.create_task(self._reap())
        return self.port

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        if self._server is not None:
            self._server.close()
        for conn in list(self.conns.values()):
            conn.transport.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2)


class ServerThread:
    """A :class:`ReleaseServer` on its own event loop in a daemon thread (tests, benches)."""

    def __init__(self, root: Path, options: ServerOptions, config: ServeConfig) -> None:
        self.server = ReleaseServer(root, options, config)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    @property
    def port(self) -> int:
        return self.server.port

    def call(self, func: Callable[[], Any]) -> Any:
        """Run ``func`` on the server's loop (its state is not thread-safe)."""

        async def run() -> Any:
            return func()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)


async def serve_forever(root: Path, options: ServerOptions, config: ServeConfig) -> None:
    """Run until cancelled (Ctrl-C)."""
    server = ReleaseServer(root, options, config)
    await server.start()
    scheme = "https" if options.ssl_context is not None else "http"
    _LOG.warning(
        "serving %s at %s://%s:%d/ (pid %d)", root, scheme, options.host, server.port, os.getpid()
    )
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
