"""Simulation evidence parsed into typed facts for the layer-12 checks. ``parse_simulation`` never raises.

A scenario kind the run did not include is recorded in ``missing`` (its checks are NOT_ASSESSED, never PASS).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from outsidein.evidence import SourceEvidence
from outsidein.scope import SIMULATION_KINDS


@dataclass(frozen=True)
class ScenarioFacts:
    kind: str
    name: str
    url: str
    method: str
    params: dict[str, Any]
    result: dict[str, Any]
    error: str | None = None

    @property
    def resource(self) -> str:
        return f"{self.method} {self.url} [{self.name}]"


@dataclass
class SimulationFacts:
    name: str
    environment: str | None
    authorization: dict[str, Any] = field(default_factory=dict)
    scenarios: list[ScenarioFacts] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)

    def of(self, kind: str) -> list[ScenarioFacts]:
        return [s for s in self.scenarios if s.kind == kind]


def parse_simulation(evidence: SourceEvidence) -> SimulationFacts:
    facts = SimulationFacts(name=evidence.name, environment=evidence.environment)
    record = evidence.data
    if record.error or not isinstance(record.data, dict):
        reason = record.error or f"{evidence.name}: no simulation results were recorded"
        facts.missing = dict.fromkeys(SIMULATION_KINDS, reason)
        return facts
    auth = record.data.get("authorization")
    facts.authorization = auth if isinstance(auth, dict) else {}
    for index, raw in enumerate(record.data.get("scenarios") or []):
        try:
            facts.scenarios.append(ScenarioFacts(
                kind=str(raw["kind"]), name=str(raw.get("name") or raw["kind"]), url=str(raw.get("url", "")),
                method=str(raw.get("method") or "GET"), params=dict(raw.get("params") or {}),
                result=dict(raw.get("result") or {}), error=raw.get("error")))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            facts.missing.setdefault("scenarios", f"{evidence.name}: scenario #{index + 1} is malformed ({exc})")
    for kind in SIMULATION_KINDS:
        if not facts.of(kind):
            facts.missing.setdefault(kind, f"{evidence.name}: no {kind} scenario in the simulation's scope")
    return facts
