"""Collect host evidence: read-only commands and files, locally or over SSH, and TCP probes from here.

Nothing here judges; outputs are kept as the text the commands printed. A host that cannot be
reached, a command that is missing or a `sudo` that is refused becomes a recorded reason.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from outsidein.checks.ports import port_policy
from outsidein.evidence import HostEvidence, Record
from outsidein.host.commands import COMMANDS, HOST_PROVISIONING_FILES, PERSISTENCE_FILES, HostCommand
from outsidein.redact import redact_text
from outsidein.scope import HostScope
from outsidein.secrets import environ

COMMAND_TIMEOUT = 30.0
PROBE_TIMEOUT = 1.5
MAX_PROBES = 128  # TCP connections per host, at most: the probe is bounded
MAX_PROVISIONING_BYTES = 2_000_000
PROVISIONING_SUFFIXES = {".yml", ".yaml", ".sh", ".bash", ".json", ".hcl", ".cfg", ".conf", ".txt", ".j2", ".tpl",
                         ".userdata", ""}
ABSENT_MARK = "__outsidein_absent__"
SUDO_DENIED = re.compile(r"sudo: (a password is required|a terminal is required|.*not in the sudoers|"
                         r".*is not allowed to run)", re.I)


@dataclass(frozen=True)
class Completed:
    exit_code: int
    stdout: str
    stderr: str


class HostUnreachable(Exception):
    """The connection itself failed (SSH exit 255, timeout): no further command is tried."""


# Firewall tools live in sbin, which a non-root login's PATH often lacks.
SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Runner(ABC):
    """Runs one argv on a host and returns its output; subclasses say where."""

    search_path = SEARCH_PATH

    @abstractmethod
    def run(self, argv: Sequence[str]) -> Completed:
        """Run argv (read-only) and return what it printed."""

    def close(self) -> None:  # noqa: B027 - most runners hold nothing
        """Release what the runner holds (an SSH master connection)."""


class LocalRunner(Runner):
    def run(self, argv: Sequence[str]) -> Completed:
        if shutil.which(argv[0], path=self.search_path) is None:
            return Completed(127, "", f"{argv[0]}: command not found")
        try:
            proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                                  errors="replace", stdin=subprocess.DEVNULL,
                                  env={**os.environ, "PATH": self.search_path})
        except subprocess.TimeoutExpired:
            return Completed(124, "", f"timed out after {COMMAND_TIMEOUT:.0f}s")
        return Completed(proc.returncode, proc.stdout, proc.stderr)


class SshRunner(Runner):
    """The OpenSSH client, key-based, host key verified against known_hosts, one multiplexed connection."""

    def __init__(self, user: str, host: str, port: int, identity_file: Path | None = None,
                 known_hosts: Path | None = None, connect_timeout: int = 5) -> None:
        self._control = tempfile.mkdtemp(prefix="outsidein-ssh-")
        self.destination = f"{user}@{host}"
        self.options = [
            "-p", str(port),
            "-o", "BatchMode=yes",  # never prompt: key-based only
            "-o", "StrictHostKeyChecking=yes",  # an unknown or changed host key refuses the connection
            "-o", f"ConnectTimeout={connect_timeout}",
            "-o", "ControlMaster=auto",
            "-o", f"ControlPath={self._control}/%C",
            "-o", "ControlPersist=60",
            "-o", "LogLevel=ERROR",
        ]
        if known_hosts is not None:
            self.options += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
        if identity_file is not None:
            self.options += ["-o", "IdentitiesOnly=yes", "-i", str(identity_file)]

    def run(self, argv: Sequence[str]) -> Completed:
        remote = f"env PATH={shlex.quote(self.search_path)} " + " ".join(shlex.quote(part) for part in argv)
        cmd = ["ssh", *self.options, self.destination, "--", remote]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, errors="replace",
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise HostUnreachable(f"ssh {self.destination}: no answer within {COMMAND_TIMEOUT:.0f}s") from None
        except FileNotFoundError:
            raise HostUnreachable("the ssh client is not installed where outsidein runs") from None
        if proc.returncode == 255:
            message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "connection failed"
            raise HostUnreachable(f"ssh {self.destination}: {message}")
        return Completed(proc.returncode, proc.stdout, proc.stderr)

    def close(self) -> None:
        subprocess.run(["ssh", *self.options, "-O", "exit", self.destination], capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL)
        shutil.rmtree(self._control, ignore_errors=True)


def _stderr_lines(stderr: str) -> list[str]:
    """What the command said, without the SSH session's own chatter (a missing home directory …)."""
    chatter = ("Could not chdir to home directory", "Warning: Permanently added")
    return [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith(chatter)]


def _failure(argv: Sequence[str], done: Completed) -> str:
    """A short reason a person can act on, for a command that did not give its answer."""
    lines = _stderr_lines(done.stderr)
    if done.exit_code == 127 or any("command not found" in line for line in lines):
        program = argv[2] if argv[0] == "sudo" and len(argv) > 2 else argv[0]
        return f"command not found on the host: {program}"
    denied = next((line for line in lines if SUDO_DENIED.search(line)), None)
    if denied:
        return f"sudo refused `{' '.join(argv[2:])}`: {denied[:160]}"
    if done.exit_code == 124:
        return f"`{' '.join(argv)}` {lines[-1] if lines else 'timed out'}"
    said = lines[-1][:200] if lines else f"exit code {done.exit_code}"
    return f"`{' '.join(argv)}` failed: {said}"


class HostCollector:
    """Reads one host in scope through a runner (local or SSH)."""

    def __init__(self, scope: HostScope, runner: Runner | None = None) -> None:
        self.scope = scope
        self.runner = runner or self._runner()
        self._root = self._is_root()

    def _runner(self) -> Runner:
        target = self.scope.ssh_target
        if target is None:
            return LocalRunner()
        user, host, port = target
        return SshRunner(user, host, port, self.scope.identity_file, self.scope.known_hosts)

    def _is_root(self) -> bool:
        if isinstance(self.runner, LocalRunner):
            return os.geteuid() == 0
        return self.scope.ssh_target is not None and self.scope.ssh_target[0] == "root"

    def _argv(self, argv: Sequence[str], privileged: bool) -> list[str]:
        if privileged and self.scope.sudo and not self._root:
            return ["sudo", "-n", *argv]
        return list(argv)

    def _command(self, command: HostCommand) -> Record:
        argv = self._argv(command.argv, command.sudo)
        done = self.runner.run(argv)
        if done.exit_code in command.ok_exit_codes and (done.exit_code == 0 or done.stdout.strip()):
            # iptables-nft warns on stderr that legacy tables exist too: keep that, or hidden rules look absent.
            warnings = [line for line in done.stderr.splitlines() if line.startswith("# Warning")]
            return Record(data=done.stdout + "".join(f"{line}\n" for line in warnings))
        return Record(error=_failure(argv, done))

    def _file(self, path: str) -> Record:
        # `cat` through the runner so SSH hosts and sudo work alike; a missing file is an absence.
        script = f"if [ -e {shlex.quote(path)} ]; then cat -- {shlex.quote(path)}; else echo {ABSENT_MARK}; fi"
        argv = self._argv(["sh", "-c", script], privileged=True)
        done = self.runner.run(argv)
        if done.exit_code == 0 and done.stdout.strip() == ABSENT_MARK:
            return Record(data=None)
        if done.exit_code == 0:
            return Record(data=redact_text(done.stdout))
        return Record(error=_failure(argv, done))

    def _process_environ(self) -> Record:
        """Secret-named variables of every process, masked here: a raw value is never stored (layer 5)."""
        argv = self._argv(environ.argv(), privileged=True)
        done = self.runner.run(argv)
        if done.exit_code != 0:
            return Record(error=_failure(argv, done))
        return Record(data=environ.mask_output(done.stdout))

    def collect(self) -> HostEvidence:
        evidence = HostEvidence(
            name=self.scope.name, address=self.scope.address or "", environment=self.scope.environment,
            origin="local" if self.scope.ssh_target is None else "ssh",
            ssh_allowed_cidrs=list(self.scope.ssh_allowed_cidrs),
        )
        try:
            for command in COMMANDS:
                evidence.commands[command.key] = self._command(command)
            for path in (*PERSISTENCE_FILES, *HOST_PROVISIONING_FILES):
                evidence.files[path] = self._file(path)
            if self.scope.process_environ:
                evidence.files[environ.KEY] = self._process_environ()
            if self.scope.backups or self.scope.backup_scripts:  # layer 9: backup timers, cron lines and scripts
                from outsidein.backups.host import collect_backup_evidence

                collect_backup_evidence(self, evidence)
        except HostUnreachable as exc:
            evidence.error = f"unreachable: {exc}"
            evidence.commands, evidence.files = {}, {}
        finally:
            self.runner.close()
        evidence.provisioning = read_provisioning(self.scope.provisioning)
        if self.scope.probe_address:
            listening = listening_ports(evidence.commands.get("ss-tlnp"))
            evidence.probes = probe_tcp(self.scope.probe_address, probe_port_list(listening, self.scope.probe_ports))
        return evidence


def read_provisioning(paths: Iterable[Path]) -> dict[str, Record]:
    """The text of every provisioning file named in the scope (folders are walked)."""
    records: dict[str, Record] = {}
    for root in paths:
        if not root.exists():
            records[str(root)] = Record(error=f"{root}: no such file or folder")
            continue
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()
                                                     and not any(part.startswith(".") for part in p.parts)
                                                     and (p.suffix.lower() in PROVISIONING_SUFFIXES))
        for path in files:
            try:
                if path.stat().st_size > MAX_PROVISIONING_BYTES:
                    records[str(path)] = Record(error=f"{path}: larger than {MAX_PROVISIONING_BYTES} bytes, skipped")
                    continue
                records[str(path)] = Record(data=redact_text(path.read_text(encoding="utf-8")))
            except UnicodeDecodeError:
                continue  # a binary file is not a provisioning script
            except OSError as exc:
                records[str(path)] = Record(error=f"{path}: cannot read: {exc.strerror or exc}")
    return records


_SS_LOCAL = re.compile(r"^\S+\s+\d+\s+\d+\s+(\S+):(\d+)\s")


def listening_ports(ss_output: Record | None) -> set[int]:
    """Ports in `ss -tlnp` output that listen beyond loopback (what is worth probing)."""
    ports: set[int] = set()
    if ss_output is None or not ss_output.ok or not isinstance(ss_output.data, str):
        return ports
    for line in ss_output.data.splitlines():
        match = _SS_LOCAL.match(line)
        if match and not match.group(1).strip("[]").startswith(("127.", "::1")):
            ports.add(int(match.group(2)))
    return ports


def probe_port_list(listening: Iterable[int], extra: Iterable[int]) -> list[int]:
    """Listening ports, the dangerous-port list and the scope's extra ports, bounded by MAX_PROBES."""
    wanted = {22, 3389, *listening, *extra, *(exposed.port for exposed in port_policy().ports)}
    return sorted(wanted)[:MAX_PROBES]


def probe_tcp(address: str, ports: Sequence[int], timeout: float = PROBE_TIMEOUT) -> dict[str, Record]:
    """One TCP connection attempt per port.

    ``state`` is ``open`` (the handshake completed), ``refused`` (a RST: the packet reached the host,
    nothing listens or a REJECT answered) or ``filtered`` (no answer: dropped on the way).
    """

    def attempt(port: int) -> tuple[int, Record]:
        def seen(state: str) -> Record:
            return Record(data={"address": address, "port": port, "open": state == "open", "state": state})

        try:
            with socket.create_connection((address, port), timeout=timeout):
                return port, seen("open")
        except ConnectionRefusedError:
            return port, seen("refused")
        except TimeoutError:
            return port, seen("filtered")
        except OSError as exc:
            return port, Record(error=f"cannot probe {address}:{port}: {exc.strerror or exc}")

    with ThreadPoolExecutor(max_workers=16) as pool:
        return {f"tcp/{port}": record for port, record in pool.map(attempt, ports)}


def load_host_folder(scope: HostScope) -> HostEvidence:
    """Evidence an auditor saved by hand: ``<key>.txt`` per command and, optionally, ``files/<abs path>``."""
    folder = scope.evidence
    assert folder is not None
    evidence = HostEvidence(name=scope.name, address=str(folder), environment=scope.environment, origin="folder",
                            ssh_allowed_cidrs=list(scope.ssh_allowed_cidrs))
    if not folder.is_dir():
        evidence.error = f"{folder}: evidence folder not found"
        return evidence
    for command in COMMANDS:
        for candidate in (folder / f"{command.key}.txt", folder / command.key):
            if candidate.is_file():
                try:
                    evidence.commands[command.key] = Record(data=candidate.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError) as exc:
                    evidence.commands[command.key] = Record(error=f"{candidate}: cannot read: {exc}")
                break
        else:
            evidence.commands[command.key] = Record(error=f"not provided: no {command.key}.txt in {folder}")
    files_root = folder / "files"
    for path in (*PERSISTENCE_FILES, *HOST_PROVISIONING_FILES):
        saved = files_root / path.lstrip("/")
        if not files_root.is_dir():
            evidence.files[path] = Record(error=f"not provided: no files/ folder in {folder}")
        elif saved.is_file():
            evidence.files[path] = Record(data=redact_text(saved.read_text(encoding="utf-8", errors="replace")))
        else:
            evidence.files[path] = Record(data=None)
    if scope.process_environ:
        saved = folder / environ.FOLDER_FILE
        if saved.is_file():
            evidence.files[environ.KEY] = Record(data=environ.mask_output(saved.read_text(encoding="utf-8",
                                                                                         errors="replace")))
        else:
            evidence.files[environ.KEY] = Record(error=f"not provided: no {environ.FOLDER_FILE} in {folder}")
    if scope.backups or scope.backup_scripts:  # layer 9: saved schedule outputs and scripts
        from outsidein.backups.host import load_backup_folder

        load_backup_folder(scope, evidence)
    evidence.provisioning = read_provisioning(scope.provisioning)
    return evidence


def collect_hosts(hosts: Sequence[HostScope], max_workers: int = 8) -> list[HostEvidence]:
    """Every host in scope, concurrently; one host's failure never stops the others."""

    def one(scope: HostScope) -> HostEvidence:
        if scope.evidence is not None:
            return load_host_folder(scope)
        return HostCollector(scope).collect()

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        return list(pool.map(one, hosts))
