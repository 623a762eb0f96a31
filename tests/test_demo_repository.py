"""The demo's shop repository (layers 5, 10 and 11): built for real with git, collected by the real collectors,
evaluated by the real checks. Every planted mistake is found, no fake secret is ever stored raw, and two runs
give the same findings (same fingerprints)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from outsidein.audit import AuditReport, evaluate
from outsidein.components.collect import collect_components
from outsidein.demo.repository import SECRETS, DemoRepository, demo_repository
from outsidein.evidence import Snapshot
from outsidein.models import Severity
from outsidein.pipelines.collect import collect_pipelines
from outsidein.scope import Scope
from outsidein.secrets.collect import collect_repositories

COMMIT = r"@[0-9a-f]{12}$"  # history findings are path:line@commit; compared here by path:line


def audit(demo: DemoRepository) -> tuple[Snapshot, AuditReport]:
    repos = (demo.repository,)
    snapshot = Snapshot(collected_at=datetime.now(UTC).replace(microsecond=0),
                        repositories=collect_repositories(repos),
                        components=collect_components(Scope(aws=None, repositories=repos, osv=demo.osv)),
                        pipelines=collect_pipelines(Scope(aws=None, repositories=repos)))
    return snapshot, evaluate(snapshot)


@pytest.fixture(scope="module")
def shop() -> tuple[Path, Snapshot, AuditReport, float]:
    started = time.monotonic()
    with demo_repository() as demo:
        built = time.monotonic() - started
        snapshot, report = audit(demo)
        return demo.repository.path, snapshot, report, built


def planted(path: Path) -> set[tuple[str, str, Severity]]:
    wf, dockerfile = f"{path}/.github/workflows/ci.yml", f"{path}/Dockerfile"
    return {
        # layer 5
        ("secrets-in-tree", f"{path}/shop/settings.py:26", Severity.CRITICAL),
        ("secrets-in-history", f"{path}/config/aws.yml:3", Severity.HIGH),
        ("secrets-in-history", f"{path}/config/aws.yml:4", Severity.HIGH),
        ("secrets-in-history", f"{path}/.env:1", Severity.HIGH),
        ("secrets-in-history", f"{path}/.env:2", Severity.HIGH),
        ("secrets-env-file-committed", f"{path}/.env", Severity.HIGH),
        ("secrets-gitignore", f"{path}/.gitignore", Severity.MEDIUM),
        ("secrets-precommit-scan", f"{path}/.pre-commit-config.yaml", Severity.MEDIUM),
        ("secrets-in-tree", f"{dockerfile}:5", Severity.CRITICAL),  # rotate it; layer 11 judges the build
        # layer 10
        ("components-vulnerable-package", "Django@3.2.12", Severity.CRITICAL),
        ("components-vulnerable-package", "lodash@4.17.20", Severity.HIGH),
        ("components-vulnerable-package", "requests@2.25.1", Severity.MEDIUM),
        ("components-image-latest", "redis:latest", Severity.HIGH),
        # layer 11
        ("cicd-script-injection", f"{wf}:39", Severity.CRITICAL),
        ("cicd-action-unpinned", f"{wf}:28", Severity.HIGH),
        ("cicd-gate-non-blocking", f"{wf}:28", Severity.HIGH),
        ("cicd-gate-missing", f"{path}/.github/workflows", Severity.HIGH),
        ("dockerfile-secret-env", f"{dockerfile}:5", Severity.CRITICAL),
        ("dockerfile-root-user", f"{dockerfile}:1", Severity.HIGH),
        ("dockerfile-base-unpinned", f"{dockerfile}:1", Severity.LOW),
    }


def test_layers_5_10_11_fail_with_the_planted_findings(shop: tuple[Path, Snapshot, AuditReport, float]) -> None:
    path, _, report, _ = shop
    layers = {status.layer.number: status.status for status in report.layers}
    assert (layers[5], layers[10], layers[11]) == ("FAIL", "FAIL", "FAIL")
    found = {(f.check_id, re.sub(COMMIT, "", f.resource), f.severity) for f in report.findings}
    assert planted(path) <= found, sorted(planted(path) - found)
    assert found <= planted(path), f"findings nobody planted: {sorted(found - planted(path))}"
    assert not [r for _, r in report.not_assessed if r.check_id.startswith(("secrets-", "components-", "cicd-",
                                                                             "dockerfile-"))]


def test_each_planted_secret_and_advisory_is_named(shop: tuple[Path, Snapshot, AuditReport, float]) -> None:
    path, _, report, _ = shop
    details: dict[tuple[str, str], list[str]] = {}
    for f in report.findings:  # history resources are path:line@commit; keyed here by file
        file = re.sub(COMMIT, "", f.resource).rsplit(":", 1)[0] if re.search(COMMIT, f.resource) else f.resource
        details.setdefault((f.check_id, file), []).append(f.detail)
    history = " ".join(details[("secrets-in-history", f"{path}/config/aws.yml")])
    assert "aws-access-key-id AKIA…" in history and "aws-secret-access-key" in history
    assert {d.split(" ")[0] for d in details[("secrets-in-history", f"{path}/.env")]} == {"database-url-password",
                                                                                          "generic-secret"}
    assert "stripe-live-key sk_l…" in details[("secrets-in-tree", f"{path}/shop/settings.py:26")][0]
    assert "deleted since" in details[("secrets-env-file-committed", f"{path}/.env")][0]
    assert details[("secrets-gitignore", f"{path}/.gitignore")] == [
        "not ignored: .env.*, *.key, *.p12, *.pfx, secrets.yaml, secrets.json"]
    gates = " ".join(d for (check, _), ds in details.items() if check == "cicd-gate-missing" for d in ds)
    assert "no SAST gate" in gates and "no secret scan gate" in gates
    assert "GHSA-2gwj-7jmv-h26r" in details[("components-vulnerable-package", "Django@3.2.12")][0]
    assert "fixed in 4.17.21" in details[("components-vulnerable-package", "lodash@4.17.20")][0]
    assert "fixed in 2.31.0" in details[("components-vulnerable-package", "requests@2.25.1")][0]
    injection = [d for (check, _), ds in details.items() if check == "cicd-script-injection" for d in ds]
    assert injection == ["github.event.issue.title is expanded into the script of job triage"]
    # the OSV database was imported at this run: not stale
    assert report.passed["components-osv-database-stale"] == 1


def test_no_fake_secret_is_stored_raw(shop: tuple[Path, Snapshot, AuditReport, float]) -> None:
    path, snapshot, report, _ = shop
    # they are really in the repository (tree or history), or this test would prove nothing
    log = subprocess.run(["git", "-C", str(path), "log", "--all", "-p"], capture_output=True, text=True,
                         check=True).stdout
    assert all(value in log for value in SECRETS.values())
    evidence = json.dumps(snapshot.to_json())
    shown = json.dumps([[f.resource, f.detail, f.verify] for f in report.findings] +
                       [[r.resource, r.detail] for r in report.results], default=str)
    for name, value in SECRETS.items():
        assert value not in evidence, name
        assert value not in shown, name
        assert value[4:] not in evidence and value[4:] not in shown, name  # nor past the mask's 4-character prefix


def test_two_runs_give_the_same_fingerprints(shop: tuple[Path, Snapshot, AuditReport, float]) -> None:
    _, _, first, _ = shop
    with demo_repository() as demo:
        _, second = audit(demo)
    assert sorted(f.fingerprint for f in first.findings) == sorted(f.fingerprint for f in second.findings)
    assert len(first.findings) == len({f.fingerprint for f in first.findings})


def test_builds_fast(shop: tuple[Path, Snapshot, AuditReport, float]) -> None:
    assert shop[3] < 2.0


def test_without_git_the_folder_is_still_handed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("outsidein.demo.repository.shutil.which", lambda name: None)
    with demo_repository() as demo:
        assert (demo.repository.path / "requirements.txt").is_file()
        assert not (demo.repository.path / ".git").exists()
        _, report = audit(demo)
    unassessed = {r.check_id for _, r in report.not_assessed}
    assert {"secrets-in-history", "secrets-env-file-committed", "secrets-gitignore"} <= unassessed
    assert {status.layer.number: status.status for status in report.layers}[10] == "FAIL"
