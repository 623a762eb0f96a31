"""A minimal HTTP/1.1 keep-alive client for the load generator: pre-built request bytes, an asyncio protocol.

The hot path is callback-driven like wrk's: the response is parsed in ``data_received`` (status line, then
the body by Content-Length, chunked encoding or until the server closes) and the sample handed to the
caller's callback there, which may send the next request at once; no coroutine, future or per-request timer
in between. httpx did the same work at about 1,000 requests per CPU-second; this does about 70,000.

A ``Client`` holds at most one connection, always to the checked address (``Endpoint.address``, an IP
literal: no DNS lookup happens here); the URL's host name only travels in the Host header and, for https,
as SNI and the name the certificate is verified against (the system trust store). A connection the server
closes (``Connection: close``, HTTP/1.0, end of body at close) is opened again for the next request. Each
request has a deadline (connect + write + whole response), kept by one lazily re-armed timer per client.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Callable
from time import perf_counter
from typing import NamedTuple
from urllib.parse import quote

from outsidein.simulate.guard import Endpoint

MAX_HEAD = 64 * 1024  # bytes of status line and headers (or of one chunk-size line) before we give up

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _UNTIL_CLOSE = range(6)


class Sample(NamedTuple):
    t: float  # seconds since the scenario started, when the response ended
    latency_ms: float
    status: int  # 0: transport error

    @property
    def error(self) -> bool:
        return self.status == 0 or self.status >= 400


class ProtocolError(ValueError):
    """The server's bytes are not an HTTP/1.x response."""


def request_bytes(endpoint: Endpoint, method: str, headers: dict[str, str], body: str | None) -> bytes:
    """One request, ready to write: request line, the headers as given, Content-Length for a body."""
    path = quote(endpoint.path, safe="/?#[]@!$&'()*+,;=:%-._~")
    lines = [f"{method} {path} HTTP/1.1"]
    data = body.encode() if body is not None else b""
    for name, value in headers.items():
        if any(c in name + value for c in "\r\n\0") or not name or ":" in name:
            raise ValueError(f"invalid header {name!r}")
        if name.lower() not in ("content-length", "transfer-encoding"):
            lines.append(f"{name}: {value}")
    if body is not None or method.upper() in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


def _header(block: bytes, name: bytes) -> bytes | None:
    """The value of ``name`` in a lower-cased header block that starts with CRLF (the first one, stripped)."""
    at = block.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    end = block.find(b"\r\n", start)
    return block[start:end if end >= 0 else None].strip()


class ResponseParser:
    """Incremental parser of one response at a time; the body is counted, never kept."""

    __slots__ = ("buf", "keep_alive", "no_body", "remaining", "state", "status")

    def __init__(self) -> None:
        self.buf = b""
        self.reset(False)

    def reset(self, no_body: bool) -> None:
        """Ready for the next response (``no_body``: the request was HEAD)."""
        self.state, self.remaining, self.status, self.keep_alive, self.no_body = _HEAD, 0, 0, True, no_body

    def feed(self, data: bytes) -> int | None:
        """Bytes from the server: the status once the whole response is in, else None."""
        buf = self.buf + data if self.buf else data
        pos, size = 0, len(buf)
        while True:
            state = self.state
            if state in (_LENGTH, _CHUNK_DATA):
                if size - pos < self.remaining:
                    self.remaining -= size - pos
                    pos = size
                    break
                pos += self.remaining
                if state == _CHUNK_DATA:
                    self.state = _CHUNK_SIZE
                    continue
                self.buf = buf[pos:]
                return self.status
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n", pos)
                if end < 0:
                    if size - pos > MAX_HEAD:
                        raise ProtocolError("response head too large")
                    break
                done = self._head(buf[pos:end])
                pos = end + 4
                if done:
                    self.buf = buf[pos:]
                    return self.status
                continue
            if state == _UNTIL_CLOSE:
                pos = size
                break
            end = buf.find(b"\r\n", pos)  # a chunk-size line or a trailer line
            if end < 0:
                if size - pos > MAX_HEAD:
                    raise ProtocolError("chunk line too long")
                break
            line = buf[pos:end]
            pos = end + 2
            if state == _TRAILER:
                if not line:
                    self.buf = buf[pos:]
                    return self.status
                continue
            try:
                chunk = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {line[:40]!r}") from None
            if chunk:
                self.state, self.remaining = _CHUNK_DATA, chunk + 2  # the data and its CRLF
            else:
                self.state = _TRAILER
        self.buf = buf[pos:] if pos < size else b""
        return None

    def _head(self, head: bytes) -> bool:
        """Status line and headers; True when the response has no body (complete already)."""
        line_end = head.find(b"\r\n")
        line = head if line_end < 0 else head[:line_end]
        if not line.startswith(b"HTTP/1.") or len(line) < 12:
            raise ProtocolError(f"not an HTTP/1.x status line: {line[:40]!r}")
        try:
            status = int(line[9:12])
        except ValueError:
            raise ProtocolError(f"bad status line {line[:40]!r}") from None
        block = head[line_end:].lower() if line_end >= 0 else b""
        keep_alive = line[7:8] != b"0"
        connection = _header(block, b"connection")
        if connection is not None:
            if b"close" in connection:
                keep_alive = False
            elif b"keep-alive" in connection:
                keep_alive = True
        if 100 <= status < 200 and status != 101:
            return False  # an interim response: the real one follows
        self.status, self.keep_alive = status, keep_alive
        if self.no_body or status in (101, 204, 304):
            self.keep_alive = keep_alive and status != 101
            return True
        encoding = _header(block, b"transfer-encoding")
        if encoding is not None and b"chunked" in encoding:
            self.state = _CHUNK_SIZE
            return False
        length = _header(block, b"content-length")
        if length is None:
            self.state, self.keep_alive = _UNTIL_CLOSE, False
            return False
        try:
            self.remaining = int(length)
        except ValueError:
            raise ProtocolError(f"bad Content-Length {length[:40]!r}") from None
        if self.remaining <= 0:
            return True
        self.state = _LENGTH
        return False

    def eof(self) -> int | None:
        """The server closed: the status if that ended the response, else None (cut short)."""
        return self.status if self.state == _UNTIL_CLOSE else None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying client context per process (loading the trust store costs milliseconds)."""
    return ssl.create_default_context()


class _Conn(asyncio.Protocol):
    """One TCP (or TLS) connection; forwards to its client while it is the client's current one."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.client._data(self, data)

    def eof_received(self) -> bool | None:
        self.client._closed_by_server(self)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._closed_by_server(self)


class Client:
    """One virtual user's connection: ``send`` one request at a time; the sample goes to the callback."""

    def __init__(self, endpoint: Endpoint, payload: bytes, *, timeout: float, head: bool = False,
                 close: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        self.endpoint, self.payload, self.timeout, self.head, self.close_each = endpoint, payload, timeout, head, \
            close
        self.ssl = tls_context() if endpoint.scheme == "https" else None
        self.parser = ResponseParser()
        self.conn: _Conn | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.callback: Callable[[Sample], object] | None = None
        self.t0 = self.started = self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False

    # -- the request cycle

    def send(self, t0: float, callback: Callable[[Sample], object], timeout: float | None = None) -> None:
        """Send the request; ``callback(Sample)`` runs once, later (never from inside this call)."""
        if self.callback is not None or self.closed:
            raise RuntimeError("one request at a time on an open client")
        self.callback, self.t0 = callback, t0
        loop = self.loop
        self.deadline = deadline = loop.time() + (self.timeout if timeout is None else timeout)
        timer = self.timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self.timer = loop.call_at(deadline, self._check_deadline)
        self.parser.reset(self.head)
        self.started = perf_counter()
        conn = self.conn
        if conn is None or conn.transport is None or conn.transport.is_closing():
            self.conn = None
            self.connecting = loop.create_task(self._connect())
        else:
            conn.transport.write(self.payload)

    async def request(self, t0: float, timeout: float | None = None) -> Sample:
        """``send`` as a coroutine, for the sequential scenarios."""
        done: asyncio.Future[Sample] = self.loop.create_future()
        self.send(t0, done.set_result, timeout)
        try:
            return await done
        except asyncio.CancelledError:
            self.close()
            raise

    async def _connect(self) -> None:
        ep = self.endpoint
        conn = _Conn(self)
        try:
            await self.loop.create_connection(lambda: conn, ep.address, ep.port, ssl=self.ssl,
                                              server_hostname=ep.host if self.ssl is not None else None)
        except (OSError, ValueError, EOFError):  # refused, reset, unreachable, TLS handshake or certificate
            self.connecting = None
            if self.callback is not None:
                self._finish(0)
            return
        self.connecting = None
        if self.callback is None or self.closed or conn.transport is None:
            if conn.transport is not None:
                conn.transport.abort()
            return
        self.conn = conn
        conn.transport.write(self.payload)

    def _data(self, conn: _Conn, data: bytes) -> None:
        if conn is not self.conn:
            return
        if self.callback is None:  # bytes nobody asked for: this connection is out of step, drop it
            self._drop()
            return
        try:
            status = self.parser.feed(data)
        except ProtocolError:
            self._drop()
            self._finish(0)
            return
        if status is not None:
            if not self.parser.keep_alive or self.close_each:
                self._drop(abort=False)
            self._finish(status)

    def _closed_by_server(self, conn: _Conn) -> None:
        if conn is not self.conn:
            return
        self.conn = None
        if conn.transport is not None:
            conn.transport.close()
        if self.callback is not None:
            self._finish(self.parser.eof() or 0)

    def _check_deadline(self) -> None:
        self.timer = None
        if self.callback is None:
            return
        if self.loop.time() < self.deadline:
            self.timer = self.loop.call_at(self.deadline, self._check_deadline)
            return
        self._drop()
        self._finish(0)

    def _finish(self, status: int) -> None:
        ended = perf_counter()
        callback, self.callback = self.callback, None
        assert callback is not None
        callback(Sample(ended - self.t0, (ended - self.started) * 1000.0, status))

    def _drop(self, abort: bool = True) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and conn.transport is not None:
            if abort:
                conn.transport.abort()
            else:
                conn.transport.close()
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None

    # -- lifetime

    def close(self) -> None:
        """Close the connection; a request in flight is abandoned (its callback never runs)."""
        self.closed = True
        self.callback = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._drop()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
