"""jdiff 0.7 patch writer: finds matches between old and new and emits strict 0.7 ops.

Private module; :func:`encode` is re-exported by :mod:`otamodel.formats.jdiff`.

Matching (no part of the format, so no rule ID): old is indexed by sampled fixed-size
blocks (a dict keyed by the block bytes, so a hit is an exact match); new is scanned for
block hits, each hit is extended backwards and forwards, and the diagonals (old - new
offsets) of recent matches are probed first with a bulk XOR compare so that small edits
inside an otherwise equal region cost a few MOD bytes. The ops are then written with the
0.7 writer rules (PATCH-17 to PATCH-22).
"""

from __future__ import annotations

from typing import Literal

from otamodel.formats._jdiff_core import BKT, DEL, EQL, INS, MOD, RawOp, write_raw_ops

# A run of this many equal bytes on the current diagonal is worth an EQL: ``ESC EQL len``
# plus the ``ESC MOD`` that resumes the data costs 5 bytes.
_MIN_DIAGONAL = 6
# A match on another diagonal also needs a DEL or BKT (3 to 5 more bytes).
_MIN_JUMP = 12
# Bytes of new examined per diagonal probe: the first window is small (matches are
# usually close), then it doubles up to the largest one.
_FIRST_WINDOW = 64
_WINDOW = 4096
# How many recent diagonals are probed before the block index.
_RECENT = 4
# A match this long is taken without looking further.
_LONG = 256
# How far past the start of a shorter match the block scan looks for a better one.
_LOOKAHEAD = 64
# Data bytes that cost about as much as one extra EQL + DEL/BKT pair.
_SKIP = 8

_ZEROS = bytes(_MIN_DIAGONAL)


def _get_block_size(old_size: int) -> int:
    """Sampling step and key size of the old-file index."""
    return 16 if old_size <= 4 << 20 else 32


def _build_index(old: bytes, block: int) -> dict[bytes, int]:
    """Map each sampled block of ``old`` (every ``block`` bytes) to its first offset."""
    last = len(old) - block
    if last < 0:
        return {}
    return {old[i : i + block]: i for i in range(last - last % block, -1, -block)}


def _xor(a: bytes, b: bytes, order: Literal["little", "big"]) -> int:
    """Bitwise XOR of two equal-length byte strings read as integers."""
    return int.from_bytes(a, order) ^ int.from_bytes(b, order)


def _get_prefix_len(new: bytes, j: int, old: bytes, p: int) -> int:
    """Length of the common prefix of ``new[j:]`` and ``old[p:]`` (compared in chunks)."""
    limit = min(len(new) - j, len(old) - p)
    done = 0
    step = 64
    while done < limit:
        size = min(step, limit - done)
        a = new[j + done : j + done + size]
        b = old[p + done : p + done + size]
        if a != b:
            diff = _xor(a, b, "little")
            return done + ((diff & -diff).bit_length() - 1) // 8
        done += size
        step = min(step * 4, 1 << 16)
    return limit


def _get_suffix_len(new: bytes, j: int, old: bytes, p: int, floor: int) -> int:
    """Length of the common suffix of ``new[floor:j]`` and ``old[:p]``."""
    limit = min(j - floor, p)
    done = 0
    step = 64
    while done < limit:
        size = min(step, limit - done)
        a = new[j - done - size : j - done]
        b = old[p - done - size : p - done]
        if a != b:
            diff = _xor(a, b, "big")
            return done + ((diff & -diff).bit_length() - 1) // 8
        done += size
        step = min(step * 4, 1 << 16)
    return limit


class _Matcher:
    """Finds, left to right, the next worthwhile match of new in old."""

    def __init__(self, old: bytes, new: bytes) -> None:
        self.old = old
        self.new = new
        self.block = _get_block_size(len(old))
        self.index = _build_index(old, self.block)
        self.recent: list[int] = [0]  # diagonals (old offset - new offset), newest first

    def remember(self, delta: int) -> None:
        """Put a diagonal at the front of the recent list."""
        if delta in self.recent:
            self.recent.remove(delta)
        self.recent.insert(0, delta)
        del self.recent[_RECENT:]

    def _probe_diagonals(self, start: int, stop: int) -> tuple[int, int, int] | None:
        """Earliest run of equal bytes on a recent diagonal within ``new[start:stop]``.

        The window is XORed with old along each diagonal in one big-integer operation; a
        run of zero bytes in the result is a run of equal bytes.
        """
        old, new = self.old, self.new
        best: tuple[int, int, int] | None = None
        for delta in self.recent:
            o = start + delta
            if o < 0 or o >= len(old):
                continue
            size = min(stop - start, len(old) - o)
            diff = _xor(new[start : start + size], old[o : o + size], "little").to_bytes(
                size, "little"
            )
            hit = diff.find(_ZEROS)
            if hit < 0:  # a shorter run at the very end may go on past the window
                hit = len(diff.rstrip(b"\0"))
                if hit == size:
                    continue
            at = start + hit
            if best is not None and at >= best[0]:
                continue
            length = _get_prefix_len(new, at, old, at + delta)
            if length >= _MIN_DIAGONAL:
                best = (at, at + delta, length)
        return best

    def _get_hits(self, start: int, stop: int) -> list[int]:
        """Positions ``q`` in ``[start, stop)`` where ``new[q:q+block]`` is in the index.

        The membership tests run in C (``map`` over slices, then ``list.index`` to jump
        from hit to hit), which is several times faster than a Python loop per position.
        """
        block = self.block
        flags = list(
            map(
                self.index.__contains__,
                map(
                    self.new.__getitem__,
                    map(slice, range(start, stop), range(start + block, stop + block)),
                ),
            )
        )
        hits: list[int] = []
        i = 0
        try:
            while True:
                i = flags.index(True, i)
                hits.append(start + i)
                i += 1
        except ValueError:
            return hits

    def find(self, floor: int) -> tuple[int, int, int] | None:
        """Next match ``(new_start, old_start, length)`` starting at or after ``floor``.

        The recent diagonals are probed first; then new is scanned position by position for
        index hits before the diagonal match (and a little past a short one), each hit is
        extended both ways, and the best candidate by :func:`_is_better` is kept.
        """
        old, new = self.old, self.new
        block = self.block
        index = self.index
        start = floor
        size = len(new)
        last = size - block + 1
        window = _FIRST_WINDOW
        while start < size:
            stop = min(start + window, size)
            window = min(window * 2, _WINDOW)
            best = self._probe_diagonals(start, stop)
            end = stop if best is None else _get_scan_end(best)
            skip = scanned = start
            hits: list[int] = []
            while True:
                if not hits:  # scan on to the current end (it moves as candidates are found)
                    limit = min(end, last)
                    if scanned >= limit:
                        break
                    hits = self._get_hits(scanned, limit)
                    hits.reverse()
                    scanned = limit
                    continue
                q = hits.pop()
                if q >= end:
                    break
                if q < skip:
                    continue
                p = index[new[q : q + block]]
                back = _get_suffix_len(new, q, old, p, floor)
                length = back + block + _get_prefix_len(new, q + block, old, p + block)
                if length >= _MIN_JUMP or (p - q in self.recent and length >= _MIN_DIAGONAL):
                    cand = (q - back, p - back, length)
                    if best is None or _is_better(cand, best):
                        best = cand
                        end = _get_scan_end(best)
                    if length >= _LONG:  # no better match starts inside a long one
                        skip = cand[0] + cand[2] - block
            if best is not None:
                return best
            start = stop
        return None


def _get_scan_end(match: tuple[int, int, int]) -> int:
    """Where the block scan stops once ``match`` is known: a short match gets a look-ahead."""
    at, _src, length = match
    return at + (min(length, _LOOKAHEAD) if length < _LONG else 0)


def _is_better(cand: tuple[int, int, int], best: tuple[int, int, int]) -> bool:
    """True if ``cand`` should replace ``best`` (both ``(new_start, old_start, length)``).

    A match that starts no later and ends no earlier wins. Otherwise skipping a few bytes
    as data is cheaper than the extra ``EQL`` + ``DEL``/``BKT`` pair that two matches
    need, so the one that starts earlier wins only by more than :data:`_SKIP` bytes.
    """
    c_start, c_end = cand[0], cand[0] + cand[2]
    b_start, b_end = best[0], best[0] + best[2]
    if c_start <= b_start and c_end >= b_end:
        return c_end - c_start > b_end - b_start
    if c_start >= b_start and c_end <= b_end:
        return False
    if c_start > b_start:
        return c_start - b_start < _SKIP
    return b_start - c_start >= _SKIP


def _gap_ops(new: bytes, start: int, stop: int, cursor: int, target: int) -> list[RawOp]:
    """Ops that output ``new[start:stop]`` and move the old cursor to ``target``.

    MOD advances the cursor with its data, INS does not, DEL/BKT move it; the cheapest
    combination is chosen; MOD never runs past the end of old (PATCH-22).
    """
    size = stop - start
    move = target - cursor
    if size == 0:
        if move > 0:
            return [(DEL, move, cursor, b"")]
        if move < 0:
            return [(BKT, -move, cursor, b"")]
        return []
    if move == size:
        return [(MOD, size, cursor, new[start:stop])]
    if 0 <= move < size:
        mid = start + move
        return [(MOD, move, cursor, new[start:mid]), (INS, size - move, target, new[mid:stop])]
    if move > size:
        return [(MOD, size, cursor, new[start:stop]), (DEL, move - size, cursor + size, b"")]
    return [(INS, size, cursor, new[start:stop]), (BKT, -move, cursor, b"")]


def find_ops(old: bytes, new: bytes) -> list[RawOp]:
    """The operation list that rebuilds ``new`` from ``old`` (before 0.7 serialisation).

    Gaps between matches become MOD/INS data and DEL/BKT moves (:func:`_gap_ops`); MOD is
    never used past the end of old, so once old is used up the rest of new is INS
    (PATCH-22).
    """
    ops: list[RawOp] = []
    matcher = _Matcher(old, new)
    cursor = 0
    done = 0  # new bytes covered so far
    while done < len(new):
        found = matcher.find(done)
        if found is None:
            break
        at, src, length = found
        ops.extend(_gap_ops(new, done, at, cursor, src))
        ops.append((EQL, length, src, new[at : at + min(length, 8)]))
        matcher.remember(src - at)
        cursor = src + length
        done = at + length
    if done < len(new):
        # The rest is data: MOD while old lasts, then INS (like jdiff, never MOD past EOF).
        room = max(0, min(len(old) - cursor, len(new) - done))
        if room:
            ops.append((MOD, room, cursor, new[done : done + room]))
        if done + room < len(new):
            ops.append((INS, len(new) - done - room, cursor + room, new[done + room :]))
    return ops


def encode(old: bytes | bytearray | memoryview, new: bytes | bytearray | memoryview) -> bytes:
    """A strict jdiff 0.7 patch that turns ``old`` into ``new``.

    The patch follows the 0.7 writer rules (PATCH-17 to PATCH-22): explicit ``ESC MOD``,
    shortest lengths, equal runs of 4 bytes or fewer folded into MOD, the pending-ESC
    escaping, no MOD past the end of old. Moved and repeated blocks become DEL/BKT + EQL.
    Identical files give one EQL, an empty new file gives an empty patch.
    """
    old_bytes = bytes(old)
    new_bytes = bytes(new)
    return write_raw_ops(find_ops(old_bytes, new_bytes))
