"""The dangerous-ports list (data in ``exposed_ports.toml``) and how a port range is judged against it."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from outsidein.models import Severity


@dataclass(frozen=True)
class ExposedPort:
    port: int
    service: str
    severity: Severity


@dataclass(frozen=True)
class PortPolicy:
    ports: tuple[ExposedPort, ...]
    all_ports: Severity
    other_ports: Severity
    public_ports: frozenset[int]

    def judge(self, low: int, high: int) -> tuple[Severity, str] | None:
        """Severity and description of exposing ``low..high`` to the world; None if only public ports."""
        if low <= 0 and high >= 65535:
            return self.all_ports, "all ports"
        hits = [p for p in self.ports if low <= p.port <= high]
        if hits:
            worst = max(hits, key=lambda p: p.severity.rank)
            names = ", ".join(f"{p.port} ({p.service})" for p in hits)
            return worst.severity, names
        if all(port in self.public_ports for port in range(low, high + 1)) and high - low < 1000:
            return None
        return self.other_ports, f"{low}" if low == high else f"{low}-{high}"


@cache
def port_policy() -> PortPolicy:
    data = tomllib.loads(resources.files("outsidein.checks").joinpath("exposed_ports.toml").read_text())
    return PortPolicy(
        tuple(ExposedPort(int(p["port"]), str(p["service"]), Severity.parse(p["severity"])) for p in data["port"]),
        Severity.parse(data["all_ports"]),
        Severity.parse(data["other_ports"]),
        frozenset(int(p) for p in data["public_ports"]),
    )
