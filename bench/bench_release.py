"""Release tools: ``release make``/``lint`` on a full-size image, and ``otamodel serve``
against the standard library's ThreadingHTTPServer (same files, same client, loopback).

Baselines written here: for make, SHA-256 + a signature with ``cryptography`` + writing the
files (what a hand-made release needs, without patches or lint); for serve, ``http.server``
serving the same directory. Rounds alternate order; medians are printed with the ratios.

    python bench/bench_release.py [--rounds 5] [--requests 200]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import random
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from otamodel.formats import signature
from otamodel.release._faults import ServeConfig
from otamodel.release._lint import LintContext, lint_directory, load_bases
from otamodel.release._make import make_release
from otamodel.release._serve import ServerOptions, ServerThread

SIZE = 0xDE000


def _images() -> tuple[bytes, bytes]:
    rng = random.Random(16)
    old = bytearray(rng.randbytes(SIZE))
    new = bytearray(old)
    for _ in range(200):  # scattered word edits, like a small code change
        at = rng.randrange(4096, SIZE - 4)
        new[at : at + 4] = rng.randbytes(4)
    return bytes(old), bytes(new)


def _baseline_make(data: bytes, key: ec.EllipticCurvePrivateKey, out: Path) -> None:
    out.mkdir()
    digest = hashlib.sha256(data).hexdigest()
    sig = key.sign(data, ec.ECDSA(hashes.SHA256()))
    (out / "app.bin").write_bytes(data)
    (out / "ota.json").write_text(
        f'{{"ota":[{{"Version":3,"Digest":"{digest}","S":"{sig.hex()}"}}]}}'
    )


def _fetch_many(port: int, path: str, count: int) -> None:
    for _ in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", path)
        body = connection.getresponse().read()
        assert len(body) > 0
        connection.close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


def _time(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-release-"))
    try:
        old, new = _images()
        (tmp / "old.bin").write_bytes(old)
        (tmp / "new.bin").write_bytes(new)
        pem = signature.generate_private_key_pem()
        key = signature.load_private_key(pem)
        url = "http://127.0.0.1:8000"
        make_release(tmp / "old.bin", tmp / "r2", version=2, base_url=url, name="app")
        ours: list[float] = []
        base: list[float] = []
        for n in range(3 * args.rounds):
            run_ours = partial(
                make_release,
                tmp / "new.bin",
                tmp / f"o{n}",
                version=3,
                base_url=url,
                name="app",
                key_pem=pem,
            )
            run_base = partial(_baseline_make, new, key, tmp / f"b{n}")
            pair = [(ours, run_ours), (base, run_base)]
            for bucket, func in pair if n % 2 == 0 else reversed(pair):
                bucket.append(_time(func))
        patched = _time(
            lambda: make_release(
                tmp / "new.bin",
                tmp / "p",
                version=3,
                base_url=url,
                name="app",
                key_pem=pem,
                bases=[tmp / "r2"],
            )
        )
        ctx = LintContext(
            public_key_pem=signature.public_key_pem(pem), bases=load_bases([tmp / "r2"])
        )
        linted = _time(lambda: lint_directory(tmp / "p", ctx))
        m_ours, m_base = statistics.median(ours), statistics.median(base)
        print(
            f"make ({SIZE} B image, signed): {m_ours * 1000:.1f} ms, baseline "
            f"{m_base * 1000:.1f} ms, ratio {m_ours / m_base:.2f}"
        )
        print(
            f"make with a jdiff patch from v2: {patched:.2f} s; lint with the base: "
            f"{linted * 1000:.0f} ms"
        )
        root = tmp / "p"
        handler = partial(_Quiet, directory=str(root))
        std = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=std.serve_forever, daemon=True)
        thread.start()
        ours_s: list[float] = []
        std_s: list[float] = []
        with ServerThread(root, ServerOptions(port=0, max_connections=64), ServeConfig()) as srv:
            for n in range(args.rounds):
                pair = [
                    (ours_s, partial(_fetch_many, srv.port, "/app.bin", args.requests)),
                    (std_s, partial(_fetch_many, std.server_address[1], "/app.bin", args.requests)),
                ]
                for bucket, func in pair if n % 2 == 0 else reversed(pair):
                    bucket.append(_time(func))
        std.shutdown()
        std.server_close()
        m_ours, m_std = statistics.median(ours_s), statistics.median(std_s)
        print(
            f"serve {args.requests} GETs of {SIZE} B: {m_ours:.2f} s "
            f"({args.requests / m_ours:.0f}/s), http.server {m_std:.2f} s "
            f"({args.requests / m_std:.0f}/s), ratio {m_ours / m_std:.2f}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
