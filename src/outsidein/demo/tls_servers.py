"""The demo's layer-4 targets: two TLS endpoints on loopback and two certificate files, made at start-up.

Certificates are issued when the demo starts, so their expiry is always relative to today:

- ``grafana`` (external): a self-signed certificate that expires in 12 days, served with TLS 1.0 and 1.1
  still enabled, and no OCSP stapling: the playbook's classic admin-console mistakes.
- ``api`` (internal): its hardened twin, issued by the demo's private CA (given as ``ca_file``), TLS 1.2
  and 1.3 only, valid for 300 days: it must stay silent.
- ``certs/shop-edge.pem``: the next certificate for the edge, not served yet, expiring in 5 days;
  ``certs/api-next.pem`` is its valid twin.

The servers listen on 127.0.0.1 only (ports 3000 and 8443 when free, so findings keep their fingerprints
from one demo run to the next) and stop when the block exits. The files live in a fixed folder under the
temporary directory for the same reason; they are rewritten at every run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import socketserver
import ssl
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from outsidein.scope import CertificateFilesScope, TlsEndpointScope

HANDSHAKE_TIMEOUT = 5.0


@dataclass(frozen=True)
class DemoTls:
    endpoints: tuple[TlsEndpointScope, ...]
    certificates: tuple[CertificateFilesScope, ...]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


class _Ca:
    """The demo's private CA: issues leaves, or self-signs them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(_name("Shop internal CA")).issuer_name(
            _name("Shop internal CA")).public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256()))
        self.ca_file = folder / "shop-internal-ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, stem: str, host: str, days: int, *, self_signed: bool = False) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        issuer = _name(host) if self_signed else self.cert.subject
        builder = (x509.CertificateBuilder().subject_name(_name(host)).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(days=60)).not_valid_after(now + dt.timedelta(days=days))
                   .add_extension(x509.SubjectAlternativeName(
                       [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        if not self_signed:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        cert = builder.sign(key if self_signed else self.key, hashes.SHA256())
        cert_path, key_path = self.folder / f"{stem}.pem", self.folder / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        return cert_path, key_path


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        context: ssl.SSLContext = self.server.context  # type: ignore[attr-defined]
        self.request.settimeout(HANDSHAKE_TIMEOUT)
        with contextlib.suppress(OSError, ssl.SSLError), context.wrap_socket(self.request, server_side=True) as tls:
            tls.recv(1024)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


class _TlsServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, context: ssl.SSLContext, port: int) -> None:
        self.context = context
        try:
            super().__init__(("127.0.0.1", port), _Handler)
        except OSError:  # the preferred port is taken: any free one
            super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def _context(cert: Path, key: Path, *, legacy: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if legacy:  # what an old admin console still accepts; OpenSSL 3 needs security level 0 for it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1
        context.set_ciphers("ALL:@SECLEVEL=0")
    else:
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@contextlib.contextmanager
def demo_tls() -> Iterator[DemoTls]:
    """Write the demo's certificates and serve its TLS endpoints until the block exits."""
    folder = Path(tempfile.gettempdir()) / f"outsidein-demo-{os.getuid()}" / "certs"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    ca = _Ca(folder)
    grafana = _TlsServer(_context(*ca.issue("grafana", "grafana.shop.example", 12, self_signed=True), legacy=True),
                         3000)
    api = _TlsServer(_context(*ca.issue("api", "api.shop.internal", 300), legacy=False), 8443)
    ca.issue("shop-edge", "www.shop.example", 5)
    ca.issue("api-next", "api.shop.internal", 400)
    for server in (grafana, api):
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        yield DemoTls(
            endpoints=(
                TlsEndpointScope(f"127.0.0.1:{grafana.port}", protocol="grafana", server_name="grafana.shop.example",
                                 environment="prod", external=True),
                TlsEndpointScope(f"127.0.0.1:{api.port}", protocol="https", server_name="api.shop.internal",
                                 environment="prod", ca_file=ca.ca_file),
            ),
            certificates=(CertificateFilesScope(paths=(str(folder / "shop-edge.pem"), str(folder / "api-next.pem")),
                                                environment="prod"),),
        )
    finally:
        for server in (grafana, api):
            server.shutdown()
            server.server_close()
