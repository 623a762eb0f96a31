"""Real servers for the tests and benchmarks: a test CA, NGINX, PostgreSQL, Redis, and tcpdump on ``lo``.

Each server is a context manager: it lives in a folder of its own, listens on a free loopback port (or where
asked), logs to a file whose tail is raised if it dies at start-up, and is stopped when the block exits.
PostgreSQL runs as the ``postgres`` OS user with ``runuser`` (the tests run as root). A missing binary fails
the test (scripts/system-deps installs them). Debian's OpenSSL 3 refuses TLS 1.0/1.1, SHA-1 and 1024-bit RSA
at its default security level 2: the ``legacy`` NGINX server sets ``ssl_ciphers ALL:@SECLEVEL=0`` to serve them.

    pki = Pki(tmp / "pki")
    with postgres_server(tmp, ssl=True, certs=pki.issue("pg")) as pg:
        pg.psql("SELECT 1", sslmode="require")
    with redis_server(tmp, tls=True, certs=pki.issue("redis")) as rd:
        rd.cli("PING", tls=True)
    with nginx_tls(pki, tmp / "nginx") as web:
        port = web.ports["expired"]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PASSWORD = "S3cretPassw0rd-xyzzy"  # what crosses the wire in plaintext tests; must never show up unmasked
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def which(binary: str) -> str:
    """The binary's path (``/usr/sbin`` and ``/sbin`` count even when not on PATH); skips the test if missing."""
    found = shutil.which(binary, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        pytest.fail(f"{binary} is not installed: run scripts/system-deps", pytrace=False)
    return found


def need(*binaries: str) -> None:
    for binary in binaries:
        which(binary)


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def _died(proc: subprocess.Popen[bytes], log: Path | None) -> RuntimeError:
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    return RuntimeError(f"{log.stem if log else 'server'} exited with {proc.returncode} at start-up: {tail}")


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None,
              log: Path | None = None) -> None:
    """Wait until ``host:port`` accepts a connection; raise with ``log``'s tail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise _died(proc, log)
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc is not None and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ------------------------------------------------------------------------------------------------ certificates


def _pem_key(key: Key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(frozen=True)
class Certs:
    """A leaf certificate, its key and the CA file that trusts it (the leaf itself when self-signed)."""

    ca: Path
    cert: Path
    key: Path


@dataclass
class Pki:
    """A test CA in ``folder`` (``ca.pem``) and the leaf certificates it issues (``{name}.crt``/``.key``)."""

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
              with_key: bool = False) -> Certs:
        """A leaf for ``names`` and 127.0.0.1 valid until now + ``days`` (negative: expired); ``rsa_bits``: an
        RSA key instead of P-256; ``sha1``: signed with SHA-1; ``with_key``: the key appended to the cert file."""
        assert self.ca is not None
        key: Key = rsa.generate_private_key(65537, rsa_bits) if rsa_bits else ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        not_after = NOW + dt.timedelta(days=days)
        not_before = min(NOW - dt.timedelta(days=1), not_after - dt.timedelta(days=90))
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
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
        return Certs(ca=cert_path if self_signed else self.ca_file, cert=cert_path, key=key_path)

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


# ------------------------------------------------------------------------------------------------ NGINX

NGINX_VARIANTS = ("valid", "expiring", "expired", "selfsigned", "legacy")


@dataclass
class NginxTls:
    """One nginx serving each of ``NGINX_VARIANTS`` on its own port (``ports[variant]``)."""

    ports: dict[str, int]
    conf: Path


@contextlib.contextmanager
def nginx_tls(pki: Pki, folder: Path) -> Iterator[NginxTls]:
    """valid (stapled, TLS 1.2/1.3), expiring in 10 days, expired, self-signed, and legacy (TLS 1.0/1.1,
    RSA-1024, SHA-1, every suite at @SECLEVEL=0), all issued by ``pki``."""
    nginx = which("nginx")
    folder.mkdir(parents=True, exist_ok=True)
    ports = {v: free_port() for v in NGINX_VARIANTS}
    certs = {
        "valid": pki.issue("valid"), "expiring": pki.issue("expiring", days=10),
        "expired": pki.issue("expired", days=-5), "selfsigned": pki.issue("selfsigned", self_signed=True),
        "legacy": pki.issue("legacy", rsa_bits=1024, sha1=True),
    }
    servers = []
    for variant, leaf in certs.items():
        extra = ""
        if variant == "valid":
            extra = (f"ssl_stapling on; ssl_stapling_file {pki.ocsp_response(leaf.cert)};"
                     " ssl_protocols TLSv1.2 TLSv1.3;")
        elif variant == "legacy":
            extra = "ssl_protocols TLSv1 TLSv1.1 TLSv1.2; ssl_ciphers ALL:@SECLEVEL=0;"
        servers.append(f"server {{ listen 127.0.0.1:{ports[variant]} ssl; server_name localhost;"
                       f" ssl_certificate {leaf.cert}; ssl_certificate_key {leaf.key}; {extra}"
                       f" location / {{ return 200 'ok'; }} }}")
    conf = folder / "nginx.conf"
    conf.write_text(f"pid {folder}/nginx.pid; error_log {folder}/error.log; worker_processes 1;"
                    f" events {{ worker_connections 256; }} http {{ access_log off;"
                    f" client_body_temp_path {folder}; proxy_temp_path {folder}; fastcgi_temp_path {folder};"
                    f" uwsgi_temp_path {folder}; scgi_temp_path {folder};\n" + "\n".join(servers) + "\n}\n")
    log = folder / "nginx.log"
    proc = _spawn([nginx, "-c", str(conf), "-g", "daemon off;"], log)
    try:
        for port in ports.values():
            wait_port(port, proc=proc, log=log)
        yield NginxTls(ports=ports, conf=conf)
    finally:
        stop(proc, signal.SIGQUIT)


# ------------------------------------------------------------------------------------------------ PostgreSQL


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail(f"PostgreSQL's {name} is not installed: run scripts/system-deps", pytrace=False)
    return found[-1]


@dataclass
class Postgres:
    """A running cluster: role ``app`` (password ``PASSWORD``) owns database ``appdb``."""

    port: int
    host: str  # the address it listens on
    socket_dir: Path
    data: Path
    ssl: bool
    auth: str
    certs: Certs | None
    user: str = "app"
    database: str = "appdb"
    password: str = PASSWORD
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def dsn(self, sslmode: str = "disable", password: bool = True) -> str:
        parts = f"host=127.0.0.1 port={self.port} user={self.user} dbname={self.database} sslmode={sslmode}"
        return parts + (f" password={self.password}" if password else "")

    def psql(self, sql: str, sslmode: str = "disable", timeout: float = 20.0,
             ) -> subprocess.CompletedProcess[str]:
        """Run ``psql`` over TCP (so the password crosses the wire) with the password in PGPASSWORD."""
        env = {**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "5"}
        return subprocess.run(["psql", self.dsn(sslmode, password=False), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-c", sql], env=env, capture_output=True, text=True, timeout=timeout, check=True)

    def admin(self, sql: str) -> str:
        """Run SQL as the superuser over the Unix socket (trust; nothing on the wire)."""
        out = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-h", str(self.socket_dir), "-p",
                              str(self.port), "-U", "postgres", "-d", "postgres", "-X", "-A", "-t", "-v",
                              "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True, timeout=20, check=True)
        return out.stdout


@contextlib.contextmanager
def postgres_server(tmp: Path, *, ssl: bool = False, certs: Certs | None = None, auth: str = "scram-sha-256",
                    listen: str = "127.0.0.1", port: int | None = None) -> Iterator[Postgres]:
    """A fresh cluster in ``tmp`` (auth for TCP: scram-sha-256, md5 or password, i.e. cleartext); with ``ssl``,
    ``certs`` (or a leaf of a new test CA) is its server certificate."""
    need("runuser", "psql")
    initdb, postgres_bin = pg_bin("initdb"), pg_bin("postgres")
    pw = pwd.getpwnam("postgres")
    root = tmp / f"pg-{os.getpid()}-{time.monotonic_ns()}"
    root.mkdir(parents=True)
    os.chown(root, pw.pw_uid, pw.pw_gid)
    for parent in (tmp, *tmp.parents):  # postgres must be able to reach its directory
        with contextlib.suppress(OSError):
            parent.chmod(parent.stat().st_mode | 0o011)
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    os.chown(sockets, pw.pw_uid, pw.pw_gid)
    subprocess.run(["runuser", "-u", "postgres", "--", initdb, "-D", str(data), "-U", "postgres", "-A", "trust",
                    "--no-sync", "-E", "UTF8"], check=True, capture_output=True, timeout=120)
    (data / "pg_hba.conf").write_text(
        "local all all trust\n"
        f"host all all 0.0.0.0/0 {auth}\n"
        f"host all all ::/0 {auth}\n")
    settings = ["-c", f"listen_addresses={listen}", "-c", f"unix_socket_directories={sockets}",
                "-c", "fsync=off", "-c", "logging_collector=off",
                "-c", f"password_encryption={'md5' if auth == 'md5' else 'scram-sha-256'}"]
    if ssl:
        certs = certs or Pki(root / "pki").issue("server")
        key = root / "server.key"
        cert = root / "server.pem"
        shutil.copy(certs.key, key)
        shutil.copy(certs.cert, cert)
        for path in (key, cert):
            os.chown(path, pw.pw_uid, pw.pw_gid)
        key.chmod(0o600)
        settings += ["-c", "ssl=on", "-c", f"ssl_cert_file={cert}", "-c", f"ssl_key_file={key}"]
    else:
        settings += ["-c", "ssl=off"]
    port = port or free_port()
    log = root / "postgres.log"
    proc = _spawn(["runuser", "-u", "postgres", "--", postgres_bin, "-D", str(data), "-p", str(port), *settings], log)
    server = Postgres(port=port, host=listen, socket_dir=sockets, data=data, ssl=ssl, auth=auth, certs=certs,
                      proc=proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise _died(proc, log)
            ready = subprocess.run([pg_bin("pg_isready"), "-h", str(sockets), "-p", str(port)], capture_output=True)
            if ready.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("postgres did not start")
            time.sleep(0.1)
        server.admin(f"CREATE ROLE {server.user} LOGIN PASSWORD '{server.password}'")
        server.admin(f"CREATE DATABASE {server.database} OWNER {server.user}")
        yield server
    finally:
        # signal the postmaster itself (runuser does not always pass a signal on), then reap runuser
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            os.kill(int((data / "postmaster.pid").read_text().split()[0]), signal.SIGINT)  # fast shutdown
        stop(proc, signal.SIGINT)
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ Redis


@dataclass
class Redis:
    port: int  # plaintext
    tls_port: int | None
    host: str
    certs: Certs | None
    password: str | None = PASSWORD
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def cli(self, *args: str, tls: bool = False, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        """``redis-cli`` over TCP to 127.0.0.1; the password goes in an AUTH command on the wire."""
        argv = ["redis-cli", "-h", "127.0.0.1", "--no-auth-warning"]
        if self.password is not None:
            argv += ["-a", self.password]
        if tls:
            assert self.tls_port is not None and self.certs is not None
            argv += ["-p", str(self.tls_port), "--tls", "--cacert", str(self.certs.ca)]
        else:
            argv += ["-p", str(self.port)]
        return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout, check=True)


@contextlib.contextmanager
def redis_server(tmp: Path, *, tls: bool = False, certs: Certs | None = None, bind: str = "127.0.0.1",
                 password: str | None = PASSWORD) -> Iterator[Redis]:
    """A Redis on a free plaintext port, plus a TLS port (``certs`` or a leaf of a new test CA) when ``tls``;
    ``requirepass`` unless ``password`` is None."""
    need("redis-server", "redis-cli")
    root = tmp / f"redis-{time.monotonic_ns()}"
    root.mkdir(parents=True)
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", bind, "--save", "", "--appendonly", "no",
            "--dir", str(root), "--protected-mode", "no", "--daemonize", "no"]
    if password is not None:
        argv += ["--requirepass", password]
    tls_port = None
    if tls:
        certs = certs or Pki(root / "pki").issue("server")
        tls_port = free_port()
        argv += ["--tls-port", str(tls_port), "--tls-cert-file", str(certs.cert), "--tls-key-file", str(certs.key),
                 "--tls-ca-cert-file", str(certs.ca), "--tls-auth-clients", "no"]
    log = root / "redis.log"
    proc = _spawn(argv, log)
    try:
        wait_port(port, proc=proc, log=log)
        if tls_port:
            wait_port(tls_port, proc=proc, log=log)
        yield Redis(port=port, tls_port=tls_port, host=bind, certs=certs, password=password, proc=proc)
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ tcpdump


@contextlib.contextmanager
def tcpdump(path: Path, bpf: str, interface: str = "lo") -> Iterator[Path]:
    """Capture ``bpf`` on ``interface`` into ``path`` while the block runs (packets flushed at exit)."""
    proc = subprocess.Popen([which("tcpdump"), "-i", interface, "--immediate-mode", "-U", "-s", "0", "-w", str(path),
                             bpf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    line = proc.stderr.readline().decode(errors="replace")  # "listening on lo, …" once the filter is in place
    if "listening on" not in line:
        stop(proc)
        pytest.fail(f"tcpdump cannot capture on {interface} (run the tests as root): {line.strip()}", pytrace=False)
    try:
        yield path
        time.sleep(0.3)  # the last FIN/ACKs
    finally:
        stop(proc, signal.SIGINT)
        proc.stderr.close()
