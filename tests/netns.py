"""Test hosts as network namespaces: each has its own address, firewall and processes (needs root).

A namespace is joined to the test's own network by a veth pair on a private /30, so a connection
from the test process crosses the namespace's INPUT hook exactly as one from another machine would.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_subnets = itertools.count(1)


# Namespaces need root, which a user may not run the suite as (CI and ./scripts/test do): a skip.
# A missing program is a broken set-up (scripts/system-deps installs every one): a failure.
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (CI and ./scripts/test run "
                                                          "as root)")


def require_programs(*programs: str) -> None:
    """Fail the test, naming what to run, when a program the test drives is not installed."""
    missing = [p for p in programs if shutil.which(p) is None and not Path("/usr/sbin", p).exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run scripts/system-deps", pytrace=False)


def run(argv: Sequence[str], check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, input=input, timeout=30)


@dataclass
class Namespace:
    """A host at ``address``, reached from the test process at ``peer``."""

    name: str
    address: str  # the namespace's own address
    peer: str  # the test side of the veth pair
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def create(cls) -> Namespace:
        require_programs("ip", "iptables", "nft")
        index = next(_subnets) + (os.getpid() % 50) * 4
        base = f"10.{200 + index // 250}.{index % 250}"
        name = f"oi-host-{uuid.uuid4().hex[:8]}"
        outside, inside = f"oiv{name[-8:]}", f"oin{name[-8:]}"
        ns = cls(name, f"{base}.2", f"{base}.1")
        run(["ip", "netns", "add", name])
        try:
            run(["ip", "link", "add", outside, "type", "veth", "peer", "name", inside])
            run(["ip", "link", "set", inside, "netns", name])
            run(["ip", "addr", "add", f"{ns.peer}/30", "dev", outside])
            run(["ip", "link", "set", outside, "up"])
            ns.exec(["ip", "addr", "add", f"{ns.address}/30", "dev", inside])
            ns.exec(["ip", "link", "set", inside, "up"])
            ns.exec(["ip", "link", "set", "lo", "up"])
        except BaseException:
            ns.destroy()
            raise
        return ns

    def exec(self, argv: Sequence[str], check: bool = True, input: str | None = None
             ) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.name, *argv], check=check, input=input)

    def start(self, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        """A long-running process inside the namespace (stopped by destroy())."""
        handle = log.open("wb")
        proc = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], stdout=handle, stderr=subprocess.STDOUT)
        self.processes.append(proc)
        return proc

    def iptables_restore(self, rules: str, ipv6: bool = False) -> None:
        self.exec(["ip6tables-restore" if ipv6 else "iptables-restore"], input=rules)

    def nft(self, ruleset: str) -> None:
        self.exec(["nft", "-f", "-"], input=ruleset)

    def destroy(self) -> None:
        for proc in self.processes:
            proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        run(["ip", "netns", "del", self.name], check=False)  # the veth pair goes with it


def wait_port(ns: Namespace, port: int, timeout: float = 10.0) -> None:
    """Until something listens on ``port`` inside the namespace."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = ns.exec(["ss", "-Htln", f"sport = :{port}"], check=False).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {ns.address}:{port} in {ns.name}")
