"""A loopback-only HTTP server for tests that drops idle connections and caps concurrent ones.

A client that connects and then says nothing is disconnected after ``idle_timeout`` seconds
(the handler's socket timeout); a connection beyond ``max_connections`` at once is closed at
once without being read, so a test server cannot be tied up by stuck clients (issue 17).
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

IDLE_TIMEOUT = 2.0
MAX_CONNECTIONS = 16


class BoundedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer bound to 127.0.0.1 with an idle timeout and a connection cap."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        bounded = type(handler.__name__, (handler,), {"timeout": idle_timeout})
        super().__init__(("127.0.0.1", 0), bounded)
        self._slots = threading.BoundedSemaphore(max_connections)
        self.refused = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def start(server: BoundedHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def is_closed_by_server(sock: socket.socket, wait: float) -> bool:
    """True if the server closes ``sock`` within ``wait`` seconds (reads EOF or a reset)."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
