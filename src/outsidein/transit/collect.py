"""Collect transit evidence: read pcap files, run bounded live captures, read ``pg_stat_ssl``.

Nothing here raises for a capture or a server that cannot be read: the reason becomes ``flows.error``. The
capture file of a live run lives in a temporary directory that is removed afterwards; only the masked flow
summaries are kept. A DSN's password is never stored or printed: error messages are scrubbed of it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from outsidein.evidence import CaptureEvidence, Record
from outsidein.redact import mask
from outsidein.scope import MAX_CAPTURE_SECONDS, CaptureScope, PostgresScope
from outsidein.transit.flows import CaptureError, analyse

PG_QUERY = """
SELECT a.pid, host(a.client_addr) AS client_addr, a.client_port, s.ssl, s.version, s.cipher, s.bits,
       a.usename, a.application_name, a.datname, a.pid = pg_backend_pid() AS self
FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
WHERE a.backend_type = 'client backend'
ORDER BY a.pid
"""


def collect_transit(captures: Sequence[CaptureScope], postgres: Sequence[PostgresScope]) -> list[CaptureEvidence]:
    out = [collect_capture(scope) for scope in captures]
    out += [collect_pg_stat_ssl(scope) for scope in postgres]
    return out


def collect_capture(scope: CaptureScope) -> CaptureEvidence:
    if scope.pcap is not None:
        return CaptureEvidence(name=str(scope.pcap), kind="pcap", environment=scope.environment,
                               flows=read_pcap(scope.pcap))
    name = f"live:{scope.interface}"
    if not scope.interface:
        return CaptureEvidence(name=scope.name, kind="live", environment=scope.environment,
                               flows=Record(error=f"capture {scope.name}: neither a pcap file nor an interface"))
    return CaptureEvidence(name=name, kind="live", environment=scope.environment, flows=live_capture(scope))


def read_pcap(path: Path) -> Record:
    try:
        flows, _ = analyse(path)
    except CaptureError as exc:
        return Record(error=str(exc))
    except MemoryError:
        return Record(error=f"{path}: not enough memory to analyse the capture")
    return Record(data=flows)


def live_capture(scope: CaptureScope) -> Record:
    """Run tcpdump on the interface for at most ``duration`` seconds (or ``max_packets``), then analyse."""
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        return Record(error="tcpdump is not installed where outsidein runs: no live capture")
    duration = min(max(scope.duration, 0.1), MAX_CAPTURE_SECONDS)
    with tempfile.TemporaryDirectory(prefix="outsidein-capture-") as tmp:
        os.chmod(tmp, 0o700)
        pcap = Path(tmp) / "live.pcap"
        argv = [tcpdump, "-i", str(scope.interface), "-w", str(pcap), "-c", str(scope.max_packets), "-s", "0",
                "-U", "--immediate-mode", "-n"]
        if os.geteuid() == 0:
            argv += ["-Z", "root"]  # keep writing into our private directory
        if scope.port_filter:
            argv.append(scope.port_filter)
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            return Record(error=f"tcpdump could not start: {exc.strerror or exc}")
        try:
            _, err = proc.communicate(timeout=duration)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
        stderr = err.decode("utf-8", "replace").strip()
        if proc.returncode not in (0, -signal.SIGINT) and not pcap.exists():
            last = stderr.splitlines()[-1] if stderr else f"exit code {proc.returncode}"
            hint = " (needs root or CAP_NET_RAW)" if "permission" in stderr.lower() else ""
            return Record(error=f"tcpdump on {scope.interface} failed: {last}{hint}")
        if not pcap.exists() or pcap.stat().st_size == 0:
            return Record(error=f"tcpdump on {scope.interface} wrote no capture: {stderr[-300:]}")
        return read_pcap(pcap)


# ------------------------------------------------------------------------------------------------ pg_stat_ssl


def _dsn_password(dsn: str) -> str | None:
    try:
        from psycopg.conninfo import conninfo_to_dict

        value = conninfo_to_dict(dsn).get("password")
    except Exception:  # an unparsable DSN has no password we can name
        return None
    return str(value) if value else None


def scrub(text: str, password: str | None) -> str:
    """The message without the DSN's password (libpq messages never quote it, but a DSN echoed back might)."""
    return text.replace(password, mask(password)) if password else text


def collect_pg_stat_ssl(scope: PostgresScope) -> CaptureEvidence:
    evidence = CaptureEvidence(name=scope.name, kind="pg_stat_ssl", environment=scope.environment)
    password = _dsn_password(scope.dsn)
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError:
        evidence.flows = Record(error="psycopg is not installed: cannot read pg_stat_ssl")
        return evidence
    try:
        with psycopg.connect(scope.dsn, connect_timeout=10, autocommit=True, row_factory=dict_row) as conn:
            rows: list[dict[str, Any]] = conn.execute(PG_QUERY).fetchall()
            info = conn.info
            server = f"{info.host}:{info.port}"
    except Exception as exc:  # psycopg.Error and DSN syntax errors alike
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        evidence.flows = Record(error=f"postgres {scope.name}: cannot read pg_stat_ssl: {scrub(message, password)}")
        return evidence
    evidence.flows = Record(data=[{
        "server": server, "pid": row["pid"], "client_addr": row["client_addr"], "client_port": row["client_port"],
        "ssl": row["ssl"], "version": row["version"], "cipher": row["cipher"], "bits": row["bits"],
        "user": row["usename"], "application": row["application_name"], "database": row["datname"],
        "self": bool(row["self"]),
    } for row in rows])
    return evidence
