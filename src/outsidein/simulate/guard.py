"""The authorization guard: nothing is sent unless the scope's ``[simulation]`` block allows it.

``authorize`` runs before any connection: it checks the block (present, unexpired, not production), that each
scenario URL lies within an authorized target, and resolves each host, refusing any address that is not
loopback or listed in ``allowed_addresses``. The checked address is what the load generator connects to.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from outsidein.scope import PRODUCTION_ENVIRONMENTS, ScenarioScope, SimulationScope

Resolver = Callable[[str, int], list[str]]


class SimulationRefused(ValueError):
    """The scope does not authorize this simulation; nothing was sent."""


@dataclass(frozen=True)
class Endpoint:
    """Where a scenario's requests really go: the checked address, with the name for Host and SNI."""

    url: str  # as written in the scope
    scheme: str
    host: str  # the name, for the Host header and SNI
    port: int
    address: str  # the resolved, authorized IP address
    path: str  # path and query

    @property
    def netloc(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"

    @property
    def request_url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def _origin(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port, parts.path or "/"


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SimulationRefused(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def within(url: str, targets: tuple[str, ...]) -> bool:
    """Same scheme, host and port as one target, and under its path."""
    scheme, host, port, path = _origin(url)
    for target in targets:
        t_scheme, t_host, t_port, t_path = _origin(target)
        prefix = t_path if t_path.endswith("/") else t_path + "/"
        if (scheme, host, port) == (t_scheme, t_host, t_port) and (path == t_path or path.startswith(prefix)
                                                                     or t_path == "/"):
            return True
    return False


def address_allowed(address: str, allowed: tuple[str, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    if ip.is_loopback:
        return True
    return any(ip in ipaddress.ip_network(cidr, strict=False) for cidr in allowed
               if ipaddress.ip_network(cidr, strict=False).version == ip.version)


def authorize(sim: SimulationScope | None, where: str, today: date,
              resolver: Resolver = resolve) -> dict[str, Endpoint]:
    """The endpoint of every scenario, or ``SimulationRefused`` naming the scope file and what is wrong."""
    if sim is None:
        raise SimulationRefused(f"{where}: no [simulation] block: active tests need a written authorization "
                                "(authorized_by, expires, environment, targets)")
    if sim.environment.strip().lower() in PRODUCTION_ENVIRONMENTS:
        raise SimulationRefused(f"{where}: [simulation] environment is {sim.environment!r}: attack simulations "
                                "never run against production; use staging or a dedicated test environment")
    if sim.expires < today:
        raise SimulationRefused(f"{where}: [simulation] the authorization by {sim.authorized_by} expired on "
                                f"{sim.expires.isoformat()}; renew it in writing before testing")
    if not sim.scenarios:
        raise SimulationRefused(f"{where}: [simulation] has no [[simulation.scenarios]] to run")
    endpoints: dict[str, Endpoint] = {}
    for scenario in sim.scenarios:
        endpoints[scenario.name] = _endpoint(scenario, sim, where, resolver)
    return endpoints


def _endpoint(scenario: ScenarioScope, sim: SimulationScope, where: str, resolver: Resolver) -> Endpoint:
    at = f"{where}: scenario {scenario.name!r}"
    if not within(scenario.url, sim.targets):
        raise SimulationRefused(f"{at}: {scenario.url} is outside the authorized targets "
                                f"({', '.join(sim.targets)})")
    scheme, host, port, _ = _origin(scenario.url)
    parts = urlsplit(scenario.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    addresses = resolver(host, port)
    refused = [a for a in addresses if not address_allowed(a, sim.allowed_addresses)]
    if refused or not addresses:
        raise SimulationRefused(f"{at}: {host} resolves to {', '.join(refused) or 'nothing'}: requests go only "
                                "to loopback (127.0.0.0/8, ::1) or addresses listed in [simulation] "
                                "allowed_addresses")
    return Endpoint(url=scenario.url, scheme=scheme, host=host, port=port, address=addresses[0], path=path)


def describe(sim: SimulationScope) -> dict[str, Any]:
    """The authorization as recorded in the evidence."""
    return {"authorized_by": sim.authorized_by, "expires": sim.expires.isoformat(), "environment": sim.environment,
            "targets": list(sim.targets), "allowed_addresses": list(sim.allowed_addresses),
            "max_requests": sim.max_requests, "max_seconds": sim.max_seconds}
