"""Run the authorized scenarios and keep what they measured as one ``SourceEvidence`` (kind "simulation").

``data.data`` is ``{"authorization": {...}, "budget": {...}, "scenarios": [...]}``; each scenario holds its
kind, name, URL, method, parameters, start time, elapsed seconds and ``result`` (see ``engine``), or
``error`` when it could not run. ``authorize`` raises ``SimulationRefused`` before anything is sent.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from typing import Any

from outsidein.evidence import Record, SourceEvidence
from outsidein.scope import ScenarioScope, SimulationScope
from outsidein.simulate import engine
from outsidein.simulate.guard import Endpoint, Resolver, authorize, describe, resolve


def run_simulation(sim: SimulationScope | None, where: str = "scope", today: date | None = None,
                   resolver: Resolver = resolve) -> SourceEvidence:
    """Authorize, then run every scenario in order within the run's budget."""
    endpoints = authorize(sim, where, today or datetime.now(UTC).date(), resolver)
    assert sim is not None
    budget = engine.Budget(sim.max_requests, sim.max_seconds)
    scenarios = asyncio.run(_run_all(sim, endpoints, budget))
    data = {"authorization": describe(sim),
            "budget": {"max_requests": budget.max_requests, "max_seconds": budget.max_seconds,
                       "used_requests": budget.used, "exhausted": budget.exhausted},
            "scenarios": scenarios}
    return SourceEvidence(name=f"simulation:{sim.environment}", kind="simulation", environment=sim.environment,
                          data=Record(data=data))


GRACE_SECONDS = 2.0  # past the deadline, in-flight requests are cancelled


async def _run_all(sim: SimulationScope, endpoints: dict[str, Endpoint], budget: engine.Budget) -> list[Any]:
    out = []
    for scenario in sim.scenarios:
        out.append(await _run_one(scenario, endpoints[scenario.name], budget))
    return out


async def _run_one(scenario: ScenarioScope, endpoint: Endpoint, budget: engine.Budget) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": scenario.kind, "name": scenario.name, "url": scenario.url,
                             "method": scenario.method, "address": endpoint.address, "params": dict(scenario.params),
                             "started_at": datetime.now(UTC).isoformat(timespec="milliseconds")}
    if budget.time_left <= 0 or budget.used >= budget.max_requests:
        entry["error"] = "not run: the run's request or time budget was used up by earlier scenarios"
        return entry
    target = engine.Target.of(endpoint, scenario)
    started = time.perf_counter()
    if scenario.kind == "rate_limit":
        run = engine.rate_limit(target, scenario.params, budget)
    elif scenario.kind == "slowloris":
        run = engine.slowloris(endpoint, target, scenario.params, budget)
    elif scenario.kind in ("load", "spike"):
        run = engine.load(target, scenario, budget)
    else:
        run = engine.recovery(target, scenario.params, budget)
    try:  # a hard stop: no request in flight outlives the run's deadline by more than GRACE_SECONDS
        result = await asyncio.wait_for(run, timeout=budget.time_left + GRACE_SECONDS)
    except TimeoutError:
        entry["error"] = f"cut off at the run's time limit ({budget.max_seconds:g} s): no verdict"
        return entry
    except Exception as exc:  # one broken scenario is NOT_ASSESSED, the run goes on
        entry["error"] = f"{type(exc).__name__}: {exc}"
        return entry
    entry["elapsed_s"] = round(time.perf_counter() - started, 3)
    if "error" in result:
        entry["error"] = result.pop("error")
    entry["result"] = result
    return entry
