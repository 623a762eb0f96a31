"""Layer 12: attack simulation — the playbook's pass-criteria table, measured against an authorized target.

The checks read ``SimulationFacts`` (``outsidein.simulate.facts``): what ``outsidein simulate`` measured. A
scenario kind the scope did not include, a scenario that could not run, or one the run's budget cut short
before it proved anything is NOT_ASSESSED with the reason, never PASS.

Severities (the playbook's table gives pass indicators, not severities; these follow the layers they prove):

- ``sim-login-rate-limit`` CRITICAL, as layer 3's ``limit_req_zone (login) max 5 req/min``: no 429 within
  ``max_requests`` (default 50, the playbook's loop) bad logins, or the first 429 later than ``expect_by``
  (default 10: "about 5 a minute" plus a small burst). The first 429's request number is in the detail.
- ``sim-slowloris`` HIGH, as the NGINX timeouts it proves: fewer than ``closed_ratio`` (90 %) of the held
  partial connections closed by the server within ``close_within`` (10 s), or a normal request failing
  (transport error or 5xx) while they were held ("no service degradation").
- ``sim-load-thresholds`` MEDIUM when only the p95 latency threshold (500 ms) is missed — slow, still
  serving; HIGH when the error rate reaches its threshold (1 %) — requests fail: users see an outage.
- ``sim-spike-5xx`` HIGH: any 5xx, or errors at or above the threshold, under the spike ("no 5xx errors").
- ``sim-recovery`` HIGH: latency not back within ``window`` (120 s) of the attack's end, measured as
  ``consecutive`` requests in a row at or under max(baseline p50 × ``factor``, baseline + ``slack_ms``).

Details carry the thresholds crossed, not the measured numbers, so a finding keeps its fingerprint from run
to run; the numbers are in the evidence, on stderr of ``outsidein simulate`` and in its ``--chart``.
"""

from __future__ import annotations

from collections.abc import Iterator

from outsidein.checks.registry import SIMULATION, target_check
from outsidein.models import Result, Severity, fail, not_assessed, passed
from outsidein.simulate.facts import ScenarioFacts, SimulationFacts


def _unrun(check_id: str, scenario: ScenarioFacts) -> Result | None:
    if scenario.error:
        return not_assessed(check_id, scenario.resource, f"{scenario.name}: {scenario.error}")
    return None


def _pct(value: float) -> str:
    return f"{value * 100:g} %"


@target_check(
    source=SIMULATION, id="sim-login-rate-limit", layer=12, severity=Severity.CRITICAL, requires=("rate_limit",),
    title="Login endpoint not rate limited under a credential-stuffing burst (no HTTP 429)",
    remediation="Rate-limit the login route: limit_req_zone $binary_remote_addr zone=login_limit:10m rate=5r/m; "
                "and in its location limit_req zone=login_limit burst=3 nodelay; limit_req_status 429; "
                "(or the WAF's rate-based rule), then run the simulation again.",
    verify="for i in $(seq 1 50); do curl -s -o /dev/null -w '%{http_code}\\n' -X POST "
           "-d '{\"email\":\"test@test.com\",\"password\":\"wrong\"}' <login URL>; done  # expect 429 after ~5",
)
def sim_login_rate_limit(facts: SimulationFacts) -> Iterator[Result]:
    for scenario in facts.of("rate_limit"):
        unrun = _unrun("sim-login-rate-limit", scenario)
        if unrun:
            yield unrun
            continue
        result, params = scenario.result, scenario.params
        first, sent = result.get("first_429"), int(result.get("sent") or 0)
        if first is None and (result.get("truncated") or sent == 0):
            yield not_assessed("sim-login-rate-limit", scenario.resource,
                               f"the run's budget stopped the loop after {sent} request(s), before a verdict")
        elif first is None:
            counts = ", ".join(f"{k if k != '0' else 'error'} x{v}"
                               for k, v in sorted((result.get("status_counts") or {}).items()))
            yield fail("sim-login-rate-limit", scenario.resource,
                       f"no 429 within {sent} {scenario.method} requests (responses: {counts})",
                       environment=facts.environment)
        elif first > int(params.get("expect_by", 10)):
            yield fail("sim-login-rate-limit", scenario.resource,
                       f"first 429 at request {first}, later than request {params.get('expect_by', 10)}: the "
                       "limit is looser than about 5 requests a minute", environment=facts.environment)
        else:
            yield passed("sim-login-rate-limit", scenario.resource, environment=facts.environment)


@target_check(
    source=SIMULATION, id="sim-slowloris", layer=12, severity=Severity.HIGH, requires=("slowloris",),
    title="Slowloris: idle partial connections not closed within 10 s, or the service degraded",
    remediation="Close slow clients in NGINX: client_header_timeout 10s; client_body_timeout 10s; "
                "keepalive_timeout 5s 5s; send_timeout 10s; give worker_connections headroom (and limit_conn "
                "per address), then run the simulation again.",
    verify="slowhttptest -c 500 -H -g -o slowloris_report -i 10 -r 200 -t GET -u <URL> -x 24 -p 3  "
           "# expect connections closed within 10 s and the service available",
)
def sim_slowloris(facts: SimulationFacts) -> Iterator[Result]:
    for scenario in facts.of("slowloris"):
        unrun = _unrun("sim-slowloris", scenario)
        if unrun:
            yield unrun
            continue
        result, params = scenario.result, scenario.params
        opened = int(result.get("opened") or 0)
        if not opened:
            yield not_assessed("sim-slowloris", scenario.resource, "no slow connection could be opened")
            continue
        within = float(params.get("close_within", 10.0))
        problems = []
        if int(result.get("closed_within") or 0) < float(params.get("closed_ratio", 0.9)) * opened:
            problems.append(f"idle partial connections not closed by the server within {within:g} s")
        if int(result.get("probes_failed") or 0) or not result.get("probes"):
            problems.append("normal requests failed while the slow connections were held")
        if problems:
            yield fail("sim-slowloris", scenario.resource, "; ".join(problems), environment=facts.environment)
        else:
            yield passed("sim-slowloris", scenario.resource, environment=facts.environment)


def _stats(scenario: ScenarioFacts) -> tuple[int, float, float | None, int]:
    stats = scenario.result.get("stats") or {}
    return (int(stats.get("requests") or 0), float(stats.get("error_rate") or 0.0), stats.get("p95_ms"),
            int(stats.get("status_5xx") or 0))


@target_check(
    source=SIMULATION, id="sim-load-thresholds", layer=12, severity=Severity.MEDIUM, requires=("load",),
    title="Ramped load test misses its thresholds (p95 latency, error rate)",
    remediation="Find the bottleneck the ramp exposed (upstream workers, connection pools, database, "
                "autoscaling limits), fix or scale it, and run the load stages again until p95 < 500 ms and "
                "errors < 1 %.",
    verify="k6 run --out json=results.json k6_load_test.js  # expect thresholds p(95)<500 and rate<0.01 to pass",
)
def sim_load_thresholds(facts: SimulationFacts) -> Iterator[Result]:
    for scenario in facts.of("load"):
        unrun = _unrun("sim-load-thresholds", scenario)
        if unrun:
            yield unrun
            continue
        requests, error_rate, p95, _ = _stats(scenario)
        p95_limit = float(scenario.params.get("p95_ms", 500.0))
        rate_limit = float(scenario.params.get("error_rate", 0.01))
        if not requests:
            yield not_assessed("sim-load-thresholds", scenario.resource, "no request completed")
            continue
        problems = []
        if error_rate >= rate_limit:
            problems.append(f"error rate at or above {_pct(rate_limit)}")
        if p95 is None or p95 >= p95_limit:
            problems.append(f"p95 latency at or above {p95_limit:g} ms")
        if problems:
            yield fail("sim-load-thresholds", scenario.resource, "; ".join(problems), environment=facts.environment,
                       severity=Severity.HIGH if error_rate >= rate_limit else None)
        elif scenario.result.get("truncated"):
            yield not_assessed("sim-load-thresholds", scenario.resource,
                               "the run's budget ended the stages early: raise [simulation] max_requests")
        else:
            yield passed("sim-load-thresholds", scenario.resource, environment=facts.environment)


@target_check(
    source=SIMULATION, id="sim-spike-5xx", layer=12, severity=Severity.HIGH, requires=("spike",),
    title="Spike test: 5xx responses or errors under a sudden surge",
    remediation="Absorb spikes: autoscaling with warm capacity or a queue, upstream keepalive and enough "
                "workers, limit_req/limit_conn returning 429/503 early instead of timeouts, then spike again.",
    verify="k6 run k6_load_test.js  # spike stage to 500 VUs: expect no 5xx (and scaling activity in CloudWatch)",
)
def sim_spike_5xx(facts: SimulationFacts) -> Iterator[Result]:
    for scenario in facts.of("spike"):
        unrun = _unrun("sim-spike-5xx", scenario)
        if unrun:
            yield unrun
            continue
        requests, error_rate, _, status_5xx = _stats(scenario)
        rate_limit = float(scenario.params.get("error_rate", 0.01))
        if not requests:
            yield not_assessed("sim-spike-5xx", scenario.resource, "no request completed")
            continue
        problems = []
        if status_5xx:
            problems.append("5xx responses under the spike")
        if error_rate >= rate_limit:
            problems.append(f"error rate at or above {_pct(rate_limit)} under the spike")
        if problems:
            yield fail("sim-spike-5xx", scenario.resource, "; ".join(problems), environment=facts.environment)
        elif scenario.result.get("truncated"):
            yield not_assessed("sim-spike-5xx", scenario.resource,
                               "the run's budget ended the spike early: raise [simulation] max_requests")
        else:
            yield passed("sim-spike-5xx", scenario.resource, environment=facts.environment)


@target_check(
    source=SIMULATION, id="sim-recovery", layer=12, severity=Severity.HIGH, requires=("recovery",),
    title="Latency not back to baseline within the recovery window after an attack",
    remediation="Make the service shed and drain load: bounded upstream queues (listen backlog, worker "
                "queues), timeouts that cancel abandoned work (proxy_read_timeout, request deadlines), and "
                "autoscaling that scales back; then run the recovery scenario again.",
    verify="outsidein simulate -c outsidein.toml  # the recovery scenario: expect recovered_after_s within the "
           "window (2 minutes)",
)
def sim_recovery(facts: SimulationFacts) -> Iterator[Result]:
    for scenario in facts.of("recovery"):
        unrun = _unrun("sim-recovery", scenario)
        if unrun:
            yield unrun
            continue
        result = scenario.result
        window = float(scenario.params.get("window", 120.0))
        if result.get("recovered_after_s") is not None:
            yield passed("sim-recovery", scenario.resource, environment=facts.environment)
        elif result.get("truncated"):
            yield not_assessed("sim-recovery", scenario.resource,
                               "the run's budget ended the recovery measurement early")
        else:
            yield fail("sim-recovery", scenario.resource,
                       f"latency not back to baseline within {window:g} s of the attack's end",
                       environment=facts.environment)
