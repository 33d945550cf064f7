"""REL-40, ENV-6, ENV-7: each shipped scenario's releases, made with ``release make`` and served
by ``otamodel serve`` (HTTP and HTTPS), drive the model through the real transport; with each
server fault the device must end as it does on the in-memory server with the modelled fault."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import attrs
import pytest
from _release import Run, drive, make

pytest.importorskip("aiohttp")

from otamodel.env import (
    MANIFEST_URL,
    HttpTransport,
    Scenario,
    get_scenario,
    get_scenario_names,
    initial_world,
    with_variant,
)
from otamodel.env._scenario import OTHER_KEY_SCALAR, TEST_KEY_SCALAR
from otamodel.formats import signature
from otamodel.model import Action, CheckState, CoreTask, World
from otamodel.release._faults import Fault, ServeConfig, get_modelled_fault, parse_fault
from otamodel.release._model import get_model_release
from otamodel.release._serve import ServerOptions, ServerThread
from otamodel.release._tls import make_self_signed, server_context

STEPS = 1500
BUDGET = (("transfer_fail", 1), ("corrupt", 1), ("publish", 1), ("ctrl", 4))


@attrs.frozen
class Made:
    scenario: Scenario
    root: Path
    folders: tuple[Path, ...]
    image_size: int
    image_path: str


def _erase_release(folder: Path, spec: dict[str, object]) -> None:
    """An EraseVer manifest (release make does not write these)."""
    from otamodel.formats import manifest as mf

    folder.mkdir(parents=True)
    version = spec.get("erase_version", spec.get("version", 2))
    data = mf.make_manifest(version=version, url=MANIFEST_URL, digest="0" * 64, erase_ver=True)
    (folder / "ota.json").write_bytes(data)


def make_scenario_releases(name: str, tmp: Path, variant: str | None = None) -> Made:
    """Every release of a shipped scenario, made with ``release make`` into ``root/r<i>``."""
    scenario = get_scenario(name)
    if variant is not None:
        scenario = with_variant(scenario, variant)
    first = scenario.source.get("releases", [{}])[0]
    if first.get("kind", "full") != "full" or scenario.geometry.chunk > 1024:
        pytest.skip(f"{name}: the first release is not a small full image")
    root = tmp / "root"
    root.mkdir()
    images = {i.version: i for i in scenario.images}
    factory = scenario.factory
    made: dict[int, Path] = {}
    base_src = tmp / "factory.bin"
    base_src.write_bytes(factory.data)
    (tmp / "bases").mkdir()
    made[factory.version] = make(tmp, factory.data, factory.version, folder="bases/factory")
    folders = []
    for index, spec in enumerate(scenario.source.get("releases", [])):
        folder = root / f"r{index}"
        if spec.get("kind") == "erase":
            _erase_release(folder, spec)
        else:
            version = spec.get("version", 2)
            key = None
            if scenario.config.secure_boot:
                scalar = (
                    OTHER_KEY_SCALAR if spec.get("signature") == "other-key" else TEST_KEY_SCALAR
                )
                key = signature.derive_private_key_pem(scalar)
            bases = ()
            if spec.get("kind") == "patch":
                bases = (made[spec.get("base_version", factory.version)],)
            image = images[version]
            make(
                tmp,
                image.data,
                version,
                name=image.label,
                bases=bases,
                key_pem=key,
                folder=f"root/r{index}",
            )
            made.setdefault(version, folder)
        folders.append(folder)
    first = scenario.source["releases"][0]
    image = images[first.get("version", 2)]
    scenario = attrs.evolve(scenario, budget=BUDGET)
    return Made(scenario, root, tuple(folders), len(image.data), f"/{image.label}.bin")


def _collapse(callbacks: list[str]) -> list[str]:
    """The callback story without repeated empty checks (their count depends on timing)."""
    out: list[str] = []
    for item in callbacks:
        if item in ("UPDATE_CHECK_START", "UPDATE_NOTAVAILABLE") and item in out[-2:]:
            continue
        out.append(item)
    return out


def _outcome(run: Run, published: int | None = None) -> tuple[object, ...]:
    """What the device ends with; ``published`` is the release the real server ended up
    publishing (a switch fault publishes another one behind the model's back)."""
    w = run.world
    files = tuple(sorted((name, data) for name, data in w.fs.files))
    return (
        _collapse(run.callbacks),
        w.running.version if w.running else None,
        w.phase,
        files,
        w.flash,
        w.published if published is None else published,
    )


def _user(world: World) -> Action | None:
    """Ask for an update check when the scenario has no periodic check."""
    if world.scenario.config.periodic or world.running is None:
        return None
    idle = world.service.state.name == "STATE_IDLE" and not world.pending
    if idle and world.get_budget("ctrl") > 1 and world.running.version == 1:
        return Action("ctrl", "update_check")
    return None


def _modelled(
    fault: Fault | None,
    made: Made,
    chunk: int,
    extra: Callable[[World], Action | None] | None = None,
) -> Callable[[World], Action | None]:
    """The in-memory input standing for a server fault, injected where the server acts."""
    kind = get_modelled_fault(fault, made.image_size) if fault is not None else None

    def inject(world: World) -> Action | None:
        core = world.core
        downloading = (
            core.task is CoreTask.DOWNLOAD_IMAGE
            and world.net.open
            and urlsplit(world.net.url).path == made.image_path
        )
        if kind == "transfer_fail" and world.get_budget(kind) and downloading:
            assert fault is not None
            sent = min(fault.bytes, made.image_size) if fault.kind.value in ("drop", "stall") else 0
            if fault.kind.value == "length":
                sent = made.image_size
            at = sent // chunk * chunk
            if (core.sub == "D_GET_CONTENT_LENGTH" and at == 0) or (
                core.sub == "D_DOWNLOAD" and core.copied == at
            ):
                return Action("transfer_fail")
        if kind == "corrupt" and world.get_budget(kind) and downloading:
            assert fault is not None
            at = fault.offset // chunk * chunk if fault.kind.value == "flip" else 0
            if (core.sub == "D_GET_CONTENT_LENGTH" and at == 0) or (
                core.sub == "D_DOWNLOAD" and core.copied == at
            ):
                return Action("corrupt")
        if (
            kind == "publish"
            and world.get_budget(kind)
            and world.service.check is CheckState.READ_JSON
        ):
            return Action("publish", "1")
        if extra is not None and (action := extra(world)) is not None:
            return action
        return _user(world)

    return inject


def _faults(made: Made, chunk: int) -> list[str | None]:
    image = made.image_path
    out: list[str | None] = [
        None,
        f"{image}:drop:bytes={chunk + 10},times=1",
        f"{image}:drop:bytes=10,times=1",
        f"{image}:stall:bytes={2 * chunk},seconds=2,times=1",
        f"{image}:status:status=404,after=/ota.json,times=1",
        f"{image}:status:status=500,after=/ota.json,times=1",
        f"{image}:flip:offset={chunk},times=1",
        f"{image}:length:length=missing,times=1",
        f"{image}:length:length={chunk + 1},times=1",
        f"{image}:length:length={made.image_size + chunk},times=1",
        f"{image}:throttle:rate=200000",
    ]
    if len(made.folders) > 1:
        out.append("/ota.json:switch:release=r1,times=1")
    return out


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed(tmp_path_factory.mktemp("tls"))


def _run_http(
    made: Made,
    server: ServerThread,
    scheme: str,
    cafile: str | None,
    spec: str | None,
    chunk: int,
    extra: Callable[[World], Action | None] | None = None,
) -> Run:
    faults = [parse_fault(spec)] if spec else []

    def reset() -> None:
        server.server.set_faults(faults)
        server.server.served.clear()
        server.server.log.clear()
        server.server.set_publish("r0")

    server.call(reset)
    transport = HttpTransport(
        f"{scheme}://127.0.0.1:{server.port}",
        releases=[f.name for f in made.folders],
        cafile=cafile,
        timeout=1.0,  # below the 2 s stall fault, with room for a loaded machine
    )
    releases = tuple(get_model_release(f) for f in made.folders)
    scenario = attrs.evolve(made.scenario, releases=releases, transport=transport)
    return drive(
        initial_world(scenario),
        steps=STEPS,
        inject=_modelled(None, made, chunk, extra),
        urls=transport.requests,
    )


def _run_memory(
    made: Made,
    spec: str | None,
    chunk: int,
    extra: Callable[[World], Action | None] | None = None,
) -> Run:
    fault = parse_fault(spec) if spec else None
    releases = tuple(get_model_release(f) for f in made.folders)
    scenario = attrs.evolve(made.scenario, releases=releases)
    inject = _modelled(fault, made, chunk, extra)
    return drive(initial_world(scenario), steps=STEPS, inject=inject)


# The scenarios whose releases `release make` reproduces and whose product downloads on its own
# (the scenario library's other entries vary options and inputs this harness does not rebuild).
CONFORMANCE_SCENARIOS = [
    *(
        name
        for name in (
            "default",
            "secure",
            "patch",
            "erase",
            "attacker",
            "attacker-patch",
            "rollback",
        )
        if name in get_scenario_names()
    ),
    pytest.param(
        "bare-metal",
        marks=pytest.mark.xfail(
            strict=True,
            reason="bare-metal scheduler, fault length=257 on the image: over HTTP the app sees "
            "DOWNLOAD_SUCCESS before the digest failure, in memory the single status slot loses "
            "it; open (found by the scenario library)",
        ),
    ),
]


@pytest.fixture(scope="module", params=CONFORMANCE_SCENARIOS)
def made(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Made:
    return make_scenario_releases(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module", params=["http", "https"])
def served(
    request: pytest.FixtureRequest, made: Made, tls: tuple[Path, Path]
) -> Iterator[tuple[ServerThread, str, str | None]]:
    cert, key = tls
    context = server_context(cert, key) if request.param == "https" else None
    options = ServerOptions(port=0, ssl_context=context)
    with ServerThread(made.root, options, ServeConfig(publish="r0")) as server:
        yield server, request.param, str(cert) if context else None


def test_every_server_fault_matches_its_modelled_fault(
    made: Made, served: tuple[ServerThread, str, str | None]
) -> None:
    server, scheme, cafile = served
    chunk = made.scenario.geometry.chunk
    mismatches = []
    for spec in _faults(made, chunk):
        real = _run_http(made, server, scheme, cafile, spec, chunk)
        published = int(server.call(lambda: server.server.publish)[1:])
        modelled = _run_memory(made, spec, chunk)
        if _outcome(real, published) != _outcome(modelled):
            mismatches.append((spec, _collapse(real.callbacks), _collapse(modelled.callbacks)))
        if spec is not None:
            assert server.call(lambda: dict(server.server.fired)), f"{spec} never fired"
    assert not mismatches, mismatches


def test_the_update_really_went_over_the_network(tmp_path: Path) -> None:
    made = make_scenario_releases("default", tmp_path)
    with ServerThread(made.root, ServerOptions(port=0), ServeConfig(publish="r0")) as server:
        run = _run_http(made, server, "http", None, None, made.scenario.geometry.chunk)
        paths = [e["path"] for e in server.server.log]
    assert 2 in run.versions
    assert "/ota.json" in paths and made.image_path in paths


def _patch_faults(path: str, chunk: int) -> list[str | None]:
    return [
        None,
        f"{path}:drop:bytes={chunk + 10},times=1",
        f"{path}:status:status=404,times=1",
        f"{path}:flip:offset={chunk},times=1",
        f"{path}:length:length=missing,times=1",
    ]


@pytest.mark.parametrize("variant", ["harmony-3.9.0", "harmony-3.9.1"])
def test_patch_downloads_match_their_modelled_faults(tmp_path: Path, variant: str) -> None:
    """The second release of ``patch`` (a jdiff patch from v2) over HTTP, faults on the patch."""
    made = make_scenario_releases("patch", tmp_path, variant)
    chunk = made.scenario.geometry.chunk
    patch_file = made.folders[1] / "from-v2" / "app_v3.patch"
    patched = attrs.evolve(
        made, image_size=patch_file.stat().st_size, image_path="/from-v2/app_v3.patch"
    )
    publish = _publish_after_v2()
    mismatches = []
    with ServerThread(made.root, ServerOptions(port=0), ServeConfig(publish="r0")) as server:
        for spec in _patch_faults(patched.image_path, chunk):
            real = _run_http(patched, server, "http", None, spec, chunk, publish)
            published = int(server.call(lambda: server.server.publish)[1:])
            modelled = _run_memory(patched, spec, chunk, publish)
            if _outcome(real, published) != _outcome(modelled):
                mismatches.append((spec, _collapse(real.callbacks), _collapse(modelled.callbacks)))
            if spec is not None:
                assert server.call(lambda: dict(server.server.fired)), f"{spec} never fired"
            if spec is None and variant == "harmony-3.9.0":
                assert 3 in real.versions and "/from-v2/app_v3.patch" in real.urls
    assert not mismatches, mismatches


def _publish_after_v2() -> Callable[[World], Action | None]:
    def inject(world: World) -> Action | None:
        running = world.running
        if world.published == 0 and running is not None and running.version == 2:
            return None if world.pending else Action("publish", "1")
        return None

    return inject
