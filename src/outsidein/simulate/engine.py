"""The load generator: bounded HTTP/1.1 requests (``wire``, asyncio) and the five scenarios.

Every request and every held connection takes a token from the run's ``Budget``; nothing starts after the
deadline. Latency is measured per request with ``time.perf_counter`` from just before the request is written
(or its connection opened, when there is none to reuse) to the end of the response body. A request that fails
at the transport (refused, reset, timeout, not HTTP) is a sample with status 0: an error, never a silent drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from outsidein.scope import MAX_SIMULATION_REQUESTS, MAX_SIMULATION_SECONDS, MAX_VUS, ScenarioScope
from outsidein.simulate.guard import Endpoint
from outsidein.simulate.wire import Client, Sample, request_bytes, tls_context

__all__ = ["Budget", "Sample", "Target", "per_second", "percentile", "run_stages", "summary"]

TICK = 0.02  # seconds between the VU controller's looks at the ramp


class Budget:
    """Requests and time left in one run; the caps in code bound whatever the scope asks."""

    def __init__(self, max_requests: int, max_seconds: float) -> None:
        self.max_requests = min(max_requests, MAX_SIMULATION_REQUESTS)
        self.max_seconds = min(max_seconds, MAX_SIMULATION_SECONDS)
        self.used = 0
        self.deadline = time.monotonic() + self.max_seconds
        self.exhausted = False

    def take(self) -> bool:
        if self.used >= self.max_requests or time.monotonic() >= self.deadline:
            self.exhausted = True
            return False
        self.used += 1
        return True

    @property
    def time_left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


@dataclass
class Target:
    """One scenario's request, aimed at the authorized address."""

    endpoint: Endpoint
    method: str = "GET"
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, endpoint: Endpoint, scenario: ScenarioScope) -> Target:
        headers = {"Host": endpoint.host_header, "User-Agent": "outsidein-simulate/1", "Accept": "*/*",
                   "Accept-Encoding": "gzip, deflate", **dict(scenario.headers)}
        if scenario.body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json" if scenario.body.lstrip().startswith("{") else \
                "application/x-www-form-urlencoded"
        return cls(endpoint, scenario.method, scenario.body, headers)

    @cached_property
    def payload(self) -> bytes:
        """The request's bytes, built once and written as they are for every request."""
        return request_bytes(self.endpoint, self.method, self.headers, self.body)

    def client(self, timeout: float) -> Client:
        """A new connection-holder for this request (a keep-alive connection unless the headers say close)."""
        close = any(k.lower() == "connection" and "close" in v.lower() for k, v in self.headers.items())
        return Client(self.endpoint, self.payload, timeout=timeout, head=self.method.upper() == "HEAD", close=close)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (k6's p(95) for q = 95)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100.0 * len(ordered)) - 1)]


def summary(samples: Sequence[Sample]) -> dict[str, Any]:
    latencies = [s.latency_ms for s in samples if s.status]
    errors = sum(1 for s in samples if s.error)
    return {"requests": len(samples), "errors": errors, "error_rate": errors / len(samples) if samples else 0.0,
            "transport_errors": sum(1 for s in samples if s.status == 0),
            "status_5xx": sum(1 for s in samples if s.status >= 500),
            "p50_ms": _round(percentile(latencies, 50)), "p95_ms": _round(percentile(latencies, 95)),
            "max_ms": _round(max(latencies) if latencies else None)}


def per_second(samples: Sequence[Sample], vus: dict[int, int] | None = None) -> list[dict[str, Any]]:
    """The samples summarised per second of the scenario: what the chart draws."""
    buckets: dict[int, list[Sample]] = {}
    for s in samples:
        buckets.setdefault(int(s.t), []).append(s)
    return [{"t": second, **summary(group), **({"vus": vus.get(second, 0)} if vus is not None else {})}
            for second, group in sorted(buckets.items())]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def vus_at(stages: Sequence[tuple[float, int]], elapsed: float) -> int:
    """k6's ramping-vus: linear from the previous stage's target (0 at the start) to this stage's."""
    start, previous = 0.0, 0
    for seconds, target in stages:
        if elapsed < start + seconds:
            return round(previous + (target - previous) * (elapsed - start) / seconds)
        start, previous = start + seconds, target
    return 0


class _Users:
    """The virtual users of one ``run_stages``: each sends its next request from the previous one's callback."""

    def __init__(self, target: Target, budget: Budget, think: float, timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.target, self.budget, self.think, self.timeout = target, budget, think, timeout
        self.samples: list[Sample] = []
        self.desired = 0
        self.done = False
        self.active = 0
        self.t0 = time.perf_counter()
        self.idle: asyncio.Future[None] | None = None


class _User:
    """One virtual user: one connection, one request at a time, while its index is below the desired VUs."""

    __slots__ = ("client", "index", "run", "stopped")

    def __init__(self, index: int, run: _Users) -> None:
        self.index, self.run, self.stopped = index, run, False
        self.client = run.target.client(run.timeout)
        run.active += 1

    def next(self) -> None:
        run = self.run
        if run.done or self.index >= run.desired:
            self.stop()
        elif not run.budget.take():
            run.done = True
            self.stop()
        else:
            self.client.send(run.t0, self.answered)

    def answered(self, sample: Sample) -> None:
        run = self.run
        run.samples.append(sample)
        if run.think:
            run.loop.call_later(run.think, self.next)
        else:
            self.next()

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.client.close()
        run = self.run
        run.active -= 1
        if run.active == 0 and run.idle is not None and not run.idle.done():
            run.idle.set_result(None)


async def run_stages(target: Target, stages: Sequence[tuple[float, int]], budget: Budget, *, think: float = 0.0,
                     timeout: float = 10.0) -> tuple[list[Sample], dict[int, int], bool]:
    """Virtual users following the stages; (samples, VUs per second, truncated by the budget)."""
    stages = [(s, min(v, MAX_VUS)) for s, v in stages]
    total = min(sum(s for s, _ in stages), budget.time_left)
    vus_per_second: dict[int, int] = {}
    run = _Users(target, budget, think, timeout)
    users: dict[int, _User] = {}  # at most MAX_VUS, each with at most one connection
    try:
        while True:
            elapsed = time.perf_counter() - run.t0
            if elapsed >= total or run.done:
                break
            desired = vus_at(stages, elapsed)
            run.desired = desired
            second = int(elapsed)
            vus_per_second[second] = max(vus_per_second.get(second, 0), desired)
            for index in range(desired):
                user = users.get(index)
                if user is None or user.stopped:
                    users[index] = user = _User(index, run)
                    user.next()
            await asyncio.sleep(TICK)
        truncated = budget.exhausted
        run.done = True  # each user stops after its request in flight
        if run.active:
            run.idle = run.loop.create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.idle, timeout + 1)
    finally:
        run.done = True
        for user in users.values():
            user.stop()
    return run.samples, vus_per_second, truncated


# ------------------------------------------------------------------------------------------------ scenarios


async def rate_limit(target: Target, params: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """The playbook's curl loop: sequential bad logins until the first 429 or ``max_requests``."""
    statuses: list[int] = []
    samples: list[Sample] = []
    first_429 = None
    async with target.client(params["timeout"]) as http:
        t0 = time.perf_counter()
        for index in range(1, params["max_requests"] + 1):
            if not budget.take():
                break
            sample = await http.request(t0)
            samples.append(sample)
            statuses.append(sample.status)
            if sample.status == 429:
                first_429 = index
                break
            if params["interval"]:
                await asyncio.sleep(params["interval"])
    counts: dict[str, int] = {}
    for status in statuses:
        counts[str(status)] = counts.get(str(status), 0) + 1
    return {"first_429": first_429, "sent": len(statuses), "statuses": statuses, "status_counts": counts,
            "truncated": first_429 is None and len(statuses) < params["max_requests"],
            "stats": summary(samples), "series": per_second(samples)}


async def _hold(endpoint: Endpoint, index: int, interval: float, hold: float, sem: asyncio.Semaphore,
                t0: float) -> dict[str, Any]:
    """One slow client: a partial request, one more header line every ``interval`` seconds."""
    ctx = tls_context() if endpoint.scheme == "https" else None
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                endpoint.address, endpoint.port, ssl=ctx, server_hostname=endpoint.host if ctx else None), 5.0)
            writer.write(f"GET {endpoint.path} HTTP/1.1\r\nHost: {endpoint.host_header}\r\n"
                         "User-Agent: outsidein-slowloris\r\n".encode())
            await writer.drain()
        except (OSError, TimeoutError, ssl.SSLError):
            return {"opened": False}
    opened = time.perf_counter()
    closed_after = None
    try:
        while time.perf_counter() - t0 < hold:
            try:
                data = await asyncio.wait_for(reader.read(4096), min(interval, max(0.01, hold - (time.perf_counter()
                                                                                                   - t0))))
            except TimeoutError:
                writer.write(f"X-Slow-{index}: {int(time.perf_counter() * 1000) % 1000}\r\n".encode())
                await writer.drain()
                continue
            if not data:
                closed_after = time.perf_counter() - opened
                break
    except (OSError, ssl.SSLError):
        closed_after = time.perf_counter() - opened
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    return {"opened": True, "closed_after": closed_after}


async def slowloris(endpoint: Endpoint, target: Target, params: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """Hold ``connections`` partial requests for ``close_within`` + 1 s; probe with normal requests meanwhile."""
    hold = min(params["close_within"] + 1.0, budget.time_left)
    wanted = params["connections"]
    granted = sum(1 for _ in range(wanted) if budget.take())
    sem = asyncio.Semaphore(64)  # connection attempts in flight
    t0 = time.perf_counter()
    holders = [asyncio.create_task(_hold(endpoint, i, params["interval"], hold, sem, t0)) for i in range(granted)]
    probes: list[Sample] = []
    # Each probe is a new visitor: a fresh connection, as a user arriving during the attack would open.
    target = Target(target.endpoint, target.method, target.body, {**target.headers, "Connection": "close"})
    async with target.client(params["timeout"]) as http:
        await asyncio.sleep(min(0.5, hold / 4))
        while time.perf_counter() - t0 < hold - 0.2:
            if not budget.take():
                break
            probe_started = time.perf_counter()
            probes.append(await http.request(t0, timeout=min(params["timeout"], hold)))
            await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - probe_started)))
    results = await asyncio.gather(*holders)
    opened = [r for r in results if r["opened"]]
    closes = sorted(r["closed_after"] for r in opened if r["closed_after"] is not None)
    within = sum(1 for c in closes if c <= params["close_within"])
    return {"requested": wanted, "opened": len(opened), "failed_to_open": granted - len(opened),
            "closed_within": within, "closed_later": len(closes) - within,
            "still_open": len(opened) - len(closes), "close_p50_s": _round(percentile(closes, 50)),
            "close_max_s": _round(closes[-1] if closes else None), "held_s": round(hold, 2),
            "probes": len(probes), "probes_failed": sum(1 for p in probes if p.status == 0 or p.status >= 500),
            "probe_statuses": [p.status for p in probes], "truncated": granted < wanted,
            "stats": summary(probes), "series": per_second(probes)}


async def load(target: Target, scenario: ScenarioScope, budget: Budget) -> dict[str, Any]:
    """The stages, and how busy the generator itself was: ``generator.busy`` near 1.0 means its one core was
    saturated, so the latencies include its own queueing (see docs/benchmarks.md for its capacity)."""
    params = scenario.params
    cpu, wall = time.thread_time(), time.perf_counter()
    samples, vus, truncated = await run_stages(target, scenario.stages, budget, think=params["think_time"],
                                               timeout=params["timeout"])
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    return {"stages": [{"seconds": s, "vus": v} for s, v in scenario.stages], "truncated": truncated,
            "peak_vus": max(vus.values(), default=0), "stats": summary(samples), "series": per_second(samples, vus),
            "generator": {"cpu_s": round(cpu, 3), "busy": round(cpu / wall, 3) if wall > 0 else 0.0}}


async def recovery(target: Target, params: dict[str, Any], budget: Budget) -> dict[str, Any]:
    """Baseline latency, an attack burst, then one request every ``interval`` until ``consecutive`` are back."""
    baseline: list[Sample] = []
    async with target.client(params["timeout"]) as http:
        t0 = time.perf_counter()
        for _ in range(params["baseline_samples"]):
            if not budget.take():
                break
            baseline.append(await http.request(t0))
    good = [s.latency_ms for s in baseline if not s.error]
    if not good:
        return {"error": "no successful baseline request: the target is not healthy before the attack",
                "baseline": summary(baseline)}
    base = percentile(good, 50) or 0.0
    threshold = max(base * params["factor"], base + params["slack_ms"])
    attack_samples, _, truncated = await run_stages(
        target, [(0.05, params["attack_vus"]), (params["attack_seconds"], params["attack_vus"])], budget,
        timeout=params["timeout"])
    window = min(params["window"], budget.time_left)
    samples: list[Sample] = []
    recovered_after = None
    streak: list[Sample] = []
    async with target.client(params["timeout"]) as http:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < window:
            if not budget.take():
                truncated = True
                break
            left = window - (time.perf_counter() - t0)
            sample = await http.request(t0, timeout=max(0.05, min(params["timeout"], left)))
            samples.append(sample)
            if not sample.error and sample.latency_ms <= threshold and sample.t <= window:
                streak.append(sample)
                if len(streak) >= params["consecutive"]:
                    recovered_after = round(max(0.0, streak[0].t - streak[0].latency_ms / 1000.0), 3)
                    break
            else:
                streak = []
            await asyncio.sleep(params["interval"])
    return {"baseline_ms": round(base, 2), "threshold_ms": round(threshold, 2), "window_s": window,
            "recovered_after_s": recovered_after, "attack": summary(attack_samples), "truncated": truncated,
            "stats": summary(samples), "samples": [[round(s.t, 3), round(s.latency_ms, 2), s.status]
                                                   for s in samples[:2000]],
            "series": per_second(samples)}
