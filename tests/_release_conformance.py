"""REL-40 harness: a shipped scenario's releases made with ``release make`` and run through the
model, once over a real server (``otamodel serve``, HTTP or HTTPS) with a server fault and once
on the in-memory server with the modelled fault that stands for it.

Every release of the scenario is in turn the *target*: the release the device is offered
(after the release it needs first: a patch's base, the version an erase removes). Faults apply
to the file the target makes the device download (the image, or the patch) and, with a switch,
to the manifest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import attrs

from otamodel.env import (
    HttpTransport,
    Release,
    Scenario,
    enabled_actions,
    get_scenario,
    initial_world,
    step,
    with_variant,
)
from otamodel.env._scenario import OTHER_KEY_SCALAR, TEST_KEY_SCALAR
from otamodel.env._spec import ReleaseKind, ReleaseSpec, SignatureMode, structure_spec
from otamodel.formats import signature
from otamodel.model import Action, CheckState, CoreTask, World
from otamodel.model._core_io import get_truncated_length
from otamodel.model._enums import DownloadStep, SvcState
from otamodel.release import ReleaseError, make_release
from otamodel.release._faults import Fault, ModelledFault, get_modelled_fault, parse_fault
from otamodel.release._make import Overrides
from otamodel.release._model import get_model_release
from otamodel.release._serve import ServerThread

STEPS = 1500
BUDGET = (("transfer_fail", 1), ("corrupt", 1), ("truncate", 1), ("publish", 3), ("ctrl", 4))


class NotExpressibleError(Exception):
    """A scenario release ``release make`` cannot write (names the missing capability)."""


@attrs.frozen
class Target:
    """One release of a scenario as the update under test."""

    index: int
    before: int | None  # the release installed first (a patch's base, an erased version)
    before_version: int
    path: str  # the URL path the faults hit ("": an EraseVer release downloads nothing)
    size: int
    switch_to: int | None  # the other release a switch fault publishes


@attrs.frozen
class Made:
    scenario: Scenario
    root: Path
    folders: tuple[Path, ...]
    releases: tuple[Release, ...]
    targets: tuple[Target, ...]
    manifest_sizes: tuple[int, ...]


@attrs.frozen
class Run:
    world: World
    callbacks: tuple[str, ...]
    requests: tuple[str, ...]
    armed_at: int  # the request index from which the target was published (-1: never)
    steps: int


# ------------------------------------------------------------------ making the releases


def _key(spec: ReleaseSpec, scenario: Scenario, entry: dict[str, object]) -> bytes | None:
    if "Signature" not in entry:
        return None
    mode = spec.signature or SignatureMode.VALID
    if mode is SignatureMode.GARBAGE:
        raise NotExpressibleError("a Signature that is not an ECDSA signature (release make signs)")
    scalar = OTHER_KEY_SCALAR if mode is SignatureMode.OTHER_KEY else TEST_KEY_SCALAR
    return signature.derive_private_key_pem(scalar)


def _fields(manifest: bytes) -> dict[str, object]:
    """What the device reads from a manifest (PatchURL aside: release make names patches
    ``from-v<N>/<name>.patch``); "EraseVer": false and an absent EraseVer read the same
    on a device that has not read an EraseVer manifest."""
    entry = dict(json.loads(manifest)["ota"][-1])
    entry["EraseVer"] = entry.get("EraseVer") is True
    entry["Patch"] = [
        {k: v for k, v in p.items() if k != "PatchURL"} for p in entry.get("Patch", [])
    ]
    if entry["EraseVer"]:
        entry = {"Version": entry["Version"], "EraseVer": True}
    return entry


class _Maker:
    def __init__(self, scenario: Scenario, tmp: Path) -> None:
        self.scenario = scenario
        self.tmp = tmp
        self.by_version: dict[int, Path] = {}  # full releases by their build's version

    def get_base(self, version: int) -> Path:
        if version in self.by_version:
            return self.by_version[version]
        factory = self.scenario.factory
        if version != factory.version:
            raise NotExpressibleError(f"a patch from v{version}, which no release before it holds")
        source = self.tmp / "factory.bin"
        source.write_bytes(factory.data)
        out = self.tmp / "bases" / "factory"
        out.parent.mkdir(exist_ok=True)
        make_release(source, out, version=factory.version, base_url=_SERVER, name="factory_v1")
        self.by_version[version] = out
        return out

    def make(self, spec: ReleaseSpec, release: Release, out: Path) -> None:
        if spec.kind is ReleaseKind.ERASE:
            version = spec.erase_version if spec.erase_version is not None else spec.version
            make_release(None, out, version=version, erase=True, manifest_size=spec.manifest_size)
            return
        if spec.erase_ver is True:
            raise NotExpressibleError("EraseVer true in a manifest that also names an image")
        entry = json.loads(release.manifest)["ota"][-1]
        url = str(entry["URL"])
        data = release.get_file(url)
        assert data is not None, url
        base_url, _, file = url.rpartition("/")
        name = file.rsplit(".", 1)[0]
        overrides = Overrides(
            version=entry["Version"] if entry["Version"] != spec.version else None,
            digest=entry["Digest"] if entry["Digest"] != hashlib.sha256(data).hexdigest() else None,
        )
        bases: tuple[Path, ...] = ()
        if spec.kind is ReleaseKind.PATCH:
            base_version = spec.base_version or self.scenario.factory.version
            base = self.get_base(base_version)
            bases = (base,)
            patch = entry["Patch"][0]
            overrides = attrs.evolve(
                overrides,
                base_version=patch["BaseVersion"] if patch["BaseVersion"] != base_version else None,
                base_digest=patch["BaseVerDigest"]
                if patch["BaseVerDigest"] != _image_digest(base)
                else None,
            )
        source = self.tmp / f"src_{out.name}.bin"
        source.write_bytes(data)
        options = {
            "version": spec.version,
            "base_url": base_url,
            "name": name,
            "key_pem": _key(spec, self.scenario, entry),
            "bases": bases,
            "manifest_size": spec.manifest_size,
            "overrides": overrides,
            "min_patch": 0,
        }
        try:
            make_release(source, out, unchecked=bool(overrides.get_names()), **options)  # type: ignore[arg-type]
        except ReleaseError:
            make_release(source, out, unchecked=True, **options)  # type: ignore[arg-type]
        if spec.kind is ReleaseKind.FULL:
            self.by_version.setdefault(spec.version, out)


_SERVER = "http://127.0.0.1:8000"


def _image_digest(folder: Path) -> str:
    info = json.loads((folder / "release.json").read_bytes())
    return str(info["image"]["sha256"])


def _get_targets(
    specs: list[ReleaseSpec], made: tuple[Release, ...], scenario: Scenario
) -> tuple[Target, ...]:
    out = []
    count = len(specs)
    for index, spec in enumerate(specs):
        needed: int | None = None
        if spec.kind is ReleaseKind.PATCH:
            needed = spec.base_version or scenario.factory.version
        elif spec.kind is ReleaseKind.ERASE:
            needed = spec.erase_version if spec.erase_version is not None else spec.version
        before = None
        if needed is not None and needed != scenario.factory.version:
            before = next(
                (
                    j
                    for j, s in enumerate(specs)
                    if j != index and s.kind is ReleaseKind.FULL and s.version == needed
                ),
                None,
            )
        path, size = "", 0
        entry = json.loads(made[index].manifest)["ota"][-1]
        if spec.kind is not ReleaseKind.ERASE:
            url = entry["Patch"][0]["PatchURL"] if spec.kind is ReleaseKind.PATCH else entry["URL"]
            data = made[index].get_file(url)
            path, size = urlsplit(url).path, len(data or b"")
        others = [j for j in range(count) if j not in (index, before)]
        out.append(Target(index, before, needed or 0, path, size, others[0] if others else None))
    return tuple(out)


def make_scenario_releases(
    name: str, tmp: Path, variant: str | None = None, scenario: Scenario | None = None
) -> Made:
    """Every release of a shipped scenario (or of ``scenario``), made with ``release make``
    into ``root/r<i>``; each made manifest reads on a device as the scenario's own (checked
    here). A release it cannot write raises NotExpressibleError naming what is missing."""
    scenario = scenario if scenario is not None else get_scenario(name)
    if variant is not None:
        scenario = with_variant(scenario, variant)
    specs = structure_spec(scenario.source).releases
    root = tmp / "root"
    root.mkdir(parents=True)
    maker = _Maker(scenario, tmp)
    folders = []
    for index, (spec, release) in enumerate(zip(specs, scenario.releases, strict=False)):
        folder = root / f"r{index}"
        maker.make(spec, release, folder)
        made = get_model_release(folder)
        assert _fields(made.manifest) == _fields(release.manifest), (name, index)
        if spec.manifest_size is not None:
            assert len(made.manifest) == spec.manifest_size
        folders.append(folder)
    releases = tuple(get_model_release(f) for f in folders)
    targets = _get_targets(list(specs), releases, scenario)
    scenario = attrs.evolve(scenario, budget=BUDGET, releases=releases)
    sizes = tuple(len(r.manifest) for r in releases)
    return Made(scenario, root, tuple(folders), releases, targets, sizes)


# ------------------------------------------------------------------ faults


def get_downloaded(made: Made, target: Target, run: Run) -> Target:
    """The target with the file the device really downloaded once it was published (a patch
    release whose base the device does not match makes it download the full image)."""
    asked = run.requests[run.armed_at :] if run.armed_at >= 0 else ()
    for path in asked:
        for url, data in made.releases[target.index].files:
            if urlsplit(url).path == path:
                return attrs.evolve(target, path=path, size=len(data))
    return target


def get_fault_specs(made: Made, target: Target, reached: bool) -> list[str | None]:
    """The server faults for a target: on the file it downloads (when the device downloads
    it at all: ``reached``) and a switch to another release after the manifest."""
    chunk = made.scenario.geometry.chunk
    p = target.path
    out: list[str | None] = [None, f"{p if p and reached else '/ota.json'}:throttle:rate=200000"]
    if p and reached:
        out += [
            f"{p}:drop:bytes={chunk + 10},times=1",
            f"{p}:drop:bytes=10,times=1",
            f"{p}:stall:bytes={2 * chunk},seconds=2,times=1",
            f"{p}:status:status=404,times=1",
            f"{p}:status:status=500,times=1",
            f"{p}:flip:offset={chunk},times=1",
            f"{p}:length:length=missing,times=1",
            f"{p}:length:length={chunk + 1},times=1",
            f"{p}:length:length={target.size + chunk},times=1",
        ]
    if target.switch_to is not None:
        out.append(f"/ota.json:switch:release=r{target.switch_to},times=1")
    return out


def _modelled(fault: Fault | None, made: Made, target: Target) -> ModelledFault | None:
    if fault is None:
        return None
    return get_modelled_fault(
        fault,
        target.size,
        chunk=made.scenario.geometry.chunk,
        stale_length=made.manifest_sizes[target.index],
    )


# ------------------------------------------------------------------ driving the device


def _user(world: World, target: Target, made: Made) -> Action | None:
    """What the product's app does: a manual check when nothing checks periodically; with
    auto-update off, start the update the check found."""
    if world.running is None or world.pending or world.service.state is not SvcState.STATE_IDLE:
        return None
    actions = made.scenario.user_actions
    if (
        "initiate_ota" in actions
        and not world.scenario.config.auto_update
        and world.service.params.version > world.running.version
        and world.get_budget("ctrl") > 0
    ):
        return Action("ctrl", "initiate_ota")
    if not world.scenario.config.periodic:
        return Action("ctrl", "update_check")
    return None


def _inject_modelled(world: World, target: Target, modelled: ModelledFault) -> Action | None:
    kind, at = modelled.kind, modelled.at
    if not world.get_budget(kind):
        return None
    if kind == "publish":
        if world.service.check is CheckState.READ_JSON and world.published == target.index:
            return Action("publish", str(target.switch_to))
        return None
    core = world.core
    downloading = (
        core.task is CoreTask.DOWNLOAD_IMAGE
        and world.net.open
        and urlsplit(world.net.url).path == target.path
    )
    if not downloading:
        return None
    first = core.sub is DownloadStep.D_GET_CONTENT_LENGTH and at == 0
    later = core.sub is DownloadStep.D_DOWNLOAD and core.copied == at
    if not (first or later):
        return None
    if kind == "truncate" and get_truncated_length(world) is None:
        return None
    return Action(kind)


def drive(
    made: Made,
    target: Target,
    *,
    modelled: ModelledFault | None = None,
    transport: HttpTransport | None = None,
    arm: Callable[[], None] | None = None,
) -> Run:
    """Run the device: publish the release it needs first, then the target (``arm`` is
    called then: the real server's faults start), inject the modelled fault (in memory),
    stop when the device rests in a state it rested in before (or after STEPS)."""
    scenario = (
        made.scenario if transport is None else attrs.evolve(made.scenario, transport=transport)
    )
    world = initial_world(scenario)
    callbacks: list[str] = []
    requests = transport.requests if transport is not None else []
    armed = target.before is None and target.index == 0
    armed_at = 0 if armed else -1
    if armed and arm is not None:
        arm()
    seen: set[World] = set()
    steps = 0
    while steps < STEPS:
        steps += 1
        action: Action | None = None
        if not armed:
            running = world.running
            if target.before is None or (
                world.published == target.before
                and running is not None
                and running.version == target.before_version
                and not world.pending
            ):
                action = Action("publish", str(target.index))
                armed, armed_at = True, len(requests)
                if arm is not None:
                    arm()
            elif world.published != target.before:
                action = Action("publish", str(target.before))
        if action is None and armed and modelled is not None:
            action = _inject_modelled(world, target, modelled)
        if action is None and armed:
            # From here on the next input depends on the world alone: a world seen before
            # starts the same cycle again.
            if world in seen:
                break
            seen.add(world)
        if action is None:
            action = _user(world, target, made)
        if action is None:
            timer = [a for a in enabled_actions(world) if a.kind == "timer"]
            action = timer[0] if timer else Action("tick")
        result = step(world, action)
        assert not result.is_refused, (action, result.refusal)
        callbacks.extend(
            n.split(": ", 1)[1] for n in result.notes if n.startswith("app callback: ")
        )
        world = result.world
    return Run(world, tuple(callbacks), tuple(requests), armed_at, steps)


def collapse(callbacks: tuple[str, ...]) -> list[str]:
    """The callback story without repeated empty checks (their count depends on timing)."""
    out: list[str] = []
    for item in callbacks:
        if item in ("UPDATE_CHECK_START", "UPDATE_NOTAVAILABLE") and item in out[-2:]:
            continue
        out.append(item)
    return out


def outcome(run: Run, published: int | None = None) -> tuple[object, ...]:
    """What the device ends with; ``published`` is the release the real server ended up
    publishing (a switch fault publishes another one behind the model's back)."""
    w = run.world
    return (
        collapse(run.callbacks),
        w.running.version if w.running else None,
        w.phase,
        tuple(sorted(w.fs.files)),
        w.flash,
        w.published if published is None else published,
    )


def run_http(
    made: Made,
    target: Target,
    server: ServerThread,
    scheme: str,
    cafile: str | None,
    spec: str | None,
) -> tuple[Run, int]:
    """The run over the real server with fault ``spec`` armed when the target is published;
    returns it with the release the server publishes at the end."""
    faults = [parse_fault(spec)] if spec else []

    def reset() -> None:
        server.server.set_faults([])
        server.server.served.clear()
        server.server.log.clear()
        server.server.set_publish("r0")

    def arm() -> None:
        server.call(lambda: server.server.set_faults(faults))

    server.call(reset)
    transport = HttpTransport(
        f"{scheme}://127.0.0.1:{server.port}",
        releases=[f.name for f in made.folders],
        cafile=cafile,
        timeout=1.0,  # below the 2 s stall fault, with room for a loaded machine
    )
    run = drive(made, target, transport=transport, arm=arm)
    published = int(server.call(lambda: server.server.publish)[1:])
    return run, published


def run_memory(made: Made, target: Target, spec: str | None) -> Run:
    fault = parse_fault(spec) if spec else None
    return drive(made, target, modelled=_modelled(fault, made, target))
