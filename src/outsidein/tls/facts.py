"""Parse TLS evidence into typed facts: certificates, protocols and suites, trust, plaintext answers.

``parse_tls`` never raises: what the scan lacks is a reason in ``TlsFacts.missing`` (``scan`` when the endpoint
was unreachable or the file unreadable, ``tls`` when no TLS handshake completed, ``certificate`` when no chain
was received, ``protocols`` when a protocol scan failed). The audit clock is the scan's ``scanned_at``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from outsidein.evidence import TlsEvidence

LEGACY_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1")


@dataclass(frozen=True)
class Certificate:
    subject: str
    issuer: str
    common_name: str | None
    sans: tuple[str, ...]  # DNS names and IP addresses
    not_before: dt.datetime
    not_after: dt.datetime
    key_type: str  # RSA, EC, Ed25519, Ed448, DSA
    key_size: int
    signature_hash: str | None  # sha256, sha1 …; None for Ed25519/Ed448
    self_signed: bool
    is_ca: bool

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400


@dataclass(frozen=True)
class Suite:
    name: str
    openssl_name: str
    key_size: int
    anonymous: bool


@dataclass
class TlsFacts:
    name: str
    kind: str  # "endpoint" or "file"
    environment: str | None = None
    protocol: str | None = None
    server_name: str | None = None
    external: bool = False
    scanned_at: dt.datetime | None = None
    tls: bool = False
    handshake_error: str | None = None
    plaintext: bool = False
    plaintext_answer: str | None = None
    starttls_offered: bool | None = None
    protocols: dict[str, tuple[Suite, ...]] = field(default_factory=dict)  # accepted protocol -> suites
    chain: tuple[Certificate, ...] = ()
    trusted: bool | None = None
    trust_error: str | None = None
    ocsp_stapled: bool = False
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def leaf(self) -> Certificate | None:
        return self.chain[0] if self.chain else None


def _key(cert: x509.Certificate) -> tuple[str, int]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 448
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__, 0


def parse_certificate(cert: x509.Certificate) -> Certificate:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = tuple([*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(
            x509.IPAddress))])
    except x509.ExtensionNotFound:
        sans = ()
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    self_signed = cert.issuer == cert.subject
    if self_signed:
        try:
            cert.verify_directly_issued_by(cert)
        except (ValueError, TypeError, Exception):
            self_signed = False
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    key_type, key_size = _key(cert)
    hash_alg = cert.signature_hash_algorithm
    return Certificate(
        subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
        common_name=str(cns[0].value) if cns else None, sans=sans, not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc, key_type=key_type, key_size=key_size,
        signature_hash=hash_alg.name if hash_alg else None, self_signed=self_signed, is_ca=is_ca)


def parse_pem_chain(pem: str) -> tuple[Certificate, ...]:
    return tuple(parse_certificate(c) for c in x509.load_pem_x509_certificates(pem.encode()))


def hostname_matches(cert: Certificate, name: str) -> bool:
    """RFC 6125 matching on the subjectAltName (no CN fallback); a wildcard covers exactly one left label."""
    try:
        ip = ipaddress.ip_address(name.strip("[]"))
        return str(ip) in cert.sans
    except ValueError:
        pass
    host = name.lower().rstrip(".")
    for san in cert.sans:
        pattern = san.lower().rstrip(".")
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == pattern[2:]:
                return True
    return False


def _time(text: Any) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def parse_tls(evidence: TlsEvidence) -> TlsFacts:
    facts = TlsFacts(name=evidence.name, kind=evidence.kind, environment=evidence.environment,
                     protocol=evidence.protocol, server_name=evidence.server_name, external=evidence.external)
    try:
        _fill(facts, evidence)
    except Exception as exc:  # malformed evidence is a reason, never a crash
        facts.missing.setdefault("scan", f"the scan evidence is malformed ({type(exc).__name__}: {exc})")
    return facts


def _fill(facts: TlsFacts, evidence: TlsEvidence) -> None:
    rec = evidence.scan
    if not rec.ok or not isinstance(rec.data, dict):
        facts.missing["scan"] = rec.error or "no scan data"
        return
    data = rec.data
    facts.scanned_at = _time(data.get("scanned_at"))
    if facts.scanned_at is None:
        facts.missing["clock"] = "the scan has no scanned_at time"
    if evidence.kind == "file":
        try:
            facts.chain = parse_pem_chain(str(data.get("pem", "")))
        except ValueError as exc:
            facts.missing["certificate"] = f"unparsable certificate: {exc}"
        if not facts.chain:
            facts.missing.setdefault("certificate", "no certificate in the file")
        return
    facts.server_name = str(data.get("server_name") or evidence.server_name or data.get("host") or "")
    facts.tls = bool(data.get("tls"))
    facts.handshake_error = data.get("handshake_error")
    facts.plaintext = bool(data.get("plaintext"))
    facts.plaintext_answer = data.get("plaintext_answer")
    facts.starttls_offered = data.get("starttls_offered")
    if not facts.tls:
        facts.missing["tls"] = (f"no TLS handshake ({facts.handshake_error})" if facts.handshake_error
                                else "no TLS handshake")
        facts.missing["certificate"] = facts.missing["tls"]
        return
    errors = []
    for name, result in (data.get("protocols") or {}).items():
        if "error" in result:
            errors.append(f"{name}: {result['error']}")
        elif result.get("accepted"):
            facts.protocols[name] = tuple(Suite(s["name"], s.get("openssl_name", ""), int(s.get("key_size", 0)),
                                                bool(s.get("anonymous"))) for s in result.get("suites", []))
    if errors or not data.get("protocols"):
        facts.missing["protocols"] = "protocol scan failed: " + ("; ".join(errors) or "no result")
    chain = data.get("chain") or []
    try:
        facts.chain = parse_pem_chain("".join(chain)) if chain else ()
    except ValueError as exc:
        facts.missing["certificate"] = f"unparsable certificate: {exc}"
    if not facts.chain:
        facts.missing.setdefault("certificate", data.get("certificate_error") or "no certificate received")
    trust = data.get("trust")
    if isinstance(trust, dict):
        facts.trusted = bool(trust.get("trusted"))
        facts.trust_error = trust.get("error")
    else:
        facts.missing["trust"] = "the chain was not validated"
    facts.ocsp_stapled = bool(data.get("ocsp_stapled"))
