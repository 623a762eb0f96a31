"""Read a pcap/pcapng file (dpkt), reassemble each TCP flow per direction, classify it and summarise it.

Only a bounded prefix of each direction is kept (``C2S_CAP``/``S2C_CAP`` bytes): handshakes, logins and the
first queries all live there, and memory stays bounded on captures of gigabytes. Frames are decoded by hand
(Ethernet with VLAN tags, Linux cooked v1/v2, BSD loopback, raw IP; IPv4 and IPv6) because building a dpkt
object per packet costs more than the whole analysis.
"""

from __future__ import annotations

import bisect
import re
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import dpkt

from outsidein.transit import detect

C2S_CAP = 32 * 1024  # bytes kept per flow, client to server
S2C_CAP = 16 * 1024
MAX_FLOWS = 200_000  # flows tracked per capture; later ones are counted, not analysed

TLS_VERSIONS = {0x0002: "SSLv2", 0x0300: "SSLv3", 0x0301: "TLSv1.0", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2",
                0x0304: "TLSv1.3"}
# Where plaintext is expected to be a problem and what speaks there (a guess when the bytes say nothing).
SERVICE_PORTS = {
    5432: "postgres", 6379: "redis", 6380: "redis", 3306: "mysql", 33060: "mysql", 5672: "amqp", 27017: "mongodb",
    9200: "elasticsearch", 9300: "elasticsearch", 11211: "memcached", 2379: "etcd", 9092: "kafka", 15672: "http",
    25: "smtp", 587: "smtp", 143: "imap", 110: "pop3", 21: "ftp", 389: "ldap", 80: "http", 8080: "http",
    8000: "http", 443: "https", 8443: "https", 465: "smtps", 993: "imaps", 995: "pop3s", 5671: "amqps",
    636: "ldaps", 6443: "https", 3000: "http", 9000: "http", 23: "telnet",
}


class CaptureError(ValueError):
    """The capture cannot be read; the message names the file and, when known, the packet."""


@dataclass
class _Direction:
    base: int | None = None  # sequence number of stream offset 0
    segments: list[tuple[int, bytes, int]] = field(default_factory=list)  # offset, payload, packet index
    stored: int = 0
    fin: bool = False

    def add(self, seq: int, payload: bytes, index: int, cap: int) -> None:
        if self.base is None:
            self.base = seq
        offset = (seq - self.base) & 0xFFFFFFFF
        if offset >= cap or self.stored >= cap * 2:
            return
        self.segments.append((offset, payload[: cap - offset], index))
        self.stored += len(payload)

    def assemble(self) -> tuple[bytes, list[int], list[int], bool]:
        """The contiguous bytes from offset 0, the segment start offsets and packets (for lookups), and a gap flag."""
        buf = bytearray()
        starts: list[int] = []
        packets: list[int] = []
        gap = False
        for offset, payload, index in sorted(self.segments, key=lambda s: (s[0], -len(s[1]))):
            end = offset + len(payload)
            if offset > len(buf):
                gap = True
                break
            if end <= len(buf):
                continue  # a retransmission
            starts.append(offset)
            packets.append(index)
            buf += payload[len(buf) - offset:]
        return bytes(buf), starts, packets, gap


@dataclass
class Flow:
    a: tuple[str, int]  # the first endpoint seen
    b: tuple[str, int]
    first_packet: int
    client: tuple[str, int] | None = None  # known from the SYN
    packets: int = 0
    payload: int = 0
    ab: _Direction = field(default_factory=_Direction)
    ba: _Direction = field(default_factory=_Direction)


def _addr(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(raw) == 16 else socket.AF_INET, raw)


def _ip_offset(linktype: int, buf: bytes) -> int | None:
    """Offset of the IP header in a frame of ``linktype``, or None when the frame carries no IP."""
    if linktype == dpkt.pcap.DLT_EN10MB:
        pos, ethertype = 12, 0
        while pos + 2 <= len(buf):
            ethertype = buf[pos] << 8 | buf[pos + 1]
            if ethertype in (0x8100, 0x88A8):  # VLAN tags
                pos += 4
                continue
            break
        return pos + 2 if ethertype in (0x0800, 0x86DD) else None
    if linktype == dpkt.pcap.DLT_LINUX_SLL:
        return 16 if len(buf) > 16 and buf[14:16] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype == 276:  # LINUX_SLL2
        return 20 if len(buf) > 20 and buf[0:2] in (b"\x08\x00", b"\x86\xdd") else None
    if linktype in (dpkt.pcap.DLT_NULL, dpkt.pcap.DLT_LOOP):
        return 4
    if linktype in (dpkt.pcap.DLT_RAW, 101, 14, 228, 229):
        return 0
    return None


def _packets(reader: Any, path: Path) -> Iterator[tuple[int, bytes]]:
    index = 0
    iterator = iter(reader)
    while True:
        try:
            _, buf = next(iterator)
        except StopIteration:
            return
        except (dpkt.dpkt.Error, ValueError, struct.error) as exc:
            raise CaptureError(f"{path}: packet {index + 1} is unreadable ({exc or type(exc).__name__})") from None
        index += 1
        yield index, buf


def open_capture(handle: BinaryIO, path: Path) -> Any:
    try:
        return dpkt.pcap.UniversalReader(handle)
    except (ValueError, dpkt.dpkt.Error, struct.error) as exc:
        raise CaptureError(f"{path}: not a pcap or pcapng file ({exc or type(exc).__name__})") from None


def read_flows(path: Path) -> tuple[list[Flow], dict[str, int]]:
    """Every TCP flow in the capture, with per-direction stream prefixes; raises CaptureError."""
    flows: dict[tuple[bytes, int, bytes, int], Flow] = {}
    stats = {"packets": 0, "tcp_packets": 0, "untracked_flows": 0}
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise CaptureError(f"{path}: cannot read the capture: {exc.strerror or exc}") from None
    with handle:
        reader = open_capture(handle, path)
        linktype = reader.datalink()
        unpack_tcp = struct.Struct("!HHII").unpack_from
        for index, buf in _packets(reader, path):
            stats["packets"] = index
            pos = _ip_offset(linktype, buf)
            if pos is None or pos >= len(buf):
                continue
            version = buf[pos] >> 4
            if version == 4:
                if len(buf) < pos + 20 or buf[pos + 9] != 6 or (buf[pos + 6] & 0x1F) | buf[pos + 7]:
                    continue  # not TCP, or a later fragment
                ihl = (buf[pos] & 0x0F) * 4
                total = buf[pos + 2] << 8 | buf[pos + 3]
                src, dst = buf[pos + 12: pos + 16], buf[pos + 16: pos + 20]
                end = pos + total if total else len(buf)
                tcp = pos + ihl
            elif version == 6:
                if len(buf) < pos + 40 or buf[pos + 6] != 6:
                    continue
                src, dst = buf[pos + 8: pos + 24], buf[pos + 24: pos + 40]
                end = pos + 40 + (buf[pos + 4] << 8 | buf[pos + 5])
                tcp = pos + 40
            else:
                continue
            if len(buf) < tcp + 20:
                continue
            sport, dport, seq, _ = unpack_tcp(buf, tcp)
            data_at = tcp + (buf[tcp + 12] >> 4) * 4
            flags = buf[tcp + 13]
            payload = buf[data_at:min(end, len(buf))]
            stats["tcp_packets"] += 1
            forward = (src, sport) <= (dst, dport)
            key = (src, sport, dst, dport) if forward else (dst, dport, src, sport)
            flow = flows.get(key)
            if flow is None:
                if len(flows) >= MAX_FLOWS:
                    stats["untracked_flows"] += 1
                    continue
                flow = flows[key] = Flow((_addr(src), sport), (_addr(dst), dport), index)
            flow.packets += 1
            one_way = flow.ab if (_addr(src), sport) == flow.a else flow.ba
            if flags & 0x02:  # SYN
                one_way.base = (seq + 1) & 0xFFFFFFFF
                if not flags & 0x10 and flow.client is None:
                    flow.client = (_addr(src), sport)
                continue
            if flags & 0x01:
                one_way.fin = True
            if payload:
                flow.payload += len(payload)
                client_side = flow.client is None or flow.client == (_addr(src), sport)
                one_way.add(seq, payload, index, C2S_CAP if client_side else S2C_CAP)
    return list(flows.values()), stats


# ------------------------------------------------------------------------------------------------ TLS


def is_tls(data: bytes, pos: int = 0) -> bool:
    if len(data) < pos + 3:
        return False
    if data[pos] == 0x16 and data[pos + 1] == 3 and data[pos + 2] <= 4:
        return True
    return bool(data[pos] & 0x80) and data[pos + 2] == 1 and len(data) > pos + 4 and data[pos + 3] in (0, 2, 3)


def _grease(version: int) -> bool:
    return version & 0x0F0F == 0x0A0A


def _hello(data: bytes, pos: int) -> tuple[int, int, list[int], str | None] | None:
    """(handshake type, legacy version, supported_versions, SNI) of the Client/ServerHello at ``pos``."""
    if len(data) < pos + 5:
        return None
    if data[pos] & 0x80 and data[pos + 2] == 1:  # SSLv2-format ClientHello
        return 1, data[pos + 3] << 8 | data[pos + 4], [], None
    if data[pos] != 0x16 or len(data) < pos + 11:
        return None
    kind = data[pos + 5]
    body = pos + 9
    if kind not in (1, 2):
        return None
    try:
        legacy = struct.unpack_from("!H", data, body)[0]
        p = body + 2 + 32
        p += 1 + data[p]  # session id
        if kind == 1:
            p += 2 + struct.unpack_from("!H", data, p)[0]  # cipher suites
            p += 1 + data[p]  # compression methods
        else:
            p += 3
        if p + 2 > len(data):
            return kind, legacy, [], None
        ext_end = p + 2 + struct.unpack_from("!H", data, p)[0]
        p += 2
        versions: list[int] = []
        sni: str | None = None
        while p + 4 <= min(ext_end, len(data)):
            ext_type, ext_len = struct.unpack_from("!HH", data, p)
            ext = data[p + 4: p + 4 + ext_len]
            if ext_type == 43:
                if kind == 1 and ext:
                    versions = [struct.unpack_from("!H", ext, i)[0] for i in range(1, min(len(ext), 1 + ext[0]) - 1, 2)]
                elif len(ext) >= 2:
                    versions = [struct.unpack_from("!H", ext)[0]]
            elif ext_type == 0 and kind == 1 and len(ext) > 5:
                sni = ext[5: 5 + struct.unpack_from("!H", ext, 3)[0]].decode("ascii", "replace")
            p += 4 + ext_len
        return kind, legacy, [v for v in versions if not _grease(v)], sni
    except (struct.error, IndexError):
        return None


def tls_summary(c2s: bytes, c_at: int, s2c: bytes, s_at: int | None) -> dict[str, Any]:
    client = _hello(c2s, c_at)
    server = _hello(s2c, s_at) if s_at is not None else None
    out: dict[str, Any] = {"tls_version": None, "tls_offered": None, "sni": None}
    if client and client[0] == 1:
        offered = client[2] or [client[1]]
        out["tls_offered"] = [TLS_VERSIONS.get(v, hex(v)) for v in sorted(set(offered))]
        out["sni"] = client[3]
    if server and server[0] == 2:
        version = server[2][0] if server[2] else server[1]
        out["tls_version"] = TLS_VERSIONS.get(version, hex(version))
    elif client and client[1] == 0x0002:
        out["tls_version"] = "SSLv2"
    return out


_STARTTLS = re.compile(rb"(?im)^(?:[A-Za-z0-9.]+ )?(?:STARTTLS|STLS|AUTH TLS|AUTH SSL)\r?\n")
_TLS_AFTER_LINE = re.compile(rb"\n(?=\x16\x03[\x00-\x04])")
_HTTP = re.compile(rb"^(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|CONNECT) \S+ HTTP/")


def _encryption(c2s: bytes, s2c: bytes) -> tuple[str | None, int, int | None, int, int]:
    """(upgrade, TLS start in c2s, TLS start in s2c, plaintext start in c2s, in s2c); c2s start -1: no TLS."""
    if is_tls(c2s):
        return None, 0, 0 if is_tls(s2c) else None, 0, 0
    pos_c = pos_s = 0
    while len(c2s) >= pos_c + 8:  # PostgreSQL SSLRequest / GSSENCRequest, answered with one byte
        length, code = struct.unpack_from("!II", c2s, pos_c)
        if length != 8 or code not in (detect.PG_SSL_REQUEST, detect.PG_GSS_REQUEST):
            break
        answer = s2c[pos_s: pos_s + 1]
        pos_c += 8
        pos_s += 1
        if answer == b"S" and code == detect.PG_SSL_REQUEST:
            return "postgres", pos_c, pos_s, pos_c, pos_s
        if answer == b"G":
            return "postgres-gssapi", pos_c, None, pos_c, pos_s
        if answer != b"N":
            return ("postgres", pos_c, None, pos_c, pos_s) if is_tls(c2s, pos_c) else (None, -1, None, pos_c, pos_s)
    if pos_c:
        return None, -1, None, pos_c, pos_s
    ssl_at = detect.mysql_ssl_request(c2s)
    if ssl_at is not None and detect.mysql_greeting(s2c) is not None:
        greeting = 4 + (s2c[0] | s2c[1] << 8 | s2c[2] << 16)
        return "mysql", ssl_at, greeting if is_tls(s2c, greeting) else None, 0, 0
    match = _STARTTLS.search(c2s)
    if match and is_tls(c2s, match.end()):
        server = _TLS_AFTER_LINE.search(s2c)
        return "starttls", match.end(), server.end() if server else None, 0, 0
    return None, -1, None, 0, 0


def _protocol(c2s: bytes, s2c: bytes, port: int, pos_c: int) -> str:
    if detect.pg_startup(c2s, pos_c) is not None:
        return "postgres"
    if detect.mysql_greeting(s2c) is not None:
        return "mysql"
    if c2s.startswith(b"AMQP"):
        return "amqp"
    if _HTTP.match(c2s):
        return "http"
    resp = c2s[:1] == b"*" and c2s[1:2].isdigit()
    if resp or (port in (6379, 6380) and re.match(rb"(?i)(AUTH|PING|HELLO|GET|SET|INFO|SELECT)\b", c2s)):
        return "redis"
    if s2c.startswith(b"* OK"):
        return "imap"
    if s2c.startswith(b"+OK"):
        return "pop3"
    if s2c.startswith(b"220"):
        banner = s2c[:200].upper()
        return "smtp" if b"SMTP" in banner or port in (25, 465, 587, 2525) else "ftp"
    return SERVICE_PORTS.get(port, "unknown")


def _endpoint(addr: tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _packet_at(starts: list[int], packets: list[int], offset: int) -> int | None:
    i = bisect.bisect_right(starts, offset) - 1
    return packets[i] if i >= 0 else None


def summarise(flow: Flow) -> dict[str, Any]:
    """The flow as evidence: endpoints, protocol, encryption and masked detections."""
    if flow.client is not None:
        client_is_a = flow.client == flow.a
    else:  # no SYN: the well-known port is the server's
        a_known, b_known = flow.a[1] in SERVICE_PORTS, flow.b[1] in SERVICE_PORTS
        client_is_a = (b_known and not a_known) or (a_known == b_known and flow.a[1] > flow.b[1])
    client, server = (flow.a, flow.b) if client_is_a else (flow.b, flow.a)
    up, down = (flow.ab, flow.ba) if client_is_a else (flow.ba, flow.ab)
    c2s, c_starts, c_packets, c_gap = up.assemble()
    s2c, s_starts, s_packets, s_gap = down.assemble()
    upgrade, tls_c, tls_s, plain_c, plain_s = _encryption(c2s, s2c)
    encrypted = tls_c >= 0
    protocol = _protocol(c2s, s2c, server[1], plain_c)
    summary: dict[str, Any] = {
        "client": _endpoint(client), "server": _endpoint(server), "protocol": protocol, "encrypted": encrypted,
        "tls_version": None, "starttls": upgrade, "packets": flow.packets, "bytes": flow.payload,
        "first_packet": flow.first_packet, "truncated": c_gap or s_gap or len(c2s) >= C2S_CAP,
    }
    if encrypted and upgrade != "postgres-gssapi":
        summary.update(tls_summary(c2s, tls_c, s2c, tls_s))
        if upgrade in ("postgres", "mysql"):
            summary["protocol"] = upgrade
        elif protocol in ("unknown", "http") and server[1] not in SERVICE_PORTS:
            summary["protocol"] = "tls"
    elif upgrade == "postgres-gssapi":
        summary["tls_version"] = "GSSAPI"
    if not c2s and not s2c:
        summary["protocol"] = SERVICE_PORTS.get(server[1], "unknown")
        summary["encrypted"] = None  # no payload: nothing proves either way
    # Plaintext before any upgrade is inspected too (an SMTP AUTH before STARTTLS is still in the clear).
    plain_up = c2s[: tls_c] if encrypted else c2s
    plain_down = s2c[: tls_s] if encrypted and tls_s is not None else s2c
    found: list[detect.Detection] = []
    if protocol == "postgres":
        found = detect.postgres(plain_up, plain_down, plain_c, plain_s)
    elif protocol in detect.DETECTORS:
        found = detect.DETECTORS[protocol](plain_up, plain_down)
    elif not encrypted and plain_up:
        found = detect.http(plain_up, plain_down) + detect.line_protocol(plain_up, plain_down)
    detections = []
    for item in found:
        starts, packets = (c_starts, c_packets) if item.direction == "c2s" else (s_starts, s_packets)
        detections.append({**item.to_json(), "packet": _packet_at(starts, packets, item.offset)})
    summary["detections"] = detections
    return summary


def analyse(path: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Flow summaries of a capture file, in order of first packet; raises CaptureError."""
    flows, stats = read_flows(path)
    return [summarise(flow) for flow in sorted(flows, key=lambda f: f.first_packet)], stats
