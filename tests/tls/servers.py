"""Real TLS servers on free loopback ports for layer 4 tests and the benchmark.

A test CA signs the certificates (made here with cryptography); NGINX serves one certificate per port,
PostgreSQL runs two throwaway clusters (``ssl=on`` and off) as the ``postgres`` OS user, Redis listens on a
plaintext and a TLS port. Debian's OpenSSL 3 refuses TLS 1.0/1.1, SHA-1 and 1024-bit RSA at its default
security level 2: the ``legacy`` NGINX server sets ``ssl_ciphers ALL:@SECLEVEL=0`` to serve them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"{what} exited: {err[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


def stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _pem_key(key: Key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class Pki:
    """A test CA in ``folder`` and the leaf certificates it issues (``cert``/``key`` files per name)."""

    folder: Path
    ca_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    ca: x509.Certificate | None = None

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "outsidein test CA")])
        pub = self.ca_key.public_key()
        self.ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(pub)
                   .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=30))
                   .not_valid_after(NOW + dt.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                  critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
                   .sign(self.ca_key, hashes.SHA256()))
        self.ca_file.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    def issue(self, name: str, *, days: float = 365, names: tuple[str, ...] = ("localhost",),
              self_signed: bool = False, rsa_bits: int | None = None, sha1: bool = False,
              with_key: bool = False) -> tuple[Path, Path]:
        """A leaf for ``names`` (and 127.0.0.1) valid until now + ``days`` (negative: expired)."""
        assert self.ca is not None
        key: Key = rsa.generate_private_key(65537, rsa_bits) if rsa_bits else ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        not_after = NOW + dt.timedelta(days=days)
        not_before = min(NOW - dt.timedelta(days=1), not_after - dt.timedelta(days=90))
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        sans.append(x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")))
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(subject if self_signed else self.ca.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(not_before)
                   .not_valid_after(not_after)
                   .add_extension(x509.SubjectAlternativeName(sans), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if not self_signed:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()), critical=False)
        signer: Key = key if self_signed else self.ca_key
        cert = builder.sign(signer, hashes.SHA256())
        cert_path, key_path = self.folder / f"{name}.crt", self.folder / f"{name}.key"
        if sha1:  # cryptography no longer signs with SHA-1: re-sign the same certificate with openssl
            cert = self._resign_sha1(cert, key, name)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + (_pem_key(key) if with_key else b""))
        key_path.write_bytes(_pem_key(key))
        os.chmod(key_path, 0o644)  # the postgres and redis test users read it (a throwaway key)
        return cert_path, key_path

    def _resign_sha1(self, cert: x509.Certificate, key: Key, name: str) -> x509.Certificate:
        """The same subject, key and names, issued by the CA with a SHA-1 signature (``openssl x509 -req``)."""
        ca_key = self.folder / "ca.key"
        ca_key.write_bytes(_pem_key(self.ca_key))
        csr = x509.CertificateSigningRequestBuilder().subject_name(cert.subject).sign(key, hashes.SHA256())
        csr_path, ext, out = (self.folder / f"{name}.{suffix}" for suffix in ("csr", "ext", "sha1.pem"))
        csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
        ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                       "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        subprocess.run(["openssl", "x509", "-req", "-in", str(csr_path), "-CA", str(self.ca_file), "-CAkey",
                        str(ca_key), "-sha1", "-extfile", str(ext), "-out", str(out), "-days", "365",
                        "-set_serial", "4242"], check=True, capture_output=True)
        ca_key.unlink()
        return x509.load_pem_x509_certificate(out.read_bytes())

    def ocsp_response(self, cert_path: Path) -> Path:
        """A good OCSP response for the leaf, signed by the CA, for nginx's ``ssl_stapling_file``."""
        assert self.ca is not None
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        response = (ocsp.OCSPResponseBuilder()
                    .add_response(cert=cert, issuer=self.ca, algorithm=hashes.SHA1(),
                                  cert_status=ocsp.OCSPCertStatus.GOOD,
                                  this_update=NOW - dt.timedelta(hours=1), next_update=NOW + dt.timedelta(days=7),
                                  revocation_time=None, revocation_reason=None)
                    .responder_id(ocsp.OCSPResponderEncoding.HASH, self.ca)
                    .sign(self.ca_key, hashes.SHA256()))
        path = cert_path.with_suffix(".ocsp")
        path.write_bytes(response.public_bytes(serialization.Encoding.DER))
        return path


NGINX_VARIANTS = ("valid", "expiring", "expired", "selfsigned", "legacy")


class NginxTls:
    """One nginx serving each variant on its own port: valid (stapled), expiring in 10 days, expired,
    self-signed, and legacy (TLS 1.0/1.1, RSA-1024, SHA-1, every suite at @SECLEVEL=0)."""

    def __init__(self, pki: Pki, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.ports = {v: free_port() for v in NGINX_VARIANTS}
        certs = {
            "valid": pki.issue("valid"), "expiring": pki.issue("expiring", days=10),
            "expired": pki.issue("expired", days=-5), "selfsigned": pki.issue("selfsigned", self_signed=True),
            "legacy": pki.issue("legacy", rsa_bits=1024, sha1=True),
        }
        servers = []
        for variant, (cert, key) in certs.items():
            extra = ""
            if variant == "valid":
                extra = (f"ssl_stapling on; ssl_stapling_file {pki.ocsp_response(cert)};"
                         f" ssl_protocols TLSv1.2 TLSv1.3;")
            elif variant == "legacy":
                extra = "ssl_protocols TLSv1 TLSv1.1 TLSv1.2; ssl_ciphers ALL:@SECLEVEL=0;"
            servers.append(f"server {{ listen 127.0.0.1:{self.ports[variant]} ssl; server_name localhost;"
                           f" ssl_certificate {cert}; ssl_certificate_key {key}; {extra}"
                           f" location / {{ return 200 'ok'; }} }}")
        conf = folder / "nginx.conf"
        conf.write_text(f"pid {folder}/nginx.pid; error_log {folder}/error.log; worker_processes 1;"
                        f" events {{ worker_connections 256; }} http {{ access_log off;"
                        f" client_body_temp_path {folder}; proxy_temp_path {folder}; fastcgi_temp_path {folder};"
                        f" uwsgi_temp_path {folder}; scgi_temp_path {folder};\n" + "\n".join(servers) + "\n}\n")
        self.conf = conf
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-c", str(self.conf), "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for port in self.ports.values():
            wait_port(port, self.proc, "nginx")

    def stop(self) -> None:
        stop(self.proc, signal.SIGQUIT)


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    return Path(found[-1]).parent


class Postgres:
    """A throwaway cluster run as the ``postgres`` OS user; ``ssl`` on (with a CA-signed cert) or off."""

    template: Path | None = None

    def __init__(self, cert: tuple[Path, Path] | None) -> None:
        # its own folder under /tmp: pytest's tmp folders are private to root, postgres could not enter them
        self.folder, self.cert = Path(tempfile.mkdtemp(prefix="outsidein-pg-")), cert
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        bin_dir = _pg_bin()
        data = self.folder / "data"
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.folder, "postgres", "postgres")
        os.chmod(self.folder, 0o755)
        subprocess.run(["runuser", "-u", "postgres", "--", str(bin_dir / "initdb"), "-D", str(data), "-A", "trust",
                        "-U", "postgres", "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
        options = ["-c", f"port={self.port}", "-c", "listen_addresses=127.0.0.1",
                   "-c", f"unix_socket_directories={self.folder}", "-c", "fsync=off"]
        if self.cert:
            cert, key = self.cert
            for src, dest in ((cert, "server.crt"), (key, "server.key")):
                shutil.copy(src, data / dest)
                shutil.chown(data / dest, "postgres", "postgres")
                os.chmod(data / dest, 0o600)
            options += ["-c", "ssl=on", "-c", "ssl_cert_file=server.crt", "-c", "ssl_key_file=server.key"]
        else:
            options += ["-c", "ssl=off"]
        self.proc = subprocess.Popen(["runuser", "-u", "postgres", "--", str(bin_dir / "postgres"), "-D", str(data),
                                      *options], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_port(self.port, self.proc, "postgres", timeout=30)

    def stop(self) -> None:
        # signal the postmaster itself (runuser does not always pass a signal on), then reap runuser
        pid_file = self.folder / "data" / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
        stop(self.proc, signal.SIGINT)
        shutil.rmtree(self.folder, ignore_errors=True)


class Redis:
    """redis-server with a plaintext ``port`` and a ``tls_port`` (CA-signed certificate)."""

    def __init__(self, folder: Path, cert: tuple[Path, Path], ca_file: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port, self.tls_port = free_port(), free_port()
        self.args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--tls-port",
                     str(self.tls_port), "--tls-cert-file", str(cert[0]), "--tls-key-file", str(cert[1]),
                     "--tls-ca-cert-file", str(ca_file), "--tls-auth-clients", "no", "--save", "",
                     "--appendonly", "no", "--dir", str(folder)]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_port(self.port, self.proc, "redis")
        wait_port(self.tls_port, self.proc, "redis")

    def stop(self) -> None:
        stop(self.proc)
