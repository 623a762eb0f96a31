"""What a plaintext TCP stream gives away: credentials, queries, commands. Every excerpt is masked.

Each detector takes the reassembled client→server and server→client bytes (a bounded prefix) and returns
``Detection``s with the stream offset where the evidence starts. ``credential`` marks what an eavesdropper
can log in with, or crack offline (a cleartext password, a token, an MD5 or mysql_native_password challenge
response); ``kind`` says what it is. A SCRAM exchange is a plaintext *login* (user name readable) but not a
credential.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_plus

from outsidein.redact import mask, redact_text

EXCERPT = 160  # characters of SQL or command shown (after masking)


@dataclass(frozen=True)
class Detection:
    kind: str
    excerpt: str  # masked
    offset: int  # in the client→server stream (or server→client when ``direction`` is "s2c")
    credential: bool = False
    direction: str = "c2s"

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "credential": self.credential, "excerpt": self.excerpt, "offset": self.offset,
                "direction": self.direction}


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT else text[:EXCERPT] + "…"


# ------------------------------------------------------------------------------------------------ Redis

_RESP_AUTH = re.compile(rb"\*([23])\r\n\$4\r\nAUTH\r\n", re.IGNORECASE)
_RESP_BULK = re.compile(rb"\$(\d{1,6})\r\n")
_INLINE_AUTH = re.compile(rb"(?:^|\r?\n)(AUTH)[ \t]+([^\r\n]+)\r?\n", re.IGNORECASE)
_RESP_CMD = re.compile(rb"\*(\d{1,4})\r\n\$(\d{1,3})\r\n([A-Za-z]{2,20})\r\n")
REDIS_DATA = {"GET", "SET", "MGET", "MSET", "HGET", "HSET", "HGETALL", "HMSET", "HMGET", "LPUSH", "RPUSH", "LRANGE",
              "SADD", "SMEMBERS", "ZADD", "ZRANGE", "KEYS", "SCAN", "SETEX", "GETSET", "APPEND", "INCR", "DEL",
              "EVAL", "PUBLISH", "XADD", "XREAD", "CONFIG", "SETNX", "LPOP", "RPOP", "BLPOP", "BRPOP"}


def _bulk(data: bytes, pos: int) -> tuple[bytes, int] | None:
    match = _RESP_BULK.match(data, pos)
    if not match:
        return None
    start = match.end()
    end = start + int(match.group(1))
    if end > len(data):
        return None
    return data[start:end], end + 2


def redis(c2s: bytes, s2c: bytes) -> list[Detection]:
    out: list[Detection] = []
    for match in _RESP_AUTH.finditer(c2s):
        args: list[bytes] = []
        pos = match.end()
        for _ in range(int(match.group(1)) - 1):
            got = _bulk(c2s, pos)
            if got is None:
                break
            args.append(got[0])
            pos = got[1]
        if args:
            user = f"{_text(args[0])} " if len(args) == 2 else ""
            out.append(Detection("redis-auth", f"AUTH {user}{mask(_text(args[-1]))}", match.start(), True))
    for match in _INLINE_AUTH.finditer(c2s):
        words = _text(match.group(2)).split()
        if words:
            user = f"{words[0]} " if len(words) == 2 else ""
            out.append(Detection("redis-auth", f"AUTH {user}{mask(words[-1])}", match.start(1), True))
    for match in re.finditer(rb"HELLO\r\n(?:\$\d+\r\n\d+\r\n)?\$4\r\nAUTH\r\n", c2s, re.IGNORECASE):
        hello_user = _bulk(c2s, match.end())
        secret = _bulk(c2s, hello_user[1]) if hello_user else None
        if hello_user and secret:
            out.append(Detection("redis-auth", f"HELLO AUTH {_text(hello_user[0])} {mask(_text(secret[0]))}",
                                 match.start(), True))
    commands: dict[str, int] = {}
    first = -1
    for match in _RESP_CMD.finditer(c2s):
        name = _text(match.group(3)).upper()
        if name in REDIS_DATA:
            commands[name] = commands.get(name, 0) + 1
            first = match.start() if first < 0 else first
    if commands:
        listed = ", ".join(f"{name}×{count}" for name, count in sorted(commands.items()))
        out.append(Detection("redis-command", f"readable commands: {listed}", first))
    return out


# ------------------------------------------------------------------------------------------------ PostgreSQL

PG_PROTOCOL_3 = 196608
PG_SSL_REQUEST = 80877103
PG_GSS_REQUEST = 80877104
PG_CANCEL = 80877102


def _pg_messages(data: bytes, pos: int) -> list[tuple[int, int, bytes]]:
    """Typed messages (type, offset, body) from ``pos`` on; stops at the first incomplete or absurd one."""
    out: list[tuple[int, int, bytes]] = []
    while pos + 5 <= len(data):
        kind = data[pos]
        (length,) = struct.unpack_from("!I", data, pos + 1)
        if length < 4 or length > 1 << 26 or not (0x20 < kind < 0x7F):
            break
        body = data[pos + 5: pos + 1 + length]
        out.append((kind, pos, body))
        pos += 1 + length
    return out


def pg_startup(c2s: bytes, pos: int = 0) -> tuple[dict[str, str], int] | None:
    """The startup message's parameters and the offset after it, or None."""
    if pos + 8 > len(c2s):
        return None
    length, code = struct.unpack_from("!II", c2s, pos)
    if code != PG_PROTOCOL_3 or not 8 < length <= 10_000:
        return None
    fields = c2s[pos + 8: pos + length].split(b"\x00")
    params = {_text(fields[i]): _text(fields[i + 1]) for i in range(0, len(fields) - 1, 2) if fields[i]}
    return params, pos + length


def postgres(c2s: bytes, s2c: bytes, c2s_start: int = 0, s2c_start: int = 0) -> list[Detection]:
    out: list[Detection] = []
    startup = pg_startup(c2s, c2s_start)
    if startup is None:
        return out
    params, pos = startup
    user, database = params.get("user", "?"), params.get("database", params.get("user", "?"))
    app = params.get("application_name")
    out.append(Detection("pg-startup", f"user={user} database={database}" + (f" application={app}" if app else ""),
                         c2s_start))
    methods = [struct.unpack_from("!I", body)[0] for kind, _, body in _pg_messages(s2c, s2c_start)
               if kind == ord("R") and len(body) >= 4]
    method = next((m for m in methods if m in (3, 5, 10)), None)
    rows = 0
    for kind, offset, body in _pg_messages(c2s, pos):
        if kind == ord("p"):
            if method == 3:
                secret = _text(body.rstrip(b"\x00"))
                out.append(Detection("pg-password", f"user={user} password {mask(secret)}", offset, True))
            elif method == 5:
                response = _text(body.rstrip(b"\x00"))
                out.append(Detection("pg-md5", f"user={user} md5 response {mask(response)} "
                                     "(crackable offline with the salt on the wire)", offset, True))
            elif method == 10 and body.startswith(b"SCRAM"):
                out.append(Detection("pg-scram", f"user={user} SCRAM-SHA-256 login in plaintext", offset))
        elif kind == ord("Q"):
            out.append(Detection("sql", _short(redact_text(_text(body.rstrip(b"\x00")))), offset))
        elif kind == ord("P"):
            name_end = body.find(b"\x00")
            query_end = body.find(b"\x00", name_end + 1)
            if 0 <= name_end < query_end:
                out.append(Detection("sql", _short(redact_text(_text(body[name_end + 1: query_end]))), offset))
    first_row = -1
    for kind, offset, _ in _pg_messages(s2c, s2c_start):
        if kind == ord("D"):
            rows += 1
            first_row = offset if first_row < 0 else first_row
    if rows:
        out.append(Detection("sql-result", f"{rows} result row(s) readable", first_row, direction="s2c"))
    return out


# ------------------------------------------------------------------------------------------------ MySQL

CLIENT_SSL = 0x800
CLIENT_PROTOCOL_41 = 0x200
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PLUGIN_AUTH_LENENC = 0x200000
CLIENT_SECURE_CONNECTION = 0x8000


def _mysql_packets(data: bytes, pos: int = 0) -> list[tuple[int, int, bytes]]:
    out: list[tuple[int, int, bytes]] = []
    while pos + 4 <= len(data):
        length = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
        seq = data[pos + 3]
        if length == 0 or pos + 4 + length > len(data):
            break
        out.append((seq, pos, data[pos + 4: pos + 4 + length]))
        pos += 4 + length
    return out


def mysql_greeting(s2c: bytes) -> str | None:
    """The server version from a protocol-10 greeting, or None."""
    packets = _mysql_packets(s2c)
    if not packets or packets[0][0] != 0 or not packets[0][2] or packets[0][2][0] != 10:
        return None
    body = packets[0][2]
    end = body.find(b"\x00", 1)
    return _text(body[1:end]) if end > 1 else None


def mysql_ssl_request(c2s: bytes) -> int | None:
    """Offset where TLS starts when the client's first packet is an SSL request (32 bytes, CLIENT_SSL)."""
    packets = _mysql_packets(c2s)
    if packets and packets[0][0] == 1 and len(packets[0][2]) == 32:
        (caps,) = struct.unpack_from("<I", packets[0][2])
        if caps & CLIENT_SSL:
            return 36
    return None


def mysql(c2s: bytes, s2c: bytes) -> list[Detection]:
    out: list[Detection] = []
    if mysql_greeting(s2c) is None:
        return out
    packets = _mysql_packets(c2s)
    if packets and packets[0][0] == 1 and len(packets[0][2]) > 32:
        body = packets[0][2]
        (caps,) = struct.unpack_from("<I", body)
        end = body.find(b"\x00", 32)
        if caps & CLIENT_PROTOCOL_41 and end > 32:
            user = _text(body[32:end])
            pos = end + 1
            auth = b""
            if pos < len(body):
                size = body[pos]
                auth = body[pos + 1: pos + 1 + size]
            excerpt = f"user={user} auth response {mask(auth.hex())}" if auth else f"user={user} (no password)"
            out.append(Detection("mysql-login", excerpt + " (challenge response, crackable offline)", packets[0][1],
                                 bool(auth)))
    for seq, offset, body in packets[1:]:
        if seq == 0 and body[:1] == b"\x03":
            out.append(Detection("sql", _short(redact_text(_text(body[1:]))), offset))
    return out


# ------------------------------------------------------------------------------------------------ HTTP

_AUTHZ = re.compile(rb"^(?:Proxy-)?Authorization:[ \t]*(Basic|Bearer|Token|Digest)[ \t]+([^\r\n]+)",
                    re.IGNORECASE | re.MULTILINE)
_REQUEST = re.compile(rb"(?:^|\n)(POST|PUT|PATCH) (\S+) HTTP/1\.[01]\r\n", re.IGNORECASE)
_FORM_PASSWORD = re.compile(r"""(?:^|[&?{,\s"'])["']?([\w.-]*(?:passw(?:or)?d|passwd|pwd|secret|token)[\w.-]*)["']?"""
                            r"""\s*(?:=|:)\s*["']?([^&"'\s,}]+)""", re.IGNORECASE)


def http(c2s: bytes, s2c: bytes) -> list[Detection]:
    out: list[Detection] = []
    for match in _AUTHZ.finditer(c2s):
        scheme, value = _text(match.group(1)), _text(match.group(2)).strip()
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode("utf-8", "replace").partition(":")
                excerpt = f"Authorization: Basic user={user} password {mask(password)}"
            except (binascii.Error, ValueError):
                excerpt = f"Authorization: Basic {mask(value)}"
            out.append(Detection("http-basic", excerpt, match.start(), True))
        elif scheme.lower() == "digest":
            named = re.search(r'username="([^"]*)"', value)
            out.append(Detection("http-digest", f"Authorization: Digest username={named.group(1) if named else '?'}",
                                 match.start()))
        else:
            out.append(Detection("http-bearer", f"Authorization: {scheme} {mask(value)}", match.start(), True))
    for match in _REQUEST.finditer(c2s):
        head_end = c2s.find(b"\r\n\r\n", match.end())
        if head_end < 0:
            continue
        length = re.search(rb"^Content-Length:[ \t]*(\d+)", c2s[match.end():head_end], re.IGNORECASE | re.MULTILINE)
        body = c2s[head_end + 4: head_end + 4 + (int(length.group(1)) if length else 4096)]
        text = unquote_plus(_text(body[:8192]))
        for field in _FORM_PASSWORD.finditer(text):
            out.append(Detection("http-form-password", f"{_text(match.group(1))} {_text(match.group(2))[:80]} "
                                 f"{field.group(1)}={mask(field.group(2))}", match.start(1), True))
            break
    return out


# ------------------------------------------------------------------------------------------------ AMQP

_AMQP_PLAIN = re.compile(rb"\x05PLAIN(....)", re.DOTALL)


def amqp(c2s: bytes, s2c: bytes) -> list[Detection]:
    out: list[Detection] = []
    if not c2s.startswith(b"AMQP"):
        return out
    for match in _AMQP_PLAIN.finditer(c2s):
        (size,) = struct.unpack("!I", match.group(1))
        response = c2s[match.end(): match.end() + min(size, 1024)]
        parts = response.split(b"\x00")
        if len(parts) == 3:
            out.append(Detection("amqp-plain", f"PLAIN user={_text(parts[1])} password {mask(_text(parts[2]))}",
                                 match.start(), True))
    for match in re.finditer(rb"\x08AMQPLAIN(....)", c2s, re.DOTALL):
        table = c2s[match.end(): match.end() + 1024]
        login = re.search(rb"\x05LOGINS....(.*?)\x08PASSWORDS(....)", table, re.DOTALL)
        pw = re.search(rb"\x08PASSWORDS(....)", table, re.DOTALL)
        if pw:
            (size,) = struct.unpack("!I", pw.group(1))
            secret = _text(table[pw.end(): pw.end() + min(size, 256)])
            user = _text(login.group(1)) if login else "?"
            out.append(Detection("amqp-plain", f"AMQPLAIN user={user} password {mask(secret)}", match.start(), True))
    return out


# ------------------------------------------------------------------------------------------------ line protocols


def _lines(data: bytes) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pos = 0
    for raw in data.split(b"\n"):
        out.append((pos, _text(raw.rstrip(b"\r"))))
        pos += len(raw) + 1
    return out


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text.strip(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return text


def line_protocol(c2s: bytes, s2c: bytes) -> list[Detection]:
    """SMTP/IMAP/POP3 AUTH and LOGIN, FTP/POP3 USER and PASS."""
    out: list[Detection] = []
    lines = _lines(c2s[:65536])
    pending: tuple[str, int, list[str]] | None = None  # mechanism, offset, the lines that follow
    user = "?"
    for offset, line in lines:
        if pending is not None:
            mech, start, got = pending
            if line in ("*", ""):
                pending = None
                continue
            got.append(line)
            if mech == "PLAIN" or len(got) == 2:
                out.append(_sasl(mech, got, start))
                pending = None
            continue
        words = line.split()
        if not words:
            continue
        tagged = words[1:] if len(words) > 1 and words[0] and not words[0].isalpha() else words
        verb = tagged[0].upper() if tagged else ""
        if verb in ("AUTH", "AUTHENTICATE") and len(tagged) >= 2:
            mech = tagged[1].upper()
            if mech in ("TLS", "SSL"):
                continue
            if len(tagged) >= 3:  # initial response on the same line
                if mech == "PLAIN":
                    out.append(_sasl(mech, [tagged[2]], offset))
                elif mech == "LOGIN":
                    pending = (mech, offset, [tagged[2]])
                else:
                    out.append(Detection("mail-auth", f"AUTH {mech} {mask(tagged[2])}", offset, True))
            elif mech in ("PLAIN", "LOGIN"):
                pending = (mech, offset, [])
            elif mech.startswith("CRAM") or mech.startswith("DIGEST"):
                out.append(Detection("mail-auth", f"AUTH {mech} (challenge response, crackable offline)",
                                     offset, True))
        elif verb == "LOGIN" and len(tagged) >= 3:  # IMAP
            out.append(Detection("imap-login", f"LOGIN {tagged[1]} {mask(tagged[2].strip(chr(34)))}", offset, True))
        elif verb == "USER" and len(tagged) >= 2:
            user = tagged[1]
        elif verb == "PASS" and len(tagged) >= 2:
            out.append(Detection("ftp-pass", f"USER {user} PASS {mask(' '.join(tagged[1:]))}", offset, True))
    return out


def _sasl(mech: str, got: list[str], offset: int) -> Detection:
    if mech == "PLAIN":
        parts = _b64(got[0]).split("\x00")
        user, secret = (parts[1], parts[2]) if len(parts) == 3 else ("?", got[0])
        return Detection("mail-auth", f"AUTH PLAIN user={user} password {mask(secret)}", offset, True)
    user = _b64(got[0])
    secret = _b64(got[1]) if len(got) > 1 else ""
    return Detection("mail-auth", f"AUTH LOGIN user={user} password {mask(secret)}", offset, True)


Detector = Callable[[bytes, bytes], list[Detection]]
DETECTORS: dict[str, Detector] = {
    "redis": redis, "mysql": mysql, "http": http, "amqp": amqp, "smtp": line_protocol, "imap": line_protocol,
    "pop3": line_protocol, "ftp": line_protocol,
}
