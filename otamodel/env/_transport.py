"""How the device's downloader reaches the server (ENV-5, ENV-6, ENV-7).

The model asks a :class:`Transport` for the answer to a GET of a URL while a given release is
published: the body of a 200 (bytes, or a :class:`~otamodel.model.Reply` that also carries the
Content-Length header and may end early), or ``None`` for any other status or an unreachable
host. The default is the in-memory :class:`ReleaseServer`; :class:`HttpTransport` asks a real
HTTP(S) server (``otamodel serve``) on loopback, without any change to the model.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

import attrs

from otamodel.model import Reply

_PIECE = 4096


class Published(Protocol):
    """What a release offers: its file bodies by URL."""

    def get_file(self, url: str) -> bytes | None: ...


class Transport(Protocol):
    """ENV-5: answer a GET for ``url`` while release ``release`` is published."""

    def get(self, release: int, url: str) -> bytes | Reply | None: ...


@attrs.frozen(eq=False)
class ReleaseServer:
    """ENV-5: the in-memory server: 200 with the release's file, otherwise an error status."""

    releases: Sequence[Published]

    def get(self, release: int, url: str) -> bytes | None:
        return self.releases[release].get_file(url)


@attrs.define(eq=False)
class HttpTransport:
    """ENV-7: GETs through a real HTTP(S) server at ``base`` (scheme, host and port; the
    scenario's URL paths are kept). ``releases`` names, per release index, the directory the
    server publishes for it, set through the server's control endpoint when the model's
    published release changes (``()``: the server's own choice). ``cafile`` is the
    certificate to trust for https. A dropped or stalled connection (``timeout`` seconds
    without a byte) ends the body early; any status but 200, a refused connection or a TLS
    failure is ``None``."""

    base: str
    releases: Sequence[str] = ()
    cafile: str | None = None
    timeout: float = 5.0
    requests: list[str] = attrs.field(factory=list)
    _published: int | None = None

    def _connect(self) -> http.client.HTTPConnection:
        parts = urlsplit(self.base)
        host = parts.hostname or "127.0.0.1"
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=self.cafile)
            return http.client.HTTPSConnection(
                host, parts.port, timeout=self.timeout, context=context
            )
        return http.client.HTTPConnection(host, parts.port, timeout=self.timeout)

    def publish(self, release: int) -> None:
        """ENV-7: make the server publish the directory of release ``release``."""
        if not self.releases or self._published == release:
            return
        connection = self._connect()
        try:
            body = json.dumps({"release": self.releases[release]})
            connection.request("POST", "/_otamodel/publish", body=body)
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                raise ConnectionError(f"control endpoint answered {answer.status}")
        finally:
            connection.close()
        self._published = release

    def get(self, release: int, url: str) -> Reply | None:
        self.publish(release)
        try:
            path = urlsplit(url).path or "/"
        except ValueError:  # an unparseable URL ("http://[h/x"): the download fails
            return None
        self.requests.append(path)
        connection = self._connect()
        try:
            connection.request("GET", path)
            answer = connection.getresponse()
            if answer.status != 200:
                return None
            header = answer.getheader("Content-Length")
            length = int(header) if header is not None and header.isdigit() else None
            return Reply(_read_all(answer), length)
        except (OSError, http.client.HTTPException, ssl.SSLError):
            return None
        finally:
            connection.close()


def _read_all(answer: http.client.HTTPResponse) -> bytes:
    """The bytes that arrive before the body ends, the connection drops or stalls."""
    parts: list[bytes] = []
    try:
        while True:
            piece = answer.read1(_PIECE)
            if not piece:
                break
            parts.append(piece)
    except http.client.IncompleteRead as exc:
        parts.append(exc.partial)
    except (TimeoutError, OSError, http.client.HTTPException):
        pass
    return b"".join(parts)
