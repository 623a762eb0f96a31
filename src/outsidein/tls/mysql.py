"""Scan a MySQL/MariaDB endpoint's TLS: STARTTLS the way a MySQL client does it, then TLS handshakes with nassl.

sslyze has no MySQL STARTTLS, so this module does what its opportunistic-TLS helpers do for PostgreSQL, with
sslyze's own TLS library (nassl: its legacy OpenSSL build for SSLv2 to TLS 1.1 and for the TLS 1.2 suites it
has, the weak ones included; its modern build for TLS 1.3 and the TLS 1.2 suites only it has, such as
ChaCha20, CCM and ARIA) and sslyze's cipher-suite table (RFC names, key sizes, anonymous flags):

1. connect and read the server greeting (a protocol 10 handshake packet; an ERR packet such as "host is
   blocked" becomes the reason); no ``CLIENT_SSL`` capability means plaintext only, and the scan ends there;
2. per connection: read the greeting, send the 32-byte SSLRequest packet (sequence id 1) and run one TLS
   handshake on that socket, without verification and never logging in (closed right after the handshake);
3. one handshake per protocol (SSLv2, SSLv3, TLS 1.0 to 1.3) offering every suite the client has (strong
   ones first, for servers that follow the client's order); then, per accepted protocol, the weak suites
   (NULL, EXPORT, anonymous, RC4, DES/3DES) until every weak class the server accepts has one suite listed;
   then every other suite by elimination: offer what is left, note the server's pick, take it out, until
   the server refuses the rest.

Bounded: ``TIMEOUT`` on every connect, read, write and handshake; at most ``MAX_CONNECTIONS`` connections per
endpoint (the greeting read included) and ``DEADLINE`` seconds; the protocols of one endpoint are scanned
concurrently (``WORKERS`` connections at a time). The budget matters beyond politeness: MySQL and MariaDB
block a client address after ``max_connect_errors`` (default 100) successive connections that fail in the
protocol handshake (counted for client addresses the server resolved by name; loopback never), and each of
these ends before a login; the budget stays under half of that. When the budget runs out, an accepted
protocol's suite list may be cut short, never its weak classes (``tls-weak-cipher`` and
``tls-legacy-protocol`` do not depend on the rest): a protocol whose weak suites could not be enumerated
is an ``{"error": …}``, which the checks report as NOT_ASSESSED.

``scan_mysql`` returns the part of the scan JSON that ``collect`` documents (``tls``, ``handshake_error``,
``plaintext``, ``plaintext_answer``, ``starttls_offered``, ``protocols``, ``chain``, ``certificate_error``,
``ocsp_stapled``, ``must_staple``); ``collect`` adds the trust verdict. It never raises: every failure is a
reason in the JSON.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

TIMEOUT = 3.0  # seconds per connect, read, write and TLS handshake (like collect.CONNECT_TIMEOUT, SSLYZE_TIMEOUT)
MAX_CONNECTIONS = 48  # per endpoint, the greeting read included: under half of max_connect_errors' default 100
DEADLINE = 30.0  # seconds per endpoint
WORKERS = 6  # concurrent connections per endpoint (one per protocol)
MAX_PACKET = 65_536  # a greeting is a few dozen bytes

PROTOCOL_NAMES = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
CLIENT_LONG_PASSWORD = 0x1
CLIENT_LONG_FLAG = 0x4
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SSL = 0x800
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_MULTI_RESULTS = 0x20000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_FLAGS = (CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS
                | CLIENT_SECURE_CONNECTION | CLIENT_MULTI_RESULTS | CLIENT_PLUGIN_AUTH)
UTF8_GENERAL_CI = 33
ALLOWANCE_USED = "connection allowance used"


class MysqlError(Exception):
    """Why the MySQL side of the exchange failed (the message is the reason written to the scan JSON)."""


# -- the MySQL protocol, up to the TLS handshake -------------------------------------------------------------

@dataclass(frozen=True)
class Greeting:
    version: str
    capabilities: int

    @property
    def tls_offered(self) -> bool:
        return bool(self.capabilities & CLIENT_SSL)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise MysqlError("the server closed the connection before its greeting was complete"
                             if data else "the server closed the connection without a greeting")
        data += chunk
    return data


def read_packet(sock: socket.socket) -> tuple[int, bytes]:
    """One MySQL packet: (sequence id, payload)."""
    header = _recv_exact(sock, 4)
    length = header[0] | header[1] << 8 | header[2] << 16
    if length > MAX_PACKET:
        start = "".join(c if c.isprintable() else "." for c in header.decode("latin-1"))
        raise MysqlError(f"not a MySQL greeting (the answer starts with {start!r})")
    return header[3], _recv_exact(sock, length)


def parse_greeting(payload: bytes) -> Greeting:
    """The server version and capabilities of a protocol 10 greeting; MysqlError for an error packet or junk."""
    if payload[:1] == b"\xff" and len(payload) >= 3:  # ERR packet: code, then (4.1+) '#' + SQL state, message
        code = struct.unpack("<H", payload[1:3])[0]
        message = payload[3:]
        if message[:1] == b"#":
            message = message[6:]
        text = message.decode("utf-8", "replace").strip()[:200]
        raise MysqlError(f"the server refused the connection: error {code}: {text}")
    if payload[:1] != b"\x0a":
        raise MysqlError("not a MySQL greeting (protocol 10 handshake expected)")
    end = payload.find(b"\0", 1)
    if end < 0 or len(payload) < end + 1 + 4 + 9 + 2:
        raise MysqlError("truncated MySQL greeting")
    version = payload[1:end].decode("latin-1")
    pos = end + 1 + 4 + 9  # connection id, auth-plugin-data part 1, filler
    capabilities = struct.unpack("<H", payload[pos:pos + 2])[0]
    if len(payload) >= pos + 2 + 1 + 2 + 2:  # character set, status flags, upper capability flags
        capabilities |= struct.unpack("<H", payload[pos + 5:pos + 7])[0] << 16
    return Greeting(version=version, capabilities=capabilities)


def ssl_request(greeting: Greeting) -> bytes:
    """The SSLRequest packet: a 32-byte HandshakeResponse41 prefix with CLIENT_SSL, sequence id 1."""
    flags = (CLIENT_FLAGS & greeting.capabilities) | CLIENT_PROTOCOL_41 | CLIENT_SSL
    payload = struct.pack("<IIB23x", flags, 1 << 24, UTF8_GENERAL_CI)
    return struct.pack("<I", len(payload))[:3] + b"\x01" + payload


def _connect(host: str, port: int) -> tuple[socket.socket, Greeting]:
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    try:
        sock.settimeout(TIMEOUT)
        _, payload = read_packet(sock)
        return sock, parse_greeting(payload)
    except BaseException:
        sock.close()
        raise


def read_greeting(host: str, port: int) -> Greeting:
    """Connect and read the greeting only (OSError or MysqlError when there is none)."""
    sock, greeting = _connect(host, port)
    sock.close()
    return greeting


def starttls_socket(host: str, port: int) -> socket.socket:
    """A connected socket on which the server now expects a TLS ClientHello."""
    sock, greeting = _connect(host, port)
    try:
        if not greeting.tls_offered:
            raise MysqlError("the server no longer offers TLS (no CLIENT_SSL in its greeting)")
        sock.sendall(ssl_request(greeting))
        return sock
    except BaseException:
        sock.close()
        raise


# -- TLS handshakes with nassl -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Lane:
    """One protocol version through one of nassl's two OpenSSL builds, with the suites that build offers."""

    protocol: str
    version: int  # nassl OpenSslVersionEnum value
    legacy: bool
    suites: dict[str, Any]  # openssl name -> sslyze CipherSuite


@dataclass
class _Outcome:
    suite: str | None = None  # the OpenSSL name of the suite the server chose
    chain: list[str] = field(default_factory=list)
    rejected: str | None = None  # the server refused the handshake (not this suite set / not this protocol)
    error: str | None = None  # no answer to judge: connection failure, budget or time exhausted
    dh_too_small: bool = False  # our OpenSSL refused the server's DH group: some DHE suite was accepted
    client_side: bool = False  # the error is our OpenSSL's (no suite it can offer), the server saw nothing


def weak_classes(suite: Any) -> frozenset[str]:
    """The weak classes a suite belongs to: what ``tls-weak-cipher`` fails on (NULL, EXPORT, anonymous, RC4, DES)."""
    name = suite.name.upper()
    classes = {"anonymous"} if suite.is_anonymous or "_ANON_" in name else set()
    for marker, kind in (("NULL", "NULL"), ("EXPORT", "EXPORT"), ("RC4", "RC4"), ("DES", "DES")):
        if marker in name:
            classes.add(kind)
    return frozenset(classes)


def is_weak(suite: Any) -> bool:
    return bool(weak_classes(suite))


@cache
def _lanes() -> dict[str, tuple[_Lane, ...]]:
    """Per protocol, the lanes to try in order (TLS 1.2: the legacy build's suites, then the modern-only ones)."""
    from nassl.legacy_ssl_client import LegacySslClient
    from nassl.ssl_client import OpenSslVersionEnum
    from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuitesRepository
    from sslyze.server_connectivity import TlsVersionEnum

    def table(version: TlsVersionEnum) -> dict[str, Any]:
        """openssl name -> suite, strong suites first (a server that follows the client's order picks them)."""
        suites = sorted(CipherSuitesRepository.get_all_cipher_suites(version),
                        key=lambda s: (is_weak(s), -s.key_size, s.openssl_name))
        return {s.openssl_name: s for s in suites}

    legacy12 = LegacySslClient(ssl_version=OpenSslVersionEnum.TLSV1_2)
    legacy12.set_cipher_list("ALL:COMPLEMENTOFALL")
    legacy_names = set(legacy12.get_cipher_list())
    tls12 = table(TlsVersionEnum.TLS_1_2)
    lanes: dict[str, tuple[_Lane, ...]] = {}
    for name, version in (("SSLv2", TlsVersionEnum.SSL_2_0), ("SSLv3", TlsVersionEnum.SSL_3_0),
                          ("TLSv1.0", TlsVersionEnum.TLS_1_0), ("TLSv1.1", TlsVersionEnum.TLS_1_1)):
        lanes[name] = (_Lane(name, version.value, True, table(version)),)
    lanes["TLSv1.2"] = (  # as sslyze: the legacy build for every suite it has, the modern one for the rest
        _Lane("TLSv1.2", TlsVersionEnum.TLS_1_2.value, True, {k: v for k, v in tls12.items() if k in legacy_names}),
        _Lane("TLSv1.2", TlsVersionEnum.TLS_1_2.value, False,
              {k: v for k, v in tls12.items() if k not in legacy_names}),
    )
    lanes["TLSv1.3"] = (_Lane("TLSv1.3", TlsVersionEnum.TLS_1_3.value, False, table(TlsVersionEnum.TLS_1_3)),)
    return lanes


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, TimeoutError):
        text = "timed out"
    return text.splitlines()[-1][:200]


class _Budget:
    """Connections left and the deadline, shared by the threads scanning one endpoint."""

    def __init__(self, connections: int, seconds: float) -> None:
        self.left = connections
        self.deadline = time.monotonic() + seconds
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.left <= 0 or time.monotonic() > self.deadline:
                return False
            self.left -= 1
            return True


@dataclass
class _Protocol:
    lanes: tuple[_Lane, ...]
    accepted: bool = False
    found: dict[str, Any] = field(default_factory=dict)  # openssl name -> CipherSuite
    chain: list[str] = field(default_factory=list)
    error: str | None = None
    finished: set[int] = field(default_factory=set)  # lanes whose suites are all enumerated


class _Scan:
    def __init__(self, host: str, port: int, server_name: str, budget: _Budget) -> None:
        self.host, self.port, self.server_name, self.budget = host, port, server_name, budget

    def handshake(self, lane: _Lane, names: list[str]) -> _Outcome:
        from nassl.legacy_ssl_client import LegacySslClient
        from nassl.ssl_client import ClientCertificateRequested, OpenSslVerifyEnum, OpenSslVersionEnum, SslClient

        version = OpenSslVersionEnum(lane.version)
        client_cls = LegacySslClient if lane.legacy else SslClient
        client = client_cls(ssl_version=version, ssl_verify=OpenSslVerifyEnum.NONE,
                            ignore_client_authentication_requests=True)
        try:
            if version == OpenSslVersionEnum.TLSV1_3:
                assert isinstance(client, SslClient)
                client.set_ciphersuites(":".join(names))
            elif lane.legacy:
                client.set_cipher_list(":".join(names))
            else:  # the modern build's default security level would leave the anonymous suites out
                client.set_cipher_list(":".join(names) + ":@SECLEVEL=0")
            if version != OpenSslVersionEnum.SSLV2:
                client.set_tlsext_host_name(self.server_name)
        except Exception as exc:  # our OpenSSL knows none of these suites: nothing to test, nothing sent
            return _Outcome(error=f"the scanner cannot offer these suites ({_short(exc)})", client_side=True)
        if not self.budget.take():
            return _Outcome(error="stopped at the scan's limit (connections or time per endpoint)")
        try:
            sock = starttls_socket(self.host, self.port)
        except (OSError, MysqlError) as exc:
            return _Outcome(error=_short(exc))
        try:
            client.set_underlying_socket(sock)
            with contextlib.suppress(ClientCertificateRequested):  # protocol and suite accepted before that
                client.do_handshake()
            chain: list[str] = []
            with contextlib.suppress(Exception):  # an anonymous suite: no certificate at all
                chain = client.get_received_chain()
            return _Outcome(suite=client.get_current_cipher_name(), chain=chain)
        except Exception as exc:  # an OpenSSL alert, a reset, a timeout (as sslyze): the server refused it
            text = _short(exc)
            if "no ciphers available" in text:  # our side could offer none of these suites: nothing was tested
                return _Outcome(error=f"the scanner cannot offer these suites ({text})", client_side=True)
            return _Outcome(rejected=text, dh_too_small="dh key too small" in text)
        finally:
            with contextlib.suppress(Exception):
                client.shutdown()
            sock.close()

    def probe(self, proto: _Protocol) -> None:
        """Is the protocol accepted at all? One handshake per lane, every suite of the lane offered."""
        for lane in proto.lanes:
            outcome = self.handshake(lane, list(lane.suites))
            if outcome.client_side:
                continue
            if outcome.error:
                proto.error = outcome.error
                return
            if outcome.suite or outcome.dh_too_small:
                proto.accepted = True
                proto.chain = outcome.chain
                if outcome.suite in lane.suites:
                    proto.found[outcome.suite] = lane.suites[outcome.suite]
                return

    def eliminate(self, proto: _Protocol, lane: _Lane, candidates: list[str], limit: int | None = None,
                  covered: set[str] | None = None) -> tuple[str | None, int]:
        """Offer the candidates, note the server's pick, take it out, repeat until the server refuses the rest.

        ``covered`` (weak classes already found, updated here): after each pick also take out the suites whose
        weak classes are all found by then (one accepted suite per class is enough for the verdict). Returns
        (why it stopped before the server refused the rest, or None; connections used).
        """
        used = 0
        while candidates:
            if limit is not None and used >= limit:
                return ALLOWANCE_USED, used
            used += 1
            outcome = self.handshake(lane, candidates)
            if outcome.client_side:
                return None, used  # none of the remaining suites can be offered: nothing left to learn
            if outcome.error:
                return outcome.error, used
            if outcome.dh_too_small:  # some DHE suite, we cannot tell which: go on without the DHE ones
                candidates = [n for n in candidates if "DHE" not in n and "EDH" not in n]
                continue
            if not outcome.suite or outcome.suite not in candidates:
                return None, used  # refused (or an unexpected pick: stop rather than loop)
            proto.found[outcome.suite] = lane.suites[outcome.suite]
            candidates = [n for n in candidates if n != outcome.suite]
            if covered is not None:
                covered |= weak_classes(lane.suites[outcome.suite])
                candidates = [n for n in candidates if not weak_classes(lane.suites[n]) <= covered]
        return None, used

    def weak(self, proto: _Protocol) -> None:
        """Which weak classes the protocol accepts (one suite each, at least); an error if that stays unknown."""
        covered = {c for s in proto.found.values() for c in weak_classes(s)}
        for lane in proto.lanes:
            candidates = [n for n, s in lane.suites.items()
                          if n not in proto.found and weak_classes(s) and not weak_classes(s) <= covered]
            error, _ = self.eliminate(proto, lane, candidates, covered=covered)
            if error:
                proto.error = f"weak suites not enumerated: {error}"
                return

    def rest(self, proto: _Protocol, limit: int) -> bool:
        """Every other accepted suite, within ``limit`` connections; False when the allowance ran out first."""
        for index, lane in enumerate(proto.lanes):
            if index in proto.finished:
                continue
            error, used = self.eliminate(proto, lane, [n for n in lane.suites if n not in proto.found], limit)
            limit -= used
            if error == ALLOWANCE_USED:
                return False
            proto.finished.add(index)
            if error:
                return True  # a connection failed: the list stays as it is
        return True


def _suite_json(suite: Any) -> dict[str, Any]:
    return {"name": suite.name, "openssl_name": suite.openssl_name, "key_size": suite.key_size,
            "anonymous": suite.is_anonymous}


def _pem(chain: list[str]) -> tuple[list[str], bool]:
    """The chain as cryptography writes PEM (like the sslyze path), and whether the leaf demands OCSP stapling."""
    certs = [x509.load_pem_x509_certificate(p.encode()) for p in chain]
    must_staple = False
    if certs:
        with contextlib.suppress(x509.ExtensionNotFound):
            features = certs[0].extensions.get_extension_for_class(x509.TLSFeature).value
            must_staple = x509.TLSFeatureType.status_request in features
    return [c.public_bytes(Encoding.PEM).decode("ascii") for c in certs], must_staple


def scan_mysql(host: str, port: int, server_name: str, *, max_connections: int = MAX_CONNECTIONS,
               deadline: float = DEADLINE) -> dict[str, Any]:
    """The MySQL endpoint's part of the scan JSON (see the module docstring); never raises."""
    try:
        return _scan(host, port, server_name, max_connections, deadline)
    except Exception as exc:  # a bug or an unexpected library error is a reason, not a crash of the audit
        return {"tls": False, "handshake_error": f"MySQL TLS scan failed: {type(exc).__name__}: {_short(exc)}"}


def _scan(host: str, port: int, server_name: str, max_connections: int, deadline: float) -> dict[str, Any]:
    try:
        greeting = read_greeting(host, port)
    except (OSError, MysqlError) as exc:
        return {"tls": False, "plaintext": False, "handshake_error": f"no MySQL greeting: {_short(exc)}"}
    answer = f"MySQL {greeting.version} greeting"
    if not greeting.tls_offered:
        return {"tls": False, "plaintext": True, "starttls_offered": False,
                "plaintext_answer": f"{answer} without CLIENT_SSL (the server only speaks plaintext)",
                "handshake_error": "the server does not offer TLS (no CLIENT_SSL in its greeting)"}
    budget = _Budget(max_connections - 1, deadline)
    scan = _Scan(host, port, server_name, budget)
    protocols = {name: _Protocol(lanes) for name, lanes in _lanes().items()}
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(scan.probe, protocols.values()))
        accepted = [p for p in protocols.values() if p.accepted and not p.error]
        list(pool.map(scan.weak, accepted))
        accepted = [p for p in accepted if not p.error]
        while accepted and budget.left > 0:  # the rest, the budget shared; what one protocol leaves goes on
            shares = [max(1, budget.left // len(accepted))] * len(accepted)
            complete = list(pool.map(scan.rest, accepted, shares))
            accepted = [p for p, done in zip(accepted, complete, strict=True) if not done]
    out: dict[str, Any] = {}
    for name in PROTOCOL_NAMES:
        proto = protocols[name]
        if proto.error:
            out[name] = {"error": proto.error}
        else:
            suites = sorted(proto.found.values(), key=lambda s: s.name)
            out[name] = {"accepted": proto.accepted, "suites": [_suite_json(s) for s in suites]}
    chains = [protocols[n].chain for n in reversed(PROTOCOL_NAMES) if protocols[n].chain]
    if not any(p.accepted for p in protocols.values()):
        errors = [f"{n}: {p.error}" for n, p in protocols.items() if p.error]
        why = "; ".join(errors) if errors else "the server refused every TLS version"
        return {"tls": False, "plaintext": False, "starttls_offered": True, "plaintext_answer": answer,
                "handshake_error": f"no TLS handshake completed after the SSLRequest ({why})"[:300]}
    scan_json: dict[str, Any] = {"tls": True, "handshake_error": None, "plaintext": False, "plaintext_answer": None,
                                 "starttls_offered": True, "protocols": out, "chain": [], "certificate_error": None,
                                 "ocsp_stapled": False, "must_staple": False}
    try:
        scan_json["chain"], scan_json["must_staple"] = _pem(chains[0]) if chains else ([], False)
    except ValueError as exc:
        scan_json["certificate_error"] = f"unparsable certificate: {_short(exc)}"
    if not scan_json["chain"] and not scan_json["certificate_error"]:
        scan_json["certificate_error"] = "no certificate received"
    return scan_json
