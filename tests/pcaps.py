"""Synthetic captures written with dpkt: TCP flows as Ethernet frames, and the protocol messages they carry.

Used by the layer-8 tests for protocols that have no server in the test environment (HTTP, AMQP, SMTP, IMAP,
FTP, MySQL, TLS 1.0) and by ``bench/transit_bench.py`` to write its large capture.

    write_pcap(path, tcp_flow(("10.0.0.5", 51000), ("10.0.0.9", 6379), [("c", resp(b"AUTH", b"secret"))]))
"""

from __future__ import annotations

import base64
import os
import random
import socket
import struct
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
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [("c", f"GET /admin HTTP/1.1\r\nHost: app\r\nAuthorization: Basic {token}\r\n\r\n".encode()),
            ("s", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")]
