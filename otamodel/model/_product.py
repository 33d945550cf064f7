"""What one product build fixes: configuration, geometry, the images it knows, the key.

The device's code never reads this directly except through the configuration values a
real build compiles in; the identification of images (which known image a flash region
holds) is for observation and properties only.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import attrs

from otamodel.formats import bootctl
from otamodel.model._config import Config, Geometry

APP_MAGIC = b"OTAMODEL-APP"


@attrs.frozen(cache_hash=True)
class AppImage:
    """One application build: its compiled-in version and its ``.bin`` file bytes."""

    version: int
    label: str
    data: bytes = attrs.field(repr=False)
    factory: bool = False
    crashes: bool = False  # ENV-31: fails at start-up, before validation, at every boot

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.data).digest()

    def describe(self) -> str:
        return f"{self.label} (v{self.version})"


def make_image(
    geometry: Geometry, version: int, label: str, pages: int, *, factory: bool = False
) -> AppImage:
    """Build a deterministic ``.bin`` of ``pages`` pages after the 4 KB placeholder (TOOL rules).

    Page 0 is the compiled-in boot-control page; the body starts with a magic, the version and
    the label so different builds differ; a factory image (hex2bin ``-f 0``) is full-slot
    size with byte 0 forced to 0xF8.
    """
    placeholder = bootctl.get_default_page()[: geometry.page_size]
    seed = hashlib.sha256(f"{label}:{version}".encode()).digest()
    body = APP_MAGIC + bytes([version & 0xFF]) + label.encode()[:32].ljust(32, b"\0")
    fill = seed * (1 + geometry.page_size * pages // len(seed))
    body = (body + fill)[: geometry.page_size * pages]
    data = placeholder + body
    if factory:
        data = data.ljust(geometry.slot_size, b"\xff")
        data = b"\xf8" + data[1:]
    return AppImage(version=version, label=label, data=data, factory=factory)


@attrs.frozen
class Reply:
    """ENV-6: what the device's HTTP client receives for a 200 answer: the bytes that arrived
    before the connection ended and the Content-Length header (``None`` when there is none).
    Fewer bytes than Content-Length means the connection was dropped or stalled."""

    body: bytes = attrs.field(repr=False)
    content_length: int | None


class DeviceContext(Protocol):
    """What the model needs from the scenario (implemented in ``otamodel.env``)."""

    @property
    def config(self) -> Config: ...

    @property
    def geometry(self) -> Geometry: ...

    @property
    def manifest_url(self) -> str: ...

    @property
    def public_key_pem(self) -> bytes | None: ...

    @property
    def factory(self) -> AppImage: ...

    @property
    def images(self) -> tuple[AppImage, ...]: ...

    @property
    def release_count(self) -> int: ...

    @property
    def tears(self) -> bool: ...

    @property
    def user_actions(self) -> tuple[str, ...]: ...

    @property
    def fs_write_calls(self) -> bool: ...

    @property
    def factory_signature(self) -> str: ...

    def serve(self, release: int, url: str) -> bytes | Reply | None: ...

    def identify(self, slot: bytes) -> AppImage | None: ...
