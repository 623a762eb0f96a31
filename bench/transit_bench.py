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

The builders are reused by the tests (``tests/test_checks_transit.py``) for protocols that have no server in
the test environment (AMQP, SMTP, IMAP, FTP, MySQL, HTTP, TLS 1.0).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import dpkt

MSS = 1448
Endpoint = tuple[str, int]


# ------------------------------------------------------------------------------------------------ frames


def _frame(src: Endpoint, dst: Endpoint, seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
    tcp = dpkt.tcp.TCP(sport=src[1], dport=dst[1], seq=seq, ack=ack, flags=flags, win=65535, data=payload)
    ip = dpkt.ip.IP(src=socket.inet_aton(src[0]), dst=socket.inet_aton(dst[0]), p=dpkt.ip.IP_PROTO_TCP, ttl=64,
                    data=tcp)
    ip.len = 20 + 20 + len(payload)
    eth = dpkt.ethernet.Ethernet(src=b"\x02\x00\x00\x00\x00\x01", dst=b"\x02\x00\x00\x00\x00\x02",
                                 type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
    return bytes(eth)


def tcp_flow(client: Endpoint, server: Endpoint, exchange: Sequence[tuple[str, bytes]], syn: bool = True,
             ) -> Iterator[bytes]:
    """Ethernet frames of one TCP connection: handshake, each (\"c\"|\"s\", bytes) message in MSS segments, FIN."""
    cseq, sseq = random.randrange(1 << 32), random.randrange(1 << 32)
    S, A, P, F = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_PUSH, dpkt.tcp.TH_FIN
    if syn:
        yield _frame(client, server, cseq, 0, S)
        yield _frame(server, client, sseq, cseq + 1, S | A)
    cseq, sseq = (cseq + 1) & 0xFFFFFFFF, (sseq + 1) & 0xFFFFFFFF
    for side, data in exchange:
        for i in range(0, len(data), MSS):
            chunk = data[i: i + MSS]
            if side == "c":
                yield _frame(client, server, cseq, sseq, A | P, chunk)
                cseq = (cseq + len(chunk)) & 0xFFFFFFFF
            else:
                yield _frame(server, client, sseq, cseq, A | P, chunk)
                sseq = (sseq + len(chunk)) & 0xFFFFFFFF
    yield _frame(client, server, cseq, sseq, F | A)
    yield _frame(server, client, sseq, cseq + 1, F | A)


def write_pcap(path: Path, frames: Iterator[bytes]) -> int:
    count = 0
    with path.open("wb") as handle:
        writer = dpkt.pcap.Writer(handle, linktype=dpkt.pcap.DLT_EN10MB, snaplen=65535)
        for count, frame in enumerate(frames, 1):
            writer.writepkt(frame, ts=1_700_000_000 + count * 1e-5)
    return count


# ------------------------------------------------------------------------------------------------ protocols


def resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def pg_startup(user: str, database: str) -> bytes:
    body = (struct.pack("!I", 196608) + b"user\x00" + user.encode() + b"\x00database\x00" + database.encode()
            + b"\x00\x00")
    return struct.pack("!I", len(body) + 4) + body


def pg_msg(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def pg_cleartext_session(user: str, password: str, query: str) -> list[tuple[str, bytes]]:
    row = pg_msg(b"D", struct.pack("!HI", 1, 5) + b"hello")
    return [("c", pg_startup(user, "appdb")), ("s", pg_msg(b"R", struct.pack("!I", 3))),
            ("c", pg_msg(b"p", password.encode() + b"\x00")), ("s", pg_msg(b"R", struct.pack("!I", 0))
                                                                   + pg_msg(b"Z", b"I")),
            ("c", pg_msg(b"Q", query.encode() + b"\x00")), ("s", row * 3 + pg_msg(b"Z", b"I"))]


def tls_client_hello(versions: Sequence[int] = (0x0304, 0x0303), legacy: int = 0x0303) -> bytes:
    exts = b""
    if versions:
        sv = bytes([len(versions) * 2]) + b"".join(struct.pack("!H", v) for v in versions)
        exts += struct.pack("!HH", 43, len(sv)) + sv
    name = b"db.internal"
    sni = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    exts += struct.pack("!HH", 0, len(sni)) + sni
    body = struct.pack("!H", legacy) + os.urandom(32) + b"\x00" + struct.pack("!H", 4) + b"\x13\x01\xc0\x2f"
    body += b"\x01\x00"
    body += struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def tls_server_hello(version: int = 0x0304) -> bytes:
    exts = struct.pack("!HHH", 43, 2, version) if version == 0x0304 else b""
    legacy = 0x0303 if version == 0x0304 else version
    body = struct.pack("!H", legacy) + os.urandom(32) + b"\x00" + b"\x13\x01" + b"\x00"
    body += struct.pack("!H", len(exts)) + exts
    hs = b"\x02" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x03" + struct.pack("!H", len(hs)) + hs


def tls_records(size: int) -> bytes:
    out = bytearray()
    while size > 0:
        n = min(size, 16384)
        out += b"\x17\x03\x03" + struct.pack("!H", n) + random.randbytes(n)
        size -= n + 5
    return bytes(out)


def tls_session(version: int, size: int) -> list[tuple[str, bytes]]:
    client = tls_client_hello((0x0304, 0x0303) if version == 0x0304 else (), legacy=min(version, 0x0303))
    return [("c", client), ("s", tls_server_hello(version) + tls_records(2000)), ("c", tls_records(size // 2)),
            ("s", tls_records(size // 2))]


def http_basic(user: str, password: str) -> list[tuple[str, bytes]]:
    import base64

    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [("c", f"GET /admin HTTP/1.1\r\nHost: app\r\nAuthorization: Basic {token}\r\n\r\n".encode()),
            ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")]


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
