"""How the device's downloader reaches the server (ENV-5).

The model asks a :class:`Transport` for the body of a URL while a given release is
published; ``None`` stands for any non-200 answer or an unreachable host. The default is the
in-memory :class:`ReleaseServer`; a transport backed by a real HTTP server on loopback can be
dropped in without touching the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs


class Published(Protocol):
    """What a release offers: its file bodies by URL."""

    def get_file(self, url: str) -> bytes | None: ...


class Transport(Protocol):
    """ENV-5: answer a GET for ``url`` while release ``release`` is published."""

    def get(self, release: int, url: str) -> bytes | None: ...


@attrs.frozen(eq=False)
class ReleaseServer:
    """ENV-5: the in-memory server: 200 with the release's file, otherwise an error status."""

    releases: Sequence[Published]

    def get(self, release: int, url: str) -> bytes | None:
        return self.releases[release].get_file(url)
