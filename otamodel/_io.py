"""The one output layer of otamodel: every file a command writes goes through here (IO-1..IO-7).

* A regular file (new, or existing) is written to a temporary sibling and renamed over the
  target, so a failed or killed run leaves the old content; the new file gets the user's umask
  (or, when replacing a file, the old file's permission bits), never mkstemp's 0600 (IO-1).
* A path that exists and is not a regular file (a device, a FIFO, ``/dev/stdout``) is written
  in place and never replaced (IO-2). A symlink to a regular file keeps being a symlink: its
  target is replaced (IO-2).
* ``-`` is standard output (IO-3).
* Names made from scenario or trace names are sanitised and stay inside the directory the user
  gave (:func:`get_child_path`, IO-4).
* :class:`OutputSet` commits several files together or not at all (IO-5).
* Temporary files of a run stopped by SIGTERM/SIGINT are removed (:func:`cleanup_temporaries`,
  IO-6); errors name the target, never a temporary file (IO-7).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from otamodel.errors import InputError, OutputError

__all__ = [
    "STDOUT",
    "OutputSet",
    "cleanup_temporaries",
    "get_child_path",
    "get_default_mode",
    "get_size",
    "open_output",
    "read_input",
    "temporary_sibling",
    "write_atomic",
    "write_output",
]

STDOUT = "-"
"""The path that means standard output."""

_LIVE: set[Path] = set()  # temporary files not yet renamed or removed (IO-6)
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_MAX_NAME = 200
_IN_PLACE_ROOTS = ("/dev/", "/proc/")


def get_default_mode() -> int:
    """Permission bits of a new regular file under the current umask (IO-1)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def cleanup_temporaries() -> None:
    """Remove every temporary file this process still holds (IO-6; the CLI calls it when a
    signal stops a run)."""
    for tmp in list(_LIVE):
        with contextlib.suppress(OSError):
            tmp.unlink()
        _LIVE.discard(tmp)


def _is_stdout(path: str | os.PathLike[str]) -> bool:
    return os.fspath(path) == STDOUT


def _is_special(path: Path) -> bool:
    """True if ``path`` exists (following links) and is not a regular file, or names one of the
    process's own streams (``/dev/stdout``, ``/proc/self/fd/1``): written in place (IO-2)."""
    if _is_stream_link(path):
        if not path.exists():  # never create files under /dev or /proc
            raise OutputError(f"cannot write {path}: no such device or stream")
        return True
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise OutputError(f"cannot write {path}: it is a directory")
    return not stat.S_ISREG(mode)


def _is_stream_link(path: Path) -> bool:
    """True if ``path`` or any link on its way names something under /dev/ or /proc/ (such as
    ``/dev/stdout`` -> ``/proc/self/fd/1``, even when that fd is a regular file)."""
    current = os.path.abspath(path)
    for _ in range(40):
        if current.startswith(_IN_PLACE_ROOTS):
            return True
        if not os.path.islink(current):
            return False
        current = os.path.join(os.path.dirname(current), os.readlink(current))
        current = os.path.abspath(current)
    return False


def _real_target(path: Path) -> Path:
    """The file a rename must replace: a symlink's final target, so the link survives."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _new_temporary(target: Path) -> tuple[int, Path]:
    """Create ``.NAME.XXXXXXXX.tmp`` beside ``target`` (mode 0600), registered for removal
    *before* it exists, so a signal at any point cannot leak it (IO-6)."""
    directory = target.parent if str(target.parent) else Path(".")
    for _ in range(100):
        tmp = directory / f".{target.name[:_MAX_NAME]}.{secrets.token_hex(4)}.tmp"
        _LIVE.add(tmp)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            _LIVE.discard(tmp)
            continue
        except OSError as exc:
            _LIVE.discard(tmp)
            raise OutputError(f"cannot write {target}: {exc.strerror}") from None
        except BaseException:
            _discard(tmp)
            raise
        return fd, tmp
    raise OutputError(f"cannot write {target}: no free temporary name")  # pragma: no cover


def _discard(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink()
    _LIVE.discard(tmp)


def _mode_for(target: Path, mode: int | None) -> int:
    if mode is not None:
        return mode
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return get_default_mode()


class _Staged:
    """A temporary file written and flushed, waiting for its rename."""

    def __init__(self, target: Path, tmp: Path) -> None:
        self.target = target
        self.tmp = tmp


def _stage(target: Path, payload: bytes, mode: int | None) -> _Staged:
    fd, tmp = _new_temporary(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fchmod(handle.fileno(), _mode_for(target, mode))
            os.fsync(handle.fileno())
    except OSError as exc:
        _discard(tmp)
        raise OutputError(f"cannot write {target}: {exc.strerror}") from None
    except BaseException:
        _discard(tmp)
        raise
    return _Staged(target, tmp)


def _write_in_place(path: Path, payload: bytes) -> None:
    # Opening a device or FIFO for writing (with O_TRUNC) does not replace or truncate it.
    try:
        with open(path, "wb") as handle:
            handle.write(payload)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from None


def _to_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def write_output(
    path: str | os.PathLike[str], data: bytes | str, *, mode: int | None = None
) -> None:
    """Write ``data`` to ``path`` by the rules of this module (IO-1 to IO-3, IO-7).

    ``mode`` forces the permission bits of a regular file (a private key's 0600).
    """
    payload = _to_bytes(data)
    if _is_stdout(path):
        sys.stdout.flush()
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if _is_special(target):
        _write_in_place(target, payload)
        return
    real = _real_target(target)
    staged = _stage(real, payload, mode)
    _commit([staged])


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Compatibility name of :func:`write_output` (regular files are written atomically)."""
    write_output(path, data)


def _commit(staged: list[_Staged]) -> None:
    """Rename every staged file over its target; on a failure, restore what was there (IO-5)."""
    backups: list[tuple[Path, Path | None]] = []
    try:
        if len(staged) > 1:  # one rename is atomic by itself; several need a way back
            for item in staged:
                backups.append((item.target, _backup(item.target)))
        done: list[_Staged] = []
        try:
            for item in staged:
                os.replace(item.tmp, item.target)
                _LIVE.discard(item.tmp)
                done.append(item)
        except BaseException as exc:
            _restore(done, dict(backups))
            if isinstance(exc, OSError):
                failed = staged[len(done)].target
                raise OutputError(f"cannot write {failed}: {exc.strerror}") from None
            raise
    finally:
        for item in staged:
            _discard(item.tmp)
        for _target, backup in backups:
            if backup is not None:
                _discard(backup)


def _backup(target: Path) -> Path | None:
    """A hard link to the current file at ``target`` (None when there is none)."""
    if not target.exists():
        return None
    fd, tmp = _new_temporary(target)
    os.close(fd)
    try:
        os.unlink(tmp)
        os.link(target, tmp)
    except OSError:
        # No hard links here (some file systems): a byte copy is the fallback.
        try:
            tmp.write_bytes(target.read_bytes())
        except OSError as exc:
            _discard(tmp)
            raise OutputError(f"cannot write {target}: {exc.strerror}") from None
    return tmp


def _restore(done: list[_Staged], backups: dict[Path, Path | None]) -> None:
    for item in reversed(done):
        backup = backups.get(item.target)
        with contextlib.suppress(OSError):
            if backup is None:
                item.target.unlink()
            else:
                os.replace(backup, item.target)
                _LIVE.discard(backup)


class OutputSet:
    """Several output files committed together or not at all (IO-5).

    ``add`` writes each file's temporary sibling at once (so a full disk is found before any
    rename); :meth:`commit` renames them all, restoring the old files if a rename fails. Used as
    a context manager, leaving the block with an exception discards everything staged; ``-``
    and non-regular paths are written at commit time, after the regular files are in place.
    """

    def __init__(self) -> None:
        self._staged: list[_Staged] = []
        self._direct: list[tuple[str | os.PathLike[str], bytes]] = []
        self._targets: set[str] = set()

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self.discard()

    def add(
        self, path: str | os.PathLike[str], data: bytes | str, *, mode: int | None = None
    ) -> None:
        key = os.fspath(path)
        if key in self._targets and key != STDOUT:
            raise OutputError(f"{key} is named twice among the outputs")
        self._targets.add(key)
        payload = _to_bytes(data)
        if _is_stdout(path) or _is_special(Path(path)):
            self._direct.append((path, payload))
            return
        self._staged.append(_stage(_real_target(Path(path)), payload, mode))

    def commit(self) -> None:
        staged, self._staged = self._staged, []
        _commit(staged)
        direct, self._direct = self._direct, []
        for path, payload in direct:
            write_output(path, payload)

    def discard(self) -> None:
        for item in self._staged:
            _discard(item.tmp)
        self._staged = []
        self._direct = []


@contextlib.contextmanager
def open_output(
    path: str | os.PathLike[str], *, mode: int | None = None, buffering: int = 8192
) -> Iterator[BinaryIO]:
    """A binary stream to ``path`` for writers that produce a lot (IO-1 to IO-3, IO-6).

    A regular file is written to a temporary sibling renamed over ``path`` when the block ends
    without an exception; otherwise the temporary file is removed and ``path`` is untouched.
    """
    if _is_stdout(path):
        sys.stdout.flush()
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if _is_special(target):
        try:
            special: BinaryIO = open(target, "wb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror}") from None
        with special:
            yield special
        return
    real = _real_target(target)
    fd, tmp = _new_temporary(real)
    try:
        with os.fdopen(fd, "wb", buffering=buffering) as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), _mode_for(real, mode))
            os.fsync(handle.fileno())
    except OSError as exc:
        _discard(tmp)
        raise OutputError(f"cannot write {real}: {exc.strerror}") from None
    except BaseException:
        _discard(tmp)
        raise
    _commit([_Staged(real, tmp)])


def temporary_sibling(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary path beside ``path``, registered for removal on a signal (IO-6).

    Prefer :func:`open_output`; a caller of this function renames or unlinks the file itself.
    """
    fd, tmp = _new_temporary(Path(path))
    os.close(fd)
    return tmp


def get_child_path(directory: str | os.PathLike[str], name: str, suffix: str = "") -> Path:
    """``directory/name+suffix`` with ``name`` made safe: no separators, no ``..``, no leading
    dot, no control characters, bounded length; the result is always inside ``directory``
    (IO-4)."""
    safe = _UNSAFE.sub("_", name).strip("._") or "unnamed"
    safe = safe[:_MAX_NAME]
    folder = Path(directory)
    child = folder / f"{safe}{suffix}"
    if Path(os.path.abspath(child)).parent != Path(os.path.abspath(folder)):
        raise OutputError(f"{name!r} does not name a file inside {folder}")  # pragma: no cover
    return child


def read_input(
    path: str | os.PathLike[str], *, limit: int | None = None, option: str | None = None
) -> bytes:
    """The bytes of the user's input ``path``, refusing more than ``limit`` bytes with a
    :class:`~otamodel.errors.BoundError` naming ``option`` (bounded memory, BOUND-1)."""
    from otamodel.errors import BoundError

    try:
        with open(path, "rb") as handle:
            data = handle.read() if limit is None else handle.read(limit + 1)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if limit is not None and len(data) > limit:
        raise BoundError(f"{path} is larger than {limit} bytes", option=option)
    return data


def get_size(path: str | os.PathLike[str]) -> int:
    """The size of the user's input ``path`` in bytes (0 when it is not a regular file)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    return info.st_size if stat.S_ISREG(info.st_mode) else 0
