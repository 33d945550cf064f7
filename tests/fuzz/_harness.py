"""The fuzz harness: seeds from the tests' inputs, byte-level mutations, the typed-error
contract, and the per-target counters the summary prints (docs/spec/cli.md, issue 17).

A target passes an input if it returns or raises an :class:`~otamodel.errors.OtaModelError`
(typed, located). Anything else (KeyError, IndexError, RecursionError, MemoryError, a
traceback from the CLI, a wrong exit status) is a crash: the test fails with the input.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence

from hypothesis import strategies as st

from otamodel.errors import OtaModelError

#: inputs run per target in this session, crashes found, seconds spent
COUNTS: collections.Counter[str] = collections.Counter()
SECONDS: collections.Counter[str] = collections.Counter()
CRASHES: collections.Counter[str] = collections.Counter()

_INTERESTING = [
    b"\x00",
    b"\xff",
    b"\xa7",
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b",",
    b":",
    b"\n",
    b"\r\n",
    b"-1",
    b"0",
    b"4294967296",
    b"9" * 30,
    b"0x",
    b"\\u0000",
    b"=",
    b"#",
    b"\xa7\xa3",
    b"\xa7\xa6\xff",
    b":00000001FF",
]


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes], max_size: int = 1 << 16) -> bytes:
    """A seed, then 0-6 mutations: flip, insert, delete, duplicate, splice another seed,
    truncate, or an interesting token."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.integers(0, 6))
        at = draw(st.integers(0, len(data)))
        if kind == 0 and data:
            at = min(at, len(data) - 1)
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == 1:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == 2:
            end = draw(st.integers(at, min(len(data), at + 64)))
            del data[at:end]
        elif kind == 3:
            end = draw(st.integers(at, min(len(data), at + 64)))
            data[at:at] = data[at:end] * draw(st.integers(1, 4))
        elif kind == 4:
            other = draw(st.sampled_from(seeds))
            cut = draw(st.integers(0, len(other)))
            data = data[:at] + bytearray(other[cut:])
        elif kind == 5:
            data = data[:at]
        else:
            data[at:at] = draw(st.sampled_from(_INTERESTING))
    return bytes(data[:max_size])


def inputs(seeds: Sequence[bytes], max_size: int = 1 << 16) -> st.SearchStrategy[bytes]:
    """Mutated seeds, with plain random bytes now and then."""
    return st.one_of(mutated(seeds, max_size), st.binary(max_size=256))


def run_target(name: str, target: Callable[[], object]) -> None:
    """Run one input through ``target``; only typed errors may escape (else: a crash)."""
    COUNTS[name] += 1
    started = time.perf_counter()
    try:
        target()
    except OtaModelError:
        pass
    except BaseException:
        CRASHES[name] += 1
        raise
    finally:
        SECONDS[name] += time.perf_counter() - started
