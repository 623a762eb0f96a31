"""Every report format, produced from a real evaluated audit of the bundled demo hosts and NGINX configuration:
SARIF against the official 2.1.0 schema, JUnit parsed and counted, OCSF fields, the Markdown comment limit,
and the HTML report rendered in a real headless Chromium."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

from outsidein.audit import AuditReport, evaluate
from outsidein.baseline import BaselineEntry
from outsidein.cli import main
from outsidein.evidence import Snapshot
from outsidein.models import Severity, Status
from outsidein.report.common import source_location
from outsidein.report.formats import FORMATS
from outsidein.report.html import render_html
from outsidein.report.junit import render_junit
from outsidein.report.markdown import GITHUB_COMMENT_LIMIT, render_markdown
from outsidein.report.ocsf import report_ocsf
from outsidein.report.progress import CollectionProgress, collection_progress
from outsidein.report.sarif import report_sarif
from outsidein.tickets import build_tickets, report_tickets
from outsidein.tickets.build import stored_view

SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
AUDIT_CLOCK = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    from outsidein.demo.local_targets import demo_hosts, demo_nginx
    from outsidein.host.collect import collect_hosts
    from outsidein.nginx.collect import collect_nginx

    nginx = [collect_nginx(n.name, n.config, environment=n.environment, nginx_binary=n.nginx_binary)
             for n in demo_nginx()]
    return Snapshot(collected_at=AUDIT_CLOCK, hosts=collect_hosts(demo_hosts()), nginx=nginx)


@pytest.fixture(scope="module")
def report(snapshot: Snapshot) -> AuditReport:
    report = evaluate(snapshot)
    assert report.findings and report.not_assessed  # the formats are exercised on real verdicts of each kind
    return report


# --- SARIF -------------------------------------------------------------------------------------------------------

def _validate_sarif(doc: object) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    validator.validate(doc)


def test_sarif_is_valid_and_maps_every_finding(report: AuditReport) -> None:
    doc = report_sarif(report, root=Path("/nonexistent-root"))
    _validate_sarif(doc)
    run = doc["runs"][0]
    results, rules = run["results"], run["tool"]["driver"]["rules"]
    assert len(results) == len(report.findings)
    assert {r["id"] for r in rules} == {f.check_id for f in report.findings}
    by_fp = {r["partialFingerprints"]["outsidein/v1"]: r for r in results}
    assert set(by_fp) == {f.fingerprint for f in report.findings}
    levels = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note", "REVIEW": "note"}
    for f in report.findings:
        result = by_fp[f.fingerprint]
        assert result["ruleId"] == f.check_id and rules[result["ruleIndex"]]["id"] == f.check_id
        assert result["level"] == levels[f.severity.value] and f.detail in result["message"]["text"]
        location = result["locations"][0]
        where = source_location(f.resource)
        if where is not None:  # an NGINX directive or a provisioning file line
            physical = location["physicalLocation"]
            assert physical["artifactLocation"]["uri"].endswith(Path(where.path).name)
            assert physical["region"]["startLine"] == where.line
        else:  # a host, a host:port
            assert location["logicalLocations"][0]["name"] == f.resource
    nginx = next(f for f in report.findings if f.check_id == "nginx-alias-traversal")
    assert by_fp[nginx.fingerprint]["locations"][0]["physicalLocation"]["region"]["startLine"] == 38
    host = next(f for f in report.findings if f.resource == "app-1:5432")
    assert "physicalLocation" not in by_fp[host.fingerprint]["locations"][0]
    rule = next(r for r in rules if r["id"] == "nginx-alias-traversal")
    assert nginx.remediation in rule["help"]["text"] and "Verify:" in rule["help"]["text"]
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert len(notes) == len(report.not_assessed)
    assert all(n["message"]["text"].startswith("not assessed") for n in notes)


def test_sarif_schema_rejects_a_broken_log(report: AuditReport) -> None:
    """The vendored schema really constrains the log (a wrong level fails), so the test above means something."""
    doc = report_sarif(report)
    doc["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        _validate_sarif(doc)


def test_sarif_relative_uris_inside_the_working_tree_and_suppressions(snapshot: Snapshot) -> None:
    plain = evaluate(snapshot)
    target = next(f for f in plain.findings if f.check_id == "nginx-alias-traversal")
    entry = BaselineEntry(target.fingerprint, "false_positive", "the alias is a symlink farm, reviewed")
    report = evaluate(snapshot, baseline={target.fingerprint: entry})
    root = Path(__file__).resolve().parents[1]
    doc = report_sarif(report, root=root)
    _validate_sarif(doc)
    results = doc["runs"][0]["results"]
    assert len(results) == len(report.findings) + 1
    suppressed = next(r for r in results if r["partialFingerprints"]["outsidein/v1"] == target.fingerprint)
    assert suppressed["suppressions"][0]["justification"].startswith("false_positive: the alias")
    artifact = suppressed["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": "src/outsidein/demo/nginx/conf.d/shop.conf", "uriBaseId": "SRCROOT"}


# --- JUnit -------------------------------------------------------------------------------------------------------

def test_junit_one_suite_per_layer_and_counts_match_the_report(report: AuditReport) -> None:
    root = ET.fromstring(render_junit(report))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [f"L{ls.layer.number:02d} {ls.layer.domain}" for ls in report.layers]
    cases = root.findall("testsuite/testcase")
    failing_keys = {(f.check_id, f.resource) for f in report.findings}
    result_keys = {(r.check_id, r.resource) for r in report.results}
    empty_layers = [ls for ls in report.layers
                    if not any(c.meta.layer == ls.layer.number for c in report.checks
                               if any(r.check_id == c.meta.id for r in report.results))]
    assert len(cases) == len(result_keys) + len(empty_layers) == int(root.get("tests", "-1"))
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == len(failing_keys) == int(root.get("failures", "-1"))
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert int(root.get("skipped", "-1")) == len(skipped)
    for suite in suites:
        children = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(children)
        assert int(suite.get("failures", "-1")) == sum(1 for c in children if c.find("failure") is not None)
    # A NOT_ASSESSED verdict is skipped with its reason; a FAIL carries severity, fix and verify.
    check, unassessed = report.not_assessed[0]
    case = next(c for c in cases if c.get("name") == f"{check.meta.id} [{unassessed.resource}]")
    assert unassessed.reason in (case.find("skipped").get("message") or "")  # type: ignore[union-attr]
    alias = next(f for f in report.findings if f.check_id == "nginx-alias-traversal")
    failure = next(c for c in failures if c.get("name") == f"nginx-alias-traversal [{alias.resource}]").find("failure")
    assert failure is not None and failure.get("type") == "HIGH"
    assert alias.detail in (failure.text or "") and alias.verify in (failure.text or "")
    # A verdict that passed is a plain test case.
    passed = {(r.check_id, r.resource) for r in report.results if r.status is Status.PASS} - failing_keys
    plain = [c for c in cases if c.find("failure") is None and c.find("skipped") is None]
    assert passed and len(plain) == len({k for k in passed
                                         if not any(r.status is not Status.PASS for r in report.results
                                                    if (r.check_id, r.resource) == k)})


# --- OCSF --------------------------------------------------------------------------------------------------------

def test_ocsf_detection_findings(report: AuditReport) -> None:
    events = report_ocsf(report)
    assert len(events) == len(report.findings)
    severity_ids = {Severity.CRITICAL: 5, Severity.HIGH: 4, Severity.MEDIUM: 3, Severity.LOW: 2, Severity.REVIEW: 1}
    for event, f in zip(events, report.findings, strict=True):
        assert (event["class_uid"], event["category_uid"], event["activity_id"], event["type_uid"]) == \
            (2004, 2, 1, 200401)
        assert event["severity_id"] == severity_ids[f.severity]
        assert event["finding_info"]["uid"] == f.fingerprint
        assert event["finding_info"]["title"] == f.title and event["finding_info"]["desc"] == f.detail
        assert event["resources"][0]["uid"] == f.resource
        assert f.remediation in event["remediation"]["desc"] and f.verify in event["remediation"]["desc"]
        assert event["metadata"]["product"]["name"] == "outsidein"
        assert event["metadata"]["version"].startswith("1.")
        assert event["time"] == int(AUDIT_CLOCK.timestamp() * 1000)
        assert event["status_id"] == 1
    json.dumps(events)  # serialisable as is


# --- Markdown ----------------------------------------------------------------------------------------------------

def test_markdown_comment_dashboard_and_groups(report: AuditReport) -> None:
    text = render_markdown(report)
    assert len(text) <= GITHUB_COMMENT_LIMIT and "Truncated" not in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2:4].isdigit()]
    assert [row.split("|")[1].strip() for row in rows] == [f"{n:02d}" for n in range(1, 13)]
    assert all(any(word in row for word in ("FAIL", "PASS", "REVIEW")) for row in rows)
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    present = [s.value for s in Severity if any(f.severity is s for f in report.findings)]
    assert [h.split()[1] for h in headings] == present  # worst first
    assert "<details><summary>" in text  # long groups are collapsed
    for f in report.findings:
        assert f.resource in text


def test_markdown_truncates_under_the_github_limit(report: AuditReport) -> None:
    many = [dataclasses.replace(f, resource=f"{f.resource}#{i}", fingerprint=f"{f.fingerprint}{i}")
            for i in range(40) for f in report.findings]
    big = dataclasses.replace(report, findings=many)
    text = render_markdown(big)
    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert "Truncated to fit" in text and f"of {len(many)} findings not shown" in text
    assert text.count("<details>") == text.count("</details>")


# --- HTML --------------------------------------------------------------------------------------------------------

def test_html_is_self_contained(report: AuditReport) -> None:
    page = render_html(report)
    for external in ("<link", "src=\"http", "src='http", "href=\"http", "@import", "url(http"):
        assert external not in page
    assert page.count('class="layer-row"') == 12
    assert page.count("data-severity=") == len(report.findings)
    assert "unassigned" in page and len(report_tickets(report)) == page.count("<tr><td><span class=\"sev\"")


def test_html_tickets_are_the_tickets_command_grouping(report: AuditReport) -> None:
    """One implementation: the HTML tickets are build_tickets' (`outsidein tickets`), owner choice included."""
    check = report.findings[0].check_id
    owners = ["web-team", "web-team", "platform"]
    findings = [dataclasses.replace(report.findings[0], resource=f"r{i}", fingerprint=f"fp{i}", owner=owner)
                for i, owner in enumerate(owners)]
    mixed = dataclasses.replace(report, findings=findings)
    built = build_tickets([stored_view(f) for f in findings], mixed.evaluated_at)
    assert [t.owner for t in built] == ["web-team"]  # the owner most of its resources have
    page = render_html(mixed)
    section = page[page.index('<section id="tickets">'):]
    row = section[section.index(f"<code>{check}</code>"):]
    row = row[:row.index("</tr>")]
    assert "<td>web-team</td>" in row and "platform" not in row
    assert f'<td class="num">{len(findings)}</td>' in row


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_html_renders_in_headless_chromium(report: AuditReport, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    browser = _chromium()
    if browser is None:
        pytest.fail("no headless Chromium installed: run scripts/system-deps", pytrace=False)
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert dom.count('class="layer-row"') == 12
    for ls in report.layers:
        assert f'data-layer="{ls.layer.number}"' in dom and ls.layer.domain.replace("&", "&amp;") in dom
    shot = tmp_path / "report.png"
    subprocess.run([*flags, "--window-size=1400,2000", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a rendered page, not a blank one


# --- the command line and progress -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "table"])
def test_cli_writes_every_format(fmt: str, snapshot: Snapshot, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "snapshot.json"
    snapshot.save(saved)
    out = tmp_path / f"report.{fmt}"
    assert main(["audit", "--from", str(saved), "--format", fmt, "--output", str(out)]) == 0
    written = out.read_text(encoding="utf-8")
    assert main(["audit", "--from", str(saved), "--format", fmt]) == 0
    captured = capsys.readouterr()
    assert captured.out == written  # stdout and --output carry the same report
    assert "collecting" not in captured.err  # no progress display outside a terminal
    if fmt in ("json", "sarif", "ocsf"):
        json.loads(written)
    elif fmt == "junit":
        ET.fromstring(written)
    elif fmt == "html":
        assert written.startswith("<!DOCTYPE html>")
    else:
        assert written.startswith("## outsidein audit")


def test_progress_lines_on_a_terminal_and_silence_elsewhere() -> None:
    buffer = StringIO()
    progress = CollectionProgress(Console(file=buffer, force_terminal=True, width=100))
    progress.start()
    assert progress.track("hosts", lambda: 42, 2, layers="layer 2")() == 42
    assert progress.track("NGINX", lambda: 0, 0)() == 0  # nothing in scope: no line
    progress.stop()
    text = buffer.getvalue()
    assert "hosts (2 targets, layer 2): done (" in text and "NGINX" not in text
    with collection_progress(enabled=False) as quiet:
        assert not quiet.enabled
        with collection_progress() as nested:
            assert nested is quiet  # the demo's AWS and local collections share one display
