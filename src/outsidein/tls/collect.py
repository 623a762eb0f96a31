"""Collect TLS evidence: scan endpoints with sslyze, read certificate files, probe plaintext answers.

Read-only and bounded: a TCP connect (``CONNECT_TIMEOUT``), an optional pre-probe (PostgreSQL SSLRequest),
one sslyze scan per endpoint (protocols SSLv2 to TLS 1.3 with their accepted suites, the certificate chain
and the stapled OCSP response), all endpoints at once, and, where no TLS handshake completed, one plaintext
probe (Redis ``PING``, HTTP ``HEAD``, the AMQP header, a banner read). sslyze has no MySQL STARTTLS, so a
``mysql`` endpoint is scanned by ``outsidein.tls.mysql`` instead, concurrently with the others: the greeting
(no ``CLIENT_SSL``: plaintext), then per connection the SSLRequest and a TLS handshake with sslyze's nassl,
one per protocol and then by elimination for the suites (the weak classes first), at most
``mysql.MAX_CONNECTIONS`` connections and ``mysql.DEADLINE`` seconds per endpoint; its JSON has the same
shape (``ocsp_stapled`` always false: MySQL servers do not staple).

The served chain is validated here with cryptography against sslyze's Mozilla store plus an optional CA file
(``ca_file``, or the ``OUTSIDEIN_TLS_CA_FILE`` environment variable), at a time inside the chain's
validity, so "not trusted" is never an expiry or a hostname problem in disguise (those are checked apart).

The scan JSON (``TlsEvidence.scan.data``) for an endpoint::

    {"scanned_at": ISO 8601, "host": str, "port": int, "protocol": str, "server_name": str,
     "tls": bool, "handshake_error": str | None, "plaintext": bool, "plaintext_answer": str | None,
     "starttls_offered": bool | None,
     "protocols": {"SSLv2" … "TLSv1.3": {"accepted": bool, "suites": [{"name", "openssl_name", "key_size",
                   "anonymous"}]} or {"error": str}},
     "chain": [PEM, …], "certificate_error": str | None,
     "trust": {"trusted": bool, "error": str | None, "stores": [str]},
     "ocsp_stapled": bool, "must_staple": bool, "seconds": float}

and for a certificate file ``{"pem": str, "scanned_at": ISO 8601}`` (certificate blocks only: a private key
in the same file is never read into the evidence).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import os
import re
import socket
import ssl
import struct
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from outsidein.evidence import Record, TlsEvidence
from outsidein.scope import CertificateFilesScope, TlsEndpointScope
from outsidein.tls.mysql import scan_mysql

CONNECT_TIMEOUT = 3.0
PROBE_TIMEOUT = 2.0
SSLYZE_TIMEOUT = 3  # seconds per network operation inside sslyze
MAX_CERT_FILE_BYTES = 1_000_000
CA_FILE_ENV = "OUTSIDEIN_TLS_CA_FILE"

DEFAULT_PROTOCOLS = {
    443: "https", 8443: "https", 3000: "grafana", 9000: "sonarqube", 5432: "postgres", 6379: "redis",
    6380: "redis", 5671: "amqps", 5672: "amqp", 3306: "mysql", 25: "smtp", 587: "smtp", 465: "smtps",
    143: "imap", 993: "imaps", 110: "pop3", 995: "pop3s", 389: "ldap", 636: "ldaps", 21: "ftp",
}
STARTTLS = {"postgres": "POSTGRES", "smtp": "SMTP", "imap": "IMAP", "ldap": "LDAP", "pop3": "POP3", "ftp": "FTP",
            "xmpp": "XMPP"}
HTTP_LIKE = {"https", "http", "grafana", "sonarqube", "tls", "app"}
PROTOCOL_NAMES = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
warnings.filterwarnings("ignore", message="Parsed a serial number which wasn't positive")  # a Mozilla root
PEM_CERT_RE = re.compile(rb"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")


def protocol_for(endpoint: TlsEndpointScope) -> str:
    """The scope's protocol, or the one the port implies (``tls`` for an unknown port)."""
    if endpoint.protocol:
        return endpoint.protocol.lower()
    return DEFAULT_PROTOCOLS.get(endpoint.host_port[1], "tls")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _printable(data: bytes, limit: int = 80) -> str:
    text = data[:limit].decode("latin-1")
    return "".join(c if c.isprintable() else "." for c in text).strip()


# -- plaintext probes ------------------------------------------------------------------------------------

def _exchange(host: str, port: int, send: bytes | None, size: int = 512) -> bytes:
    with socket.create_connection((host, port), timeout=PROBE_TIMEOUT) as sock:
        if send:
            sock.sendall(send)
        chunks = b""
        with contextlib.suppress(TimeoutError, OSError):
            while len(chunks) < size:
                chunk = sock.recv(size)
                if not chunk:
                    break
                chunks += chunk
                if send is not None or b"\n" in chunks:
                    break
        return chunks


def _postgres_ssl_request(host: str, port: int) -> bytes:
    """PostgreSQL's answer to an SSLRequest: ``S`` (TLS follows) or ``N`` (plaintext only)."""
    return _exchange(host, port, struct.pack("!II", 8, 80877103), size=1)


def plaintext_probe(host: str, port: int, protocol: str) -> str | None:
    """What the service answered in plaintext (a short excerpt), or None when nothing recognisable did."""
    probes: list[tuple[bytes | None, re.Pattern[bytes]]] = []
    if protocol == "redis":
        probes.append((b"PING\r\n", re.compile(rb"^(\+PONG|-NOAUTH|-ERR|-DENIED)")))
    elif protocol in ("amqps", "amqp"):
        probes.append((b"AMQP\x00\x00\x09\x01", re.compile(rb"^(AMQP|\x01\x00\x00)")))
    elif protocol in ("postgres",):
        probes.append((struct.pack("!II", 8, 80877103), re.compile(rb"^N")))
    elif protocol in HTTP_LIKE:
        probes.append((None, re.compile(rb"^(220|\* OK|\+OK)")))  # some "tls" ports are mail servers
        probes.append((b"HEAD / HTTP/1.0\r\nHost: " + host.encode() + b"\r\n\r\n", re.compile(rb"^HTTP/\d")))
    else:
        probes.append((None, re.compile(rb"^(220|\* OK|\+OK|SSH-)")))
    for send, pattern in probes:
        try:
            answer = _exchange(host, port, send, size=1 if protocol == "postgres" else 512)
        except OSError:
            continue
        if pattern.search(answer):
            if protocol == "postgres":
                return "N (SSLRequest refused: the server only speaks plaintext)"
            return _printable(answer)
    return None


def quick_handshake(host: str, port: int, server_name: str) -> str | None:
    """One permissive TLS handshake (any version OpenSSL still has, no verification); the error or None.

    It lets a plaintext service (a Redis port without TLS) be recognised in milliseconds, where sslyze would
    spend its timeouts on every TLS version before giving up.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(ssl.SSLError, ValueError):
        ctx.set_ciphers("ALL:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT) as sock, \
                ctx.wrap_socket(sock, server_hostname=server_name):
            return None
    except (OSError, ssl.SSLError) as exc:
        return f"{type(exc).__name__}: {exc}"


# -- chain validation ------------------------------------------------------------------------------------

@cache
def _mozilla_roots() -> tuple[x509.Certificate, ...]:
    try:
        from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import TrustStoresRepository

        path = TrustStoresRepository.get_default().get_main_store().path
        with warnings.catch_warnings():  # one Mozilla root has a non-positive serial number
            warnings.simplefilter("ignore")
            return tuple(x509.load_pem_x509_certificates(path.read_bytes()))
    except Exception:  # a broken trust store is a trust error below, never a crash
        return ()


def _trust(chain_pem: list[str], ca_file: Path | None) -> dict[str, Any]:
    """Whether the served chain builds to a trusted root (time and hostname taken out of the question)."""
    stores = ["Mozilla (sslyze)"]
    roots = list(_mozilla_roots())
    if ca_file is not None:
        try:
            roots.extend(x509.load_pem_x509_certificates(ca_file.read_bytes()))
            stores.append(str(ca_file))
        except (OSError, ValueError) as exc:
            return {"trusted": False, "error": f"cannot read CA file {ca_file}: {exc}", "stores": stores}
    try:
        certs = [x509.load_pem_x509_certificate(p.encode()) for p in chain_pem]
    except ValueError as exc:
        return {"trusted": False, "error": f"unparsable certificate: {exc}", "stores": stores}
    if not certs or not roots:
        return {"trusted": False, "error": "no certificate or no trust anchors", "stores": stores}
    leaf = certs[0]
    try:
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {"trusted": False, "error": "the leaf certificate has no subjectAltName", "stores": stores}
    dns_names = sans.get_values_for_type(x509.DNSName)
    ips = sans.get_values_for_type(x509.IPAddress)
    subject: x509.DNSName | x509.IPAddress | None = None
    if dns_names:
        subject = x509.DNSName(dns_names[0].replace("*.", "wildcard.", 1))
    elif ips:
        subject = x509.IPAddress(ips[0])
    if subject is None:
        return {"trusted": False, "error": "the leaf certificate names no DNS name or IP address", "stores": stores}
    # now, or the nearest moment inside the served chain's validity: expiry is tls-cert-expired's business
    earliest = max(c.not_valid_before_utc for c in certs) + dt.timedelta(seconds=1)
    latest = min(c.not_valid_after_utc for c in certs) - dt.timedelta(seconds=1)
    when = min(max(dt.datetime.now(dt.UTC), earliest), max(latest, earliest))
    try:
        verifier = PolicyBuilder().store(Store(roots)).time(when).build_server_verifier(subject)
        verifier.verify(leaf, certs[1:])
    except VerificationError as exc:
        return {"trusted": False, "error": str(exc), "stores": stores}
    except ValueError as exc:
        return {"trusted": False, "error": str(exc), "stores": stores}
    return {"trusted": True, "error": None, "stores": stores}


# -- sslyze ----------------------------------------------------------------------------------------------

def _suite_json(accepted: Any) -> dict[str, Any]:
    suite = accepted.cipher_suite
    return {"name": suite.name, "openssl_name": suite.openssl_name, "key_size": suite.key_size,
            "anonymous": suite.is_anonymous}


Job = tuple[int, str, int, str, str, Path | None]  # index, host, port, protocol, server name, CA file


def _sslyze_scan(jobs: list[Job]) -> dict[int, dict[str, Any]]:
    """Scan every job with sslyze, all at once; index -> partial scan JSON."""
    from sslyze.connection_helpers.opportunistic_tls_helpers import ProtocolWithOpportunisticTlsEnum
    from sslyze.plugins.scan_commands import ScanCommand
    from sslyze.scanner.models import ServerScanRequest, ServerScanStatusEnum
    from sslyze.scanner.scan_command_attempt import ScanCommandAttemptStatusEnum
    from sslyze.scanner.scanner import Scanner
    from sslyze.server_setting import ServerNetworkConfiguration, ServerNetworkLocation

    commands = {
        "SSLv2": ScanCommand.SSL_2_0_CIPHER_SUITES, "SSLv3": ScanCommand.SSL_3_0_CIPHER_SUITES,
        "TLSv1.0": ScanCommand.TLS_1_0_CIPHER_SUITES, "TLSv1.1": ScanCommand.TLS_1_1_CIPHER_SUITES,
        "TLSv1.2": ScanCommand.TLS_1_2_CIPHER_SUITES, "TLSv1.3": ScanCommand.TLS_1_3_CIPHER_SUITES,
    }
    out: dict[int, dict[str, Any]] = {}
    requests: dict[Any, int] = {}
    queued: list[Any] = []
    cas: dict[int, Path | None] = {}
    for index, host, port, protocol, server_name, ca in jobs:
        cas[index] = ca
        try:
            location = ServerNetworkLocation(hostname=host, port=port)
            starttls = STARTTLS.get(protocol)
            config = ServerNetworkConfiguration(
                tls_server_name_indication=server_name,
                tls_opportunistic_encryption=ProtocolWithOpportunisticTlsEnum(starttls) if starttls else None,
                network_timeout=SSLYZE_TIMEOUT, network_max_retries=1)
            request = ServerScanRequest(server_location=location, network_configuration=config,
                                        scan_commands={*commands.values(), ScanCommand.CERTIFICATE_INFO})
        except Exception as exc:  # unresolvable name, bad configuration: a reason, not a crash
            out[index] = {"tls": False, "handshake_error": f"{type(exc).__name__}: {exc}"}
            continue
        requests[request.uuid] = index
        queued.append(request)
    if not requests:
        return out
    scanner = Scanner(per_server_concurrent_connections_limit=8, concurrent_server_scans_limit=max(1, len(jobs)))
    scanner.queue_scans(queued)
    for result in scanner.get_results():
        index = requests[result.uuid]
        if result.scan_status == ServerScanStatusEnum.ERROR_NO_CONNECTIVITY:
            error = result.connectivity_error_trace
            out[index] = {"tls": False, "handshake_error": _short_error(str(error) if error else "no TLS handshake")}
            continue
        scan: dict[str, Any] = {"tls": True, "handshake_error": None, "protocols": {}}
        sr = result.scan_result
        assert sr is not None
        for name in PROTOCOL_NAMES:
            attempt = getattr(sr, commands[name].value)
            if attempt.status == ScanCommandAttemptStatusEnum.COMPLETED and attempt.result is not None:
                suites = [_suite_json(a) for a in attempt.result.accepted_cipher_suites]
                scan["protocols"][name] = {"accepted": bool(suites), "suites": suites}
            else:
                scan["protocols"][name] = {"error": _short_error(str(attempt.error_reason or attempt.error_trace))}
        cert_attempt = sr.certificate_info
        scan.update(chain=[], certificate_error=None, ocsp_stapled=False, must_staple=False)
        if cert_attempt.status == ScanCommandAttemptStatusEnum.COMPLETED and cert_attempt.result is not None:
            deployments = cert_attempt.result.certificate_deployments
            if deployments:
                dep = deployments[0]
                scan["chain"] = [c.public_bytes(Encoding.PEM).decode("ascii") for c in dep.received_certificate_chain]
                scan["ocsp_stapled"] = dep.ocsp_response is not None
                scan["must_staple"] = bool(dep.leaf_certificate_has_must_staple_extension)
                scan["trust"] = _trust(scan["chain"], cas[index])
        else:
            scan["certificate_error"] = _short_error(str(cert_attempt.error_reason or cert_attempt.error_trace))
        out[index] = scan
    return out


def _short_error(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else text)[:300]


# -- endpoints -------------------------------------------------------------------------------------------

def _pre_probe(endpoint: TlsEndpointScope, protocol: str, ca_file: Path | None = None) -> dict[str, Any] | str:
    """TCP reachability, and what the server offers; a str is the unreachable reason.

    PostgreSQL: its answer to the SSLRequest (sslyze scans the TLS after it). MySQL: the whole scan
    (``outsidein.tls.mysql``, sslyze has no MySQL STARTTLS), the chain validated here against ``ca_file``.
    """
    host, port = endpoint.host_port
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        return f"unreachable: {host}:{port}: {reason}"
    pre: dict[str, Any] = {}
    try:
        if protocol not in STARTTLS and protocol != "mysql":
            error = quick_handshake(host, port, endpoint.server_name or host)
            answer = plaintext_probe(host, port, protocol) if error else None
            if answer is not None:
                pre.update(tls=False, plaintext=True, plaintext_answer=answer, handshake_error=error)
        elif protocol == "postgres":
            reply = _postgres_ssl_request(host, port)
            pre["starttls_offered"] = reply == b"S"
            if reply == b"N":
                pre.update(tls=False, plaintext=True, handshake_error="the server refused the SSLRequest",
                           plaintext_answer="N (SSLRequest refused: the server only speaks plaintext)")
        elif protocol == "mysql":
            pre.update(scan_mysql(host, port, endpoint.server_name or host))
            pre.setdefault("tls", False)
            if pre.get("chain"):
                pre["trust"] = _trust(pre["chain"], ca_file)
    except OSError as exc:
        pre["pre_probe_error"] = exc.strerror or str(exc)
    return pre


def collect_tls(endpoints: Sequence[TlsEndpointScope], certificates: Sequence[CertificateFilesScope], *,
                ca_file: Path | None = None) -> list[TlsEvidence]:
    """Scan every endpoint concurrently and read every certificate file; one ``TlsEvidence`` each.

    An endpoint's own ``ca_file`` is trusted for it; ``ca_file`` here (or ``OUTSIDEIN_TLS_CA_FILE``) for the rest.
    """
    if ca_file is None and os.environ.get(CA_FILE_ENV):
        ca_file = Path(os.environ[CA_FILE_ENV])
    protocols = [protocol_for(e) for e in endpoints]
    scans: list[dict[str, Any] | str] = []
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, min(32, len(endpoints)))) as pool:
        scans = list(pool.map(_pre_probe, endpoints, protocols, [e.ca_file or ca_file for e in endpoints]))
    jobs: list[Job] = []
    for index, (endpoint, protocol, pre) in enumerate(zip(endpoints, protocols, scans, strict=True)):
        if isinstance(pre, dict) and "tls" not in pre:
            host, port = endpoint.host_port
            jobs.append((index, host, port, protocol, endpoint.server_name or host, endpoint.ca_file or ca_file))
    results = _sslyze_scan(jobs) if jobs else {}
    fallbacks = [i for i, r in results.items() if not r.get("tls")]
    with ThreadPoolExecutor(max_workers=max(1, min(32, len(fallbacks)))) as pool:
        answers = dict(zip(fallbacks, pool.map(
            lambda i: plaintext_probe(*endpoints[i].host_port, protocols[i]), fallbacks), strict=True))
    elapsed = round(time.monotonic() - started, 3)
    out: list[TlsEvidence] = []
    scanned_at = _now()
    for index, (endpoint, protocol, pre) in enumerate(zip(endpoints, protocols, scans, strict=True)):
        host, port = endpoint.host_port
        name = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        if isinstance(pre, str):
            scan = Record(error=pre)
        else:
            data: dict[str, Any] = {"scanned_at": scanned_at, "host": host, "port": port, "protocol": protocol,
                                    "server_name": endpoint.server_name or host, "tls": False,
                                    "handshake_error": None, "plaintext": False, "plaintext_answer": None,
                                    "starttls_offered": None, "seconds": elapsed}
            data.update(pre)
            data.update(results.get(index, {}))
            if index in answers and answers[index] is not None:
                data.update(plaintext=True, plaintext_answer=answers[index])
            scan = Record(data=data)
        out.append(TlsEvidence(name=name, kind="endpoint", protocol=protocol, server_name=endpoint.server_name,
                               environment=endpoint.environment, external=endpoint.external, scan=scan))
    out.extend(collect_certificate_files(certificates))
    return out


# -- certificate files -----------------------------------------------------------------------------------

def read_certificate_file(path: Path) -> Record:
    """The certificate blocks of one PEM (or DER) file, never its private key; errors are reasons."""
    try:
        if path.stat().st_size > MAX_CERT_FILE_BYTES:
            return Record(error=f"larger than {MAX_CERT_FILE_BYTES} bytes, not read")
        raw = path.read_bytes()
    except FileNotFoundError:
        return Record(error="no such file")
    except PermissionError:
        return Record(error="permission denied")
    except OSError as exc:
        return Record(error=exc.strerror or str(exc))
    blocks = [m.group(0).decode("ascii") for m in PEM_CERT_RE.finditer(raw)]
    if not blocks:
        try:
            blocks = [x509.load_der_x509_certificate(raw).public_bytes(Encoding.PEM).decode("ascii")]
        except ValueError:
            return Record(error="no certificate in the file")
    return Record(data={"pem": "\n".join(blocks) + "\n", "scanned_at": _now()})


def collect_certificate_files(certificates: Sequence[CertificateFilesScope]) -> list[TlsEvidence]:
    out: list[TlsEvidence] = []
    seen: set[str] = set()
    for entry in certificates:
        for pattern in entry.paths:
            paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            if not paths:
                out.append(TlsEvidence(name=pattern, kind="file", environment=entry.environment,
                                       scan=Record(error="no file matches this pattern")))
            for p in paths:
                if p in seen or os.path.isdir(p):
                    continue
                seen.add(p)
                out.append(TlsEvidence(name=p, kind="file", environment=entry.environment,
                                       scan=read_certificate_file(Path(p))))
    return out
