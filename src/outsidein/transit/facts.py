"""Capture evidence parsed into typed facts for the layer-8 checks. ``parse_capture`` never raises."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from outsidein.evidence import CaptureEvidence

FLOWS = "flows"


@dataclass(frozen=True)
class Detection:
    kind: str
    excerpt: str
    credential: bool
    packet: int | None
    offset: int


@dataclass(frozen=True)
class Flow:
    client: str
    server: str
    protocol: str
    encrypted: bool | None  # None: no payload either way
    tls_version: str | None
    starttls: str | None
    first_packet: int
    detections: tuple[Detection, ...] = ()

    @property
    def server_port(self) -> int:
        tail = self.server.rpartition(":")[2]
        return int(tail) if tail.isdigit() else 0

    def where(self, detection: Detection | None = None) -> str:
        packet = detection.packet if detection and detection.packet else self.first_packet
        return f"{self.client} -> {self.server} (packet {packet})"


@dataclass(frozen=True)
class PgConnection:
    server: str
    pid: int
    client_addr: str | None  # None: a Unix-socket connection (or not visible to the auditing role)
    client_port: int | None
    ssl: bool | None
    version: str | None
    cipher: str | None
    user: str | None
    application: str | None
    database: str | None
    self_: bool = False

    @property
    def local(self) -> bool:
        if self.client_addr is None:
            return self.client_port == -1 or self.client_port is None
        try:
            return ipaddress.ip_address(self.client_addr.split("%")[0]).is_loopback
        except ValueError:
            return False


@dataclass
class CaptureFacts:
    name: str
    environment: str | None
    kind: str = "pcap"
    flows: list[Flow] = field(default_factory=list)
    connections: list[PgConnection] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _detection(raw: Any) -> Detection:
    return Detection(kind=str(raw.get("kind", "?")), excerpt=str(raw.get("excerpt", "")),
                     credential=bool(raw.get("credential")),
                     packet=raw["packet"] if isinstance(raw.get("packet"), int) else None,
                     offset=int(raw.get("offset") or 0))


def _flow(raw: Any) -> Flow:
    encrypted = raw.get("encrypted")
    return Flow(client=str(raw["client"]), server=str(raw["server"]), protocol=str(raw.get("protocol") or "unknown"),
                encrypted=None if encrypted is None else bool(encrypted), tls_version=raw.get("tls_version"),
                starttls=raw.get("starttls"), first_packet=int(raw.get("first_packet") or 0),
                detections=tuple(_detection(d) for d in raw.get("detections") or [] if isinstance(d, dict)))


def _connection(raw: Any) -> PgConnection:
    ssl = raw.get("ssl")
    port = raw.get("client_port")
    return PgConnection(server=str(raw.get("server", "")), pid=int(raw.get("pid") or 0),
                        client_addr=raw.get("client_addr"), client_port=port if isinstance(port, int) else None,
                        ssl=None if ssl is None else bool(ssl), version=raw.get("version"), cipher=raw.get("cipher"),
                        user=raw.get("user"), application=raw.get("application"), database=raw.get("database"),
                        self_=bool(raw.get("self")))


def parse_capture(evidence: CaptureEvidence) -> CaptureFacts:
    facts = CaptureFacts(name=evidence.name, environment=evidence.environment, kind=evidence.kind)
    record = evidence.flows
    if record.error:
        facts.missing[FLOWS] = record.error
        return facts
    if not isinstance(record.data, list):
        facts.missing[FLOWS] = f"{evidence.name}: no flows were collected"
        return facts
    for index, raw in enumerate(record.data):
        try:
            if evidence.kind == "pg_stat_ssl":
                facts.connections.append(_connection(raw))
            else:
                facts.flows.append(_flow(raw))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            facts.missing[FLOWS] = f"{evidence.name}: flow #{index + 1} is malformed ({exc})"
            facts.flows.clear()
            facts.connections.clear()
            return facts
    return facts
