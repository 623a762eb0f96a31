"""A check that meets evidence it did not foresee says so (NOT_ASSESSED with the error), never crashes the audit
and never reads PASS; the message is masked like any evidence text."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from outsidein.checks.registry import REGISTRY, target_check
from outsidein.models import Result, Severity, Status, passed


@dataclass
class Broken:
    name: str = "repo-1"
    missing: dict[str, str] = field(default_factory=dict)


def test_an_exception_in_a_check_is_not_assessed_with_its_reason() -> None:
    @target_check(source="test-only", id="test-only-broken", layer=5, title="t", severity=Severity.HIGH,
                  remediation="r", verify="v")
    def broken(target: Broken) -> Iterator[Result]:
        yield passed("test-only-broken", "first-resource")  # a partial PASS must not survive the error
        raise ValueError("unexpected record: password=hunter2hunter2")

    try:
        results = list(REGISTRY["test-only-broken"].run(Broken()))
    finally:
        del REGISTRY["test-only-broken"]
    assert [(r.status, r.resource) for r in results] == [(Status.NOT_ASSESSED, "repo-1")]
    assert "ValueError: unexpected record" in results[0].reason
    assert "hunter2hunter2" not in results[0].reason
