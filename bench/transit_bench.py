"""Layer 8 benchmark: classify a large capture with outsidein and with tshark, in the same run.

    .venv/bin/python bench/transit_bench.py [--mb 300] [--keep DIR]

Writes a synthetic capture (dpkt) of many TCP flows: bulk TLS 1.3 flows, plaintext Redis, PostgreSQL and HTTP
with a few planted credentials, and one TLS 1.0 flow, then times

- outsidein: ``outsidein.transit.flows.analyse`` (read, reassemble, classify, detect, mask), and
- tshark: ``tshark -r big.pcap -Y 'resp or pgsql.password or pgsql.query or http.authorization or
  tls.handshake.type == 2' -T fields -e tcp.stream -e resp.bulk_string.value -e pgsql.password -e pgsql.query
  -e http.authorization -e tls.handshake.version -e tls.handshake.extensions.supported_version``
  (the same question: which flows are TLS and which version, and what crosses in plaintext),

and reports MB/s for both and whether each found every planted credential.

The flows are written with the builders of ``tests/pcaps.py``, which the layer-8 tests use too.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.pcaps import (  # noqa: E402
    Endpoint,
    http_basic,
    pg_cleartext_session,
    pg_msg,
    pg_startup,
    resp,
    tcp_flow,
    tls_session,
    write_pcap,
)

# ------------------------------------------------------------------------------------------------ the capture


PLANTED = {  # kind -> secrets planted
    "redis-auth": ["redis-planted-secret-1", "redis-planted-secret-2", "redis-planted-secret-3"],
    "pg-password": ["pg-planted-secret-1", "pg-planted-secret-2"],
    "http-basic": ["http-planted-secret-1", "http-planted-secret-2"],
}


def big_capture(path: Path, megabytes: int) -> dict[str, int]:
    """Write the benchmark capture; returns counts of flows written by type."""
    random.seed(8)
    target = megabytes * 1024 * 1024
    counts = {"tls": 0, "redis": 0, "postgres": 0, "http": 0, "weak_tls": 0}

    def frames() -> Iterator[bytes]:
        written = 0
        n = 0
        planted = [(k, s) for k, secrets in PLANTED.items() for s in secrets]
        while written < target or planted:
            n += 1
            client = (f"10.0.{n // 250 % 250}.{n % 250 + 1}", 20000 + n % 40000)
            kind = n % 10
            if planted and n % 13 == 0:
                what, secret = planted.pop()
                if what == "redis-auth":
                    exchange = [("c", resp(b"AUTH", secret.encode())), ("s", b"+OK\r\n"),
                                ("c", resp(b"GET", b"session:42")), ("s", b"$5\r\nhello\r\n")]
                    server: Endpoint = ("10.1.0.10", 6379)
                elif what == "pg-password":
                    exchange, server = pg_cleartext_session("app", secret, "SELECT * FROM users"), ("10.1.0.11", 5432)
                else:
                    exchange, server = http_basic("admin", secret), ("10.1.0.12", 80)
            elif n == 50:
                exchange, server = tls_session(0x0301, 20000), ("10.1.0.13", 443)
                counts["weak_tls"] += 1
            elif kind < 6:
                exchange, server = tls_session(0x0304, random.randrange(100_000, 2_000_000)), ("10.1.0.20", 443)
                counts["tls"] += 1
            elif kind < 8:
                value = random.randbytes(random.randrange(10_000, 400_000))
                exchange = [("c", resp(b"SET", b"k%d" % n, value)), ("s", b"+OK\r\n"),
                            ("c", resp(b"GET", b"k%d" % n)), ("s", b"$%d\r\n" % len(value) + value + b"\r\n")]
                server = ("10.1.0.10", 6379)
                counts["redis"] += 1
            elif kind < 9:
                exchange = [("c", pg_startup("app", "appdb")), ("s", pg_msg(b"R", struct.pack("!I", 0))),
                            ("c", pg_msg(b"Q", b"SELECT payload FROM blobs\x00")),
                            ("s", pg_msg(b"D", random.randbytes(random.randrange(10_000, 300_000))))]
                server = ("10.1.0.11", 5432)
                counts["postgres"] += 1
            else:
                body = random.randbytes(random.randrange(10_000, 300_000))
                exchange = [("c", b"GET /static/x HTTP/1.1\r\nHost: app\r\n\r\n"),
                            ("s", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)]
                server = ("10.1.0.12", 80)
                counts["http"] += 1
            for frame in tcp_flow(client, server, exchange):
                written += len(frame) + 16
                yield frame

    counts["packets"] = write_pcap(path, frames())
    return counts


def run_outsidein(path: Path) -> tuple[float, dict[str, bool], int, int]:
    from outsidein.redact import mask
    from outsidein.transit.flows import analyse

    start = time.perf_counter()
    flows, _ = analyse(path)
    elapsed = time.perf_counter() - start
    excerpts = " ".join(d["excerpt"] for f in flows for d in f["detections"])
    found = {secret: mask(secret) in excerpts for secrets in PLANTED.values() for secret in secrets}
    leaked = sum(secret in excerpts for secrets in PLANTED.values() for secret in secrets)
    weak = sum(1 for f in flows if f.get("tls_version") == "TLSv1.0")
    return elapsed, found, leaked, weak


TSHARK_FILTER = ("resp or pgsql.password or pgsql.query or http.authorization or tls.handshake.type == 2")
TSHARK_FIELDS = ("tcp.stream", "resp.bulk_string.value", "pgsql.password", "pgsql.query", "http.authorization",
                 "tls.handshake.version", "tls.handshake.extensions.supported_version")


def run_tshark(path: Path) -> tuple[float, dict[str, bool], int, list[str]] | None:
    tshark = shutil.which("tshark")
    if tshark is None:
        return None
    argv = [tshark, "-n", "-r", str(path), "-Y", TSHARK_FILTER, "-T", "fields",
            *[x for f in TSHARK_FIELDS for x in ("-e", f)]]
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False)
    elapsed = time.perf_counter() - start
    import base64

    text = out.stdout
    decoded = " ".join(base64.b64decode(tok).decode("latin-1") for tok in
                       __import__("re").findall(r"Basic ([A-Za-z0-9+/=]+)", text))
    found = {secret: secret in text or secret in decoded or secret.encode().hex() in text
             for secrets in PLANTED.values() for secret in secrets}
    weak = sum(1 for line in text.splitlines() if "0x0301" in line.split("\t")[5:6])
    return elapsed, found, weak, argv


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=300, help="capture size in MiB (default 300)")
    parser.add_argument("--keep", type=Path, help="write the capture here and keep it")
    args = parser.parse_args(argv)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="transit-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    pcap = workdir / "big.pcap"
    try:
        start = time.perf_counter()
        counts = big_capture(pcap, args.mb)
        size = pcap.stat().st_size / 1e6
        print(f"capture: {pcap} {size:.0f} MB, {counts['packets']} packets, flows {counts} "
              f"(written in {time.perf_counter() - start:.1f}s)")
        print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
        elapsed, found, leaked, weak = run_outsidein(pcap)
        print(f"outsidein: {elapsed:.1f}s, {size / elapsed:.1f} MB/s, planted credentials found "
              f"{sum(found.values())}/{len(found)}, unmasked in output {leaked}, TLS 1.0 flows {weak}")
        result = run_tshark(pcap)
        if result is None:
            print("tshark: not installed")
        else:
            t_elapsed, t_found, t_weak, t_argv = result
            print(f"tshark: {t_elapsed:.1f}s, {size / t_elapsed:.1f} MB/s, planted credentials found "
                  f"{sum(t_found.values())}/{len(t_found)} (in clear text), TLS 1.0 handshakes {t_weak}"
                  + (f"; missed {[s for s, ok in t_found.items() if not ok]}" if not all(t_found.values()) else ""))
            print("tshark command: " + " ".join(repr(a) if " " in a else a for a in t_argv))
            print(f"speed-up: {t_elapsed / elapsed:.1f}x")
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
