"""A throwaway MariaDB server for tests: its own datadir, config and socket in a temporary folder, a free
loopback port, stopped at teardown.

    with mariadb_server(tmp / "db", cert=cert_pem, key=key_pem) as db:   # TLS 1.2/1.3 with that certificate
        collect_tls([TlsEndpointScope(f"127.0.0.1:{db.port}", protocol="mysql")], [])
    with mariadb_server(tmp / "old", cert=..., key=..., legacy=True) as db: ...  # TLS 1.0 to 1.3, ALL:@SECLEVEL=0
    with mariadb_server(tmp / "plain") as db: ...                                # no ssl_cert: no CLIENT_SSL

``mariadb-install-db`` creates the system tables, ``mariadbd`` runs with ``--skip-grant-tables`` (nobody logs
in: the tests only read the greeting and do TLS handshakes) as root (``--user=root``) when the tests do.
Skips the test when MariaDB is not installed (``scripts/system-deps`` installs it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import free_port, wait_port


def _binary(name: str) -> str:
    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/system-deps (it installs mariadb-server)", pytrace=False)
    return found


@dataclass(frozen=True)
class MariaDB:
    port: int
    folder: Path

    @property
    def log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _config(folder: Path, port: int, cert: Path | None, key: Path | None, legacy: bool) -> str:
    lines = [
        "[mariadbd]",
        f"datadir={folder / 'data'}",
        f"socket={folder / 'mariadbd.sock'}",
        f"pid-file={folder / 'mariadbd.pid'}",
        f"log-error={folder / 'error.log'}",
        f"port={port}",
        "bind-address=127.0.0.1",
        "skip-networking=0",
        "skip-grant-tables",
        "skip-name-resolve",
        "skip-log-bin",
        "innodb-buffer-pool-size=16M",
        "innodb-log-file-size=4M",
    ]
    if os.geteuid() == 0:
        lines.append("user=root")
    if cert is not None and key is not None:
        lines += [f"ssl-cert={cert}", f"ssl-key={key}"]
        if legacy:  # Debian's OpenSSL 3 needs security level 0 for TLS 1.0/1.1 (SHA-1) and the weak suites
            lines += ["tls-version=TLSv1.0,TLSv1.1,TLSv1.2,TLSv1.3", "ssl-cipher=ALL:@SECLEVEL=0"]
        else:
            lines += ["tls-version=TLSv1.2,TLSv1.3"]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def mariadb_server(folder: Path, *, cert: Path | None = None, key: Path | None = None,
                   legacy: bool = False) -> Iterator[MariaDB]:
    """A MariaDB listening on a free 127.0.0.1 port: TLS with ``cert``/``key`` (``legacy``: TLS 1.0 and up,
    every suite OpenSSL has), or plaintext only without them."""
    mariadbd, install_db = _binary("mariadbd"), _binary("mariadb-install-db")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = folder / "my.cnf"
    config.write_text(_config(folder, port, cert, key, legacy))
    user = ["--user=root"] if os.geteuid() == 0 else []
    done = subprocess.run([install_db, "--no-defaults", f"--datadir={folder / 'data'}", *user, "--skip-test-db",
                           "--auth-root-authentication-method=normal", "--innodb-log-file-size=4M"],
                          capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"mariadb-install-db failed: {done.stdout.decode(errors='replace')[-1500:]}"
                           f"{done.stderr.decode(errors='replace')[-1500:]}")
    with (folder / "mariadbd.out").open("wb") as out:
        proc = subprocess.Popen([mariadbd, f"--defaults-file={config}"], stdout=out, stderr=subprocess.STDOUT)
    server = MariaDB(port=port, folder=folder)
    try:
        try:
            wait_port(port, timeout=30, proc=proc)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"mariadbd did not start: {exc}\n{server.log[-2000:]}") from exc
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
