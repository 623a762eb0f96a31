"""Builders the store tests, the kill -9 child and bench/store_bench.py share (no tests here).

``nginx_report`` evaluates a real Snapshot (an NGINX configuration as text) so findings, PASS verdicts and
NOT_ASSESSED results come from the real checks; ``synthetic_report`` builds an AuditReport of N findings
without evaluating anything, for volume.
"""

from __future__ import annotations

import datetime as dt

from outsidein.audit import AuditReport, evaluate
from outsidein.evidence import NginxEvidence, Record, Snapshot
from outsidein.models import Finding, Result, Severity, Status, fingerprint

WEAK = "events {}\nhttp { server_tokens on; server { listen 80; server_name a; } }\n"
FIXED = "events {}\nhttp { server_tokens off; server { listen 80; server_name a; } }\n"
MAIN = "/etc/nginx/nginx.conf"
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def nginx_evidence(name: str, text: str | None, environment: str = "prod") -> NginxEvidence:
    record = Record(data=text) if text is not None else Record(error="permission denied")
    return NginxEvidence(name=name, main=f"/srv/{name}{MAIN}", environment=environment,
                         files={f"/srv/{name}{MAIN}": record})


def nginx_report(at: dt.datetime, **configs: str | None) -> AuditReport:
    """One audit of NGINX configurations by name (text, or None for an unreadable file)."""
    return evaluate(Snapshot(collected_at=at, nginx=[nginx_evidence(n, t) for n, t in configs.items()]),
                    "test snapshot")


def synthetic_report(count: int, at: dt.datetime, *, offset: int = 0, check: str = "synthetic-open-port",
                     severity: Severity = Severity.HIGH) -> AuditReport:
    """``count`` findings of one check over resources r-<offset>…; each resource also has a FAIL result, so the
    check counts as assessed for them."""
    findings, results = [], []
    for i in range(offset, offset + count):
        resource, region, env = f"sg-{i:08x}", "us-east-1", ("prod", "staging", "dev")[i % 3]
        detail = f"port {i % 65536} open to 0.0.0.0/0"
        findings.append(Finding(check_id=check, layer=1, severity=severity, title="Port open to the internet",
                                resource=resource, region=region, environment=env, detail=detail,
                                remediation="Close it.", verify=f"nc -zv {resource} {i % 65536}", found_at=at,
                                fingerprint=fingerprint(check, resource, region, detail)))
        results.append(Result(check, Status.FAIL, resource, region, env, detail))
    return AuditReport(evaluated_at=at, source="synthetic", account_id="123456789012", regions=("us-east-1",),
                       layers=[], findings=findings, not_assessed=[], results=results)
