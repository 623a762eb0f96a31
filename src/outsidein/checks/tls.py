"""Layer 4: TLS certificates and protocols on every hop, external and internal, and certificate files on disk.

Every check reads a parsed ``TlsFacts`` (``outsidein.tls.facts``); the resource is the endpoint ``host:port`` or
the certificate file's path. The audit clock is the scan's ``scanned_at``, so a snapshot re-evaluates the same.

Severities: expired CRITICAL; expiry within 30/14/7 days MEDIUM/HIGH/CRITICAL (the playbook's three alerts,
escalating to the 24-hour SLA in the last week); plaintext where TLS is required as the playbook's per-service
table says (application, PostgreSQL, Redis CRITICAL; RabbitMQ, Grafana, SonarQube and others HIGH). Not in the
playbook's tables: SSLv2/SSLv3 and NULL/EXPORT/anonymous suites CRITICAL (no real protection), TLS 1.0/1.1,
RC4/3DES, untrusted chain, hostname mismatch, self-signed on an external endpoint, RSA under 2048 bits and SHA-1
signatures HIGH (the playbook's minimum is TLS 1.2); an untrusted chain on an internal endpoint MEDIUM (give
the internal CA as the trust store); no OCSP stapling on an external endpoint LOW (as in the NGINX layer).
"""

from __future__ import annotations

from collections.abc import Iterator

from outsidein.checks.registry import TLS, target_check
from outsidein.models import Result, Severity, fail, not_assessed, passed
from outsidein.tls.facts import LEGACY_PROTOCOLS, Certificate, TlsFacts, hostname_matches

CERT = ("scan", "clock", "certificate")
ENDPOINT_CERT = ("scan", "clock", "tls", "certificate")
PROTOCOLS = ("scan", "tls", "protocols")
EXPIRY_BANDS = ((7, Severity.CRITICAL), (14, Severity.HIGH), (30, Severity.MEDIUM))
PROTOCOL_SEVERITY = {"SSLv2": Severity.CRITICAL, "SSLv3": Severity.CRITICAL, "TLSv1.0": Severity.HIGH,
                     "TLSv1.1": Severity.HIGH}
PLAINTEXT_SEVERITY = {"https": Severity.CRITICAL, "app": Severity.CRITICAL, "postgres": Severity.CRITICAL,
                      "redis": Severity.CRITICAL, "amqps": Severity.HIGH, "amqp": Severity.HIGH,
                      "grafana": Severity.HIGH, "sonarqube": Severity.HIGH}
MIN_RSA_BITS = 2048
MIN_EC_BITS = 224
S_CLIENT = "openssl s_client -connect {resource} -servername <name> </dev/null 2>/dev/null"
OPENSSL_STARTTLS = {"postgres", "smtp", "imap", "ldap", "pop3", "ftp", "xmpp", "mysql"}  # s_client -starttls


def _s_client(t: TlsFacts, flags: str = "") -> str:
    """The s_client command that shows what this endpoint serves, STARTTLS included."""
    sni = t.server_name or t.name.rsplit(":", 1)[0].strip("[]")
    starttls = f" -starttls {t.protocol}" if t.protocol in OPENSSL_STARTTLS else ""
    return f"openssl s_client -connect {t.name} -servername {sni}{starttls}{flags} </dev/null 2>/dev/null"


def _x509(t: TlsFacts, args: str) -> str:
    """``openssl x509 <args>`` on the served leaf, or on the certificate file."""
    if _endpoint(t):
        return f"{_s_client(t)} | openssl x509 -noout {args}"
    return f"openssl x509 -noout {args} -in {t.name}"


def _who(cert: Certificate) -> str:
    return f"CN={cert.common_name}" if cert.common_name else cert.subject or "(no subject)"


def _endpoint(t: TlsFacts) -> bool:
    return t.kind == "endpoint"


def _weak_suite(name: str) -> tuple[str, Severity] | None:
    upper = name.upper()
    if "_NULL_" in upper or upper.endswith("_NULL") or "WITH_NULL" in upper:
        return "NULL cipher", Severity.CRITICAL
    if "EXPORT" in upper:
        return "EXPORT cipher", Severity.CRITICAL
    if "_ANON_" in upper:
        return "anonymous key exchange", Severity.CRITICAL
    if "RC4" in upper:
        return "RC4", Severity.HIGH
    if "3DES" in upper or "DES_CBC" in upper or "_DES_" in upper or "DES40" in upper:
        return "3DES/DES", Severity.HIGH
    return None


# -- expiry (endpoints and files) -------------------------------------------------------------------------

@target_check(source=TLS, id="tls-cert-expired", layer=4, title="Certificate is expired", severity=Severity.CRITICAL,
              remediation="Renew the certificate and reload the service; automate renewal (ACME) and alert at "
                          "30, 14 and 7 days.",
              verify=f"{S_CLIENT} | openssl x509 -noout -enddate   # or: openssl x509 -noout -enddate -in <file>",
              requires=CERT)
def cert_expired(t: TlsFacts) -> Iterator[Result]:
    assert t.scanned_at is not None
    failed = False
    for index, cert in enumerate(t.chain):
        if cert.not_after <= t.scanned_at:
            where = "leaf certificate" if index == 0 else f"chain certificate #{index + 1}"
            failed = True
            yield fail("tls-cert-expired", t.name, f"{where} {_who(cert)} expired on {cert.not_after:%Y-%m-%d}",
                       environment=t.environment,
                       verify=_x509(t, "-enddate"))
    if not failed:
        yield passed("tls-cert-expired", t.name, environment=t.environment)


@target_check(source=TLS, id="tls-cert-expiring", layer=4, title="Certificate expires within 30 days",
              severity=Severity.HIGH,
              remediation="Renew now; test the renewal path (a broken ACME DNS-01 challenge fails silently).",
              verify=f"{S_CLIENT} | openssl x509 -noout -checkend 2592000", requires=CERT)
def cert_expiring(t: TlsFacts) -> Iterator[Result]:
    assert t.scanned_at is not None
    failed = False
    for index, cert in enumerate(t.chain):
        days = cert.days_left(t.scanned_at)
        if days <= 0:
            continue  # tls-cert-expired
        for limit, severity in EXPIRY_BANDS:
            if days <= limit:
                where = "leaf certificate" if index == 0 else f"chain certificate #{index + 1}"
                failed = True
                yield fail("tls-cert-expiring", t.name,
                           f"{where} {_who(cert)} expires on {cert.not_after:%Y-%m-%d} (within {limit} days)",
                           environment=t.environment,
                           verify=_x509(t, "-checkend 2592000"), severity=severity)
                break
    if not failed:
        yield passed("tls-cert-expiring", t.name, environment=t.environment)


# -- chain and identity ----------------------------------------------------------------------------------

@target_check(source=TLS, id="tls-chain-untrusted", layer=4, title="Certificate chain is not trusted",
              severity=Severity.HIGH,
              remediation="Serve the full chain (leaf and intermediates) from a CA the clients trust; for internal "
                          "services, issue from the internal CA and give it to the audit as the trust store.",
              verify=f"{S_CLIENT} -verify_return_error -CAfile <ca.pem>",
              requires=("scan", "tls", "certificate", "trust"))
def chain_untrusted(t: TlsFacts) -> Iterator[Result]:
    if not _endpoint(t):
        return
    if t.trusted:
        yield passed("tls-chain-untrusted", t.name, environment=t.environment)
        return
    leaf = t.chain[0]
    why = "self-signed" if leaf.self_signed else (t.trust_error or "no path to a trusted root")
    yield fail("tls-chain-untrusted", t.name, f"{_who(leaf)} issued by {leaf.issuer}: {why}",
               environment=t.environment, verify=_s_client(t, " -verify_return_error -CAfile <ca.pem>"),
               severity=Severity.HIGH if t.external else Severity.MEDIUM)


@target_check(source=TLS, id="tls-hostname-mismatch", layer=4, title="Certificate does not match the server name",
              severity=Severity.HIGH,
              remediation="Issue a certificate whose subjectAltName covers the name clients connect to.",
              verify=f"{S_CLIENT} -verify_hostname <name> -verify_return_error",
              requires=("scan", "tls", "certificate"))
def hostname_mismatch(t: TlsFacts) -> Iterator[Result]:
    if not _endpoint(t):
        return
    leaf = t.chain[0]
    name = t.server_name or t.name.rsplit(":", 1)[0]
    if hostname_matches(leaf, name):
        yield passed("tls-hostname-mismatch", t.name, environment=t.environment)
    else:
        sans = ", ".join(leaf.sans) or "no subjectAltName"
        yield fail("tls-hostname-mismatch", t.name, f"{name} is not in the certificate's names ({sans})",
                   environment=t.environment,
                   verify=f"{_s_client(t)} | openssl x509 -noout -checkhost {name}")


@target_check(source=TLS, id="tls-self-signed-external", layer=4, title="Self-signed certificate on an external "
              "endpoint", severity=Severity.HIGH,
              remediation="Serve a certificate from a public CA (e.g. Let's Encrypt) on every internet-facing "
                          "endpoint.",
              verify=f"{S_CLIENT} | openssl x509 -noout -issuer -subject", requires=("scan", "tls", "certificate"))
def self_signed_external(t: TlsFacts) -> Iterator[Result]:
    if not _endpoint(t):
        return
    leaf = t.chain[0]
    if t.external and leaf.self_signed:
        yield fail("tls-self-signed-external", t.name, f"{_who(leaf)} is self-signed", environment=t.environment,
                   verify=_x509(t, "-issuer -subject"))
    else:
        yield passed("tls-self-signed-external", t.name, environment=t.environment)


# -- protocols and suites --------------------------------------------------------------------------------

@target_check(source=TLS, id="tls-legacy-protocol", layer=4, title="SSLv2, SSLv3, TLS 1.0 or TLS 1.1 accepted",
              severity=Severity.HIGH,
              remediation="Accept TLS 1.2 and 1.3 only (nginx: ssl_protocols TLSv1.2 TLSv1.3;).",
              verify="sslyze --sslv2 --sslv3 --tlsv1 --tlsv1_1 {resource}", requires=PROTOCOLS)
def legacy_protocol(t: TlsFacts) -> Iterator[Result]:
    if not _endpoint(t):
        return
    found = [p for p in LEGACY_PROTOCOLS if p in t.protocols]
    for proto in found:
        yield fail("tls-legacy-protocol", t.name, f"{proto} accepted ({len(t.protocols[proto])} suites)",
                   environment=t.environment, severity=PROTOCOL_SEVERITY[proto])
    if not found:
        yield passed("tls-legacy-protocol", t.name, environment=t.environment)


@target_check(source=TLS, id="tls-weak-cipher", layer=4, title="Weak cipher suites accepted (RC4, 3DES, NULL, "
              "EXPORT, anonymous)", severity=Severity.HIGH,
              remediation="Accept AEAD suites with forward secrecy only, e.g. ssl_ciphers "
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384;",
              verify="nmap --script ssl-enum-ciphers -p {port} {host}", requires=PROTOCOLS)
def weak_cipher(t: TlsFacts) -> Iterator[Result]:
    if not _endpoint(t):
        return
    weak: dict[str, tuple[Severity, list[str]]] = {}
    for suites in t.protocols.values():
        for suite in suites:
            hit = _weak_suite(suite.name) or (("anonymous key exchange", Severity.CRITICAL) if suite.anonymous
                                              else None)
            if hit:
                kind, severity = hit
                entry = weak.setdefault(kind, (severity, []))
                if suite.name not in entry[1]:
                    entry[1].append(suite.name)
    for kind, (severity, names) in sorted(weak.items()):
        yield fail("tls-weak-cipher", t.name, f"{kind}: {', '.join(sorted(names))}", environment=t.environment,
                   severity=severity)
    if not weak:
        yield passed("tls-weak-cipher", t.name, environment=t.environment)


# -- keys and signatures ---------------------------------------------------------------------------------

@target_check(source=TLS, id="tls-weak-key", layer=4, title="Certificate key under 2048-bit RSA",
              severity=Severity.HIGH, remediation="Reissue with RSA 2048+ or ECDSA P-256.",
              verify=f"{S_CLIENT} | openssl x509 -noout -text | grep 'Public-Key'", requires=CERT)
def weak_key(t: TlsFacts) -> Iterator[Result]:
    failed = False
    for index, cert in enumerate(t.chain):
        small = (cert.key_type in ("RSA", "DSA") and cert.key_size < MIN_RSA_BITS) or (
            cert.key_type == "EC" and cert.key_size < MIN_EC_BITS)
        if small:
            failed = True
            where = "leaf" if index == 0 else f"chain certificate #{index + 1}"
            yield fail("tls-weak-key", t.name, f"{where} {_who(cert)} has a {cert.key_size}-bit {cert.key_type} key",
                       environment=t.environment,
                       verify=_x509(t, "-text | grep 'Public-Key'"))
    if not failed:
        yield passed("tls-weak-key", t.name, environment=t.environment)


@target_check(source=TLS, id="tls-sha1-signature", layer=4, title="Certificate signed with SHA-1 (or MD5)",
              severity=Severity.HIGH, remediation="Reissue the certificate (and any intermediate) signed with SHA-256.",
              verify=f"{S_CLIENT} | openssl x509 -noout -text | grep 'Signature Algorithm'", requires=CERT)
def sha1_signature(t: TlsFacts) -> Iterator[Result]:
    failed = False
    for index, cert in enumerate(t.chain):
        if cert.self_signed and index > 0:
            continue  # a root's own signature is not checked by clients
        if cert.signature_hash in ("sha1", "md5"):
            failed = True
            where = "leaf" if index == 0 else f"chain certificate #{index + 1}"
            yield fail("tls-sha1-signature", t.name, f"{where} {_who(cert)} is signed with {cert.signature_hash}",
                       environment=t.environment,
                       verify=_x509(t, "-text | grep 'Signature Algorithm'"))
    if not failed:
        yield passed("tls-sha1-signature", t.name, environment=t.environment)


@target_check(source=TLS, id="tls-ocsp-stapling", layer=4, title="No OCSP stapling on an external endpoint",
              severity=Severity.LOW, remediation="Enable stapling (nginx: ssl_stapling on; ssl_stapling_verify on;).",
              verify=f"{S_CLIENT} -status | grep -A2 'OCSP Response Status'", requires=("scan", "tls", "certificate"))
def ocsp_stapling(t: TlsFacts) -> Iterator[Result]:
    if not _endpoint(t):
        return
    if t.external and not t.ocsp_stapled:
        yield fail("tls-ocsp-stapling", t.name, "no OCSP response stapled to the handshake", environment=t.environment,
                   verify=_s_client(t, " -status") + " | grep -A2 'OCSP Response Status'")
    else:
        yield passed("tls-ocsp-stapling", t.name, environment=t.environment)


# -- plaintext where TLS is required ---------------------------------------------------------------------

@target_check(source=TLS, id="tls-plaintext-service", layer=4, title="Service answers in plaintext where TLS is "
              "required", severity=Severity.CRITICAL,
              remediation="Enable TLS on the service (PostgreSQL ssl=on with hostssl rules, Redis tls-port with "
                          "port 0, RabbitMQ AMQPS, HTTPS for Grafana/SonarQube) and close the plaintext listener.",
              verify=f"{S_CLIENT}   # expect a certificate; for PostgreSQL add -starttls postgres",
              requires=("scan",))
def plaintext_service(t: TlsFacts) -> Iterator[Result]:
    if not _endpoint(t):
        return
    if t.tls:
        yield passed("tls-plaintext-service", t.name, environment=t.environment)
    elif t.plaintext:
        proto = t.protocol or "tls"
        severity = PLAINTEXT_SEVERITY.get(proto, Severity.HIGH)
        yield fail("tls-plaintext-service", t.name, f"{proto} answered without TLS: {t.plaintext_answer}",
                   environment=t.environment,
                   verify=_s_client(t) + "  # expect a certificate chain", severity=severity)
    elif t.starttls_offered:  # TLS offered (MySQL CLIENT_SSL, PostgreSQL S), yet no handshake completed
        yield not_assessed("tls-plaintext-service", t.name,
                           f"TLS is offered but no handshake completed: {t.handshake_error or 'unknown error'}")
    else:
        yield not_assessed("tls-plaintext-service", t.name, t.missing.get("tls", "no TLS handshake"))
