"""Real servers for tests: a throwaway PostgreSQL cluster, a Redis, certificates, and tcpdump on ``lo``.

Everything lives in a temporary directory, listens on a free loopback port (or the wildcard when a test asks
for it) and is stopped at teardown. PostgreSQL runs as the ``postgres`` OS user (the tests run as root) with
``runuser``. Helpers skip the test (``pytest.skip``) when a binary is missing.

    with make_certs(tmp) as certs, postgres_server(tmp, ssl=True, certs=certs) as pg:
        pg.psql("SELECT 1", sslmode="require")
    with redis_server(tmp, tls=True, certs=certs) as rd:
        rd.cli("PING", tls=True)
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PASSWORD = "S3cretPassw0rd-xyzzy"  # what crosses the wire in plaintext tests; must never show up unmasked


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None,
              ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def need(*binaries: str) -> None:
    for binary in binaries:
        if not shutil.which(binary) and not os.path.exists(binary):
            pytest.skip(f"{binary} is not installed")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ------------------------------------------------------------------------------------------------ certificates


@dataclass(frozen=True)
class Certs:
    """A CA and a server certificate it signed (PEM files), valid for localhost and 127.0.0.1."""

    ca: Path
    cert: Path
    key: Path


def make_certs(directory: Path, *, hostnames: Sequence[str] = ("localhost", "127.0.0.1"), days: int = 365,
               not_before: dt.datetime | None = None, key_size: int = 2048, self_signed: bool = False,
               name: str = "server") -> Certs:
    """Write ``{name}-ca.pem``, ``{name}.pem`` and ``{name}.key`` in ``directory`` (self_signed: the cert is its CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    end = start + dt.timedelta(days=days) if not_before else dt.datetime.now(dt.UTC) + dt.timedelta(days=days)

    def subject(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = subject(f"{name} test CA")
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    sans: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    issuer_name, issuer_key = (subject(hostnames[0]), key) if self_signed else (ca_cert.subject, ca_key)
    cert = (x509.CertificateBuilder().subject_name(subject(hostnames[0])).issuer_name(issuer_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(issuer_key, hashes.SHA256()))
    certs = Certs(ca=directory / f"{name}-ca.pem", cert=directory / f"{name}.pem", key=directory / f"{name}.key")
    certs.ca.write_bytes((cert if self_signed else ca_cert).public_bytes(serialization.Encoding.PEM))
    certs.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certs.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                            serialization.NoEncryption()))
    certs.key.chmod(0o600)
    return certs


# ------------------------------------------------------------------------------------------------ PostgreSQL


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.skip(f"PostgreSQL's {name} is not installed")
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
    """A fresh cluster in ``tmp`` (auth for TCP: scram-sha-256, md5 or password, i.e. cleartext)."""
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
        certs = certs or make_certs(root / "certs")
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
    log = (root / "postgres.log").open("wb")
    proc = subprocess.Popen(["runuser", "-u", "postgres", "--", postgres_bin, "-D", str(data), "-p", str(port),
                             *settings], stdout=log, stderr=subprocess.STDOUT)
    server = Postgres(port=port, host=listen, socket_dir=sockets, data=data, ssl=ssl, auth=auth, certs=certs,
                      proc=proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {(root / 'postgres.log').read_text()[-2000:]}")
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
        pid_file = data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)  # fast shutdown of the postmaster
        _stop(proc, signal.SIGINT)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ Redis


@dataclass
class Redis:
    port: int  # plaintext
    tls_port: int | None
    host: str
    certs: Certs | None
    password: str = PASSWORD
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def cli(self, *args: str, tls: bool = False, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        """``redis-cli`` over TCP to 127.0.0.1; the password goes in an AUTH command on the wire."""
        argv = ["redis-cli", "-h", "127.0.0.1", "--no-auth-warning", "-a", self.password]
        if tls:
            assert self.tls_port is not None and self.certs is not None
            argv += ["-p", str(self.tls_port), "--tls", "--cacert", str(self.certs.ca)]
        else:
            argv += ["-p", str(self.port)]
        return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout, check=True)


@contextlib.contextmanager
def redis_server(tmp: Path, *, tls: bool = False, certs: Certs | None = None, bind: str = "127.0.0.1",
                 password: str = PASSWORD) -> Iterator[Redis]:
    """A Redis with ``requirepass`` on a free plaintext port, plus a TLS port when ``tls``."""
    need("redis-server", "redis-cli")
    root = tmp / f"redis-{time.monotonic_ns()}"
    root.mkdir(parents=True)
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", bind, "--requirepass", password, "--save", "",
            "--appendonly", "no", "--dir", str(root), "--protected-mode", "no", "--daemonize", "no"]
    tls_port = None
    if tls:
        certs = certs or make_certs(root / "certs")
        tls_port = free_port()
        argv += ["--tls-port", str(tls_port), "--tls-cert-file", str(certs.cert), "--tls-key-file", str(certs.key),
                 "--tls-ca-cert-file", str(certs.ca), "--tls-auth-clients", "no"]
    log = (root / "redis.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc=proc)
        if tls_port:
            wait_port(tls_port, proc=proc)
        yield Redis(port=port, tls_port=tls_port, host=bind, certs=certs, password=password, proc=proc)
    finally:
        _stop(proc)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ tcpdump


@contextlib.contextmanager
def tcpdump(path: Path, bpf: str, interface: str = "lo") -> Iterator[Path]:
    """Capture ``bpf`` on ``interface`` into ``path`` while the block runs (packets flushed at exit)."""
    need("tcpdump")
    proc = subprocess.Popen(["tcpdump", "-i", interface, "--immediate-mode", "-U", "-s", "0", "-w", str(path), bpf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    line = proc.stderr.readline().decode(errors="replace")  # "listening on lo, …" once the filter is in place
    if "listening on" not in line:
        _stop(proc)
        pytest.skip(f"tcpdump cannot capture on {interface}: {line.strip()}")
    try:
        yield path
        time.sleep(0.3)  # the last FIN/ACKs
    finally:
        _stop(proc, signal.SIGINT)
        proc.stderr.close()
