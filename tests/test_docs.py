"""The documentation that is generated from code must match the code."""

from __future__ import annotations

from pathlib import Path

from outsidein.checks.registry import all_checks
from outsidein.cli import checks_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_checks_reference_is_current() -> None:
    assert (ROOT / "docs" / "checks.md").read_text() == checks_markdown(), \
        "docs/checks.md is stale: run `outsidein checks --markdown > docs/checks.md`"


def test_every_check_has_metadata_a_ticket_needs() -> None:
    for check in all_checks():
        meta = check.meta
        assert meta.title and meta.remediation and meta.verify, meta.id
        assert 1 <= meta.layer <= 12, meta.id
