"""The findings history on SQLite and on a real PostgreSQL cluster started by the test.

Lifecycle across several audits of a changing NGINX configuration (real checks over real Snapshots), accepted
risks and their expiry, the reviewed baseline, due dates and severity changes, overdue escalation, migrations,
concurrent writers, and a writer killed with SIGKILL in the middle of its transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from outsidein.baseline import BaselineEntry
from outsidein.cli import main
from outsidein.models import Severity
from outsidein.store import Store, StoreError, sqlite_url
from outsidein.store.schema import LATEST, audits, findings, migrate, observations, schema_version
from tests.test_store_support import FIXED, T0, WEAK, nginx_report, synthetic_report

ROOT = Path(__file__).resolve().parents[1]
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A throwaway cluster; its folder is outside pytest's basetemp, which a concurrent pytest run may chmod 700
    (the postgres user must reach it)."""
    from tests.servers import postgres_server

    base = Path(tempfile.mkdtemp(prefix="outsidein-store-pg-"))
    base.chmod(0o755)
    try:
        with postgres_server(base) as pg:
            yield f"postgresql+psycopg://{pg.user}:{pg.password}@127.0.0.1:{pg.port}/{pg.database}"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "state.db")
    else:
        url = request.getfixturevalue("pg_url")
        engine = create_engine(url)
        with engine.begin() as conn:  # a fresh schema per test
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    with Store(url) as s:
        yield s


def _by_check(store: Store, check: str) -> list[str]:
    return sorted(f.status for f in store.findings() if f.check_id == check)


def test_lifecycle_new_open_resolved_reopened(store: Store) -> None:
    first = store.record(nginx_report(T0, web=WEAK))
    assert first.new > 1 and first.resolved == 0
    assert _by_check(store, "nginx-server-tokens") == ["new"]
    second = store.record(nginx_report(T0 + DAY, web=WEAK))
    assert second.new == 0 and _by_check(store, "nginx-server-tokens") == ["open"]
    fixed = store.record(nginx_report(T0 + 2 * DAY, web=FIXED))
    assert fixed.resolved == 1 and _by_check(store, "nginx-server-tokens") == ["resolved"]
    assert {f.status for f in store.findings() if f.check_id != "nginx-server-tokens"} == {"open"}
    again = store.record(nginx_report(T0 + 3 * DAY, web=WEAK))
    assert again.reopened == 1
    tokens = next(f for f in store.findings() if f.check_id == "nginx-server-tokens")
    assert tokens.status == "reopened" and tokens.times_reopened == 1 and tokens.first_seen == T0
    assert tokens.last_seen == T0 + 3 * DAY and tokens.owner == "unassigned"
    assert [a.id for a in store.audits()] == [first.audit_id, second.audit_id, fixed.audit_id, again.audit_id]
    diff = store.diff()
    assert [f.check_id for f in diff.reopened] == ["nginx-server-tokens"] and not diff.new and not diff.fixed
    diff = store.diff(second.audit_id, fixed.audit_id)
    assert [f.check_id for f in diff.fixed] == ["nginx-server-tokens"]
    assert {f.fingerprint for f in store.diff(None, first.audit_id).new} == {
        f.fingerprint for f in store.findings() if f.first_audit == first.audit_id}


def test_not_assessed_and_out_of_scope_never_resolve(store: Store) -> None:
    store.record(nginx_report(T0, web=WEAK, api=WEAK))
    before = {f.fingerprint: f.status for f in store.findings()}
    # web unreadable: every web check NOT_ASSESSED; api dropped from the scope altogether.
    later = store.record(nginx_report(T0 + DAY, web=None))
    assert later.resolved == 0 and later.findings == 0
    assert {f.fingerprint: f.status for f in store.findings()} == before
    # api back in scope and fixed, web still unreadable: the check could not look at part of the place, so
    # (conservatively) nothing of that check resolves yet.
    store.record(nginx_report(T0 + 2 * DAY, web=None, api=FIXED))
    statuses = {(f.resource.split("/")[2], f.check_id): f.status for f in store.findings()}
    assert statuses[("api", "nginx-server-tokens")] == "new"
    # Both assessed, api fixed: api's finding resolves, web's stays open.
    store.record(nginx_report(T0 + 3 * DAY, web=WEAK, api=FIXED))
    statuses = {(f.resource.split("/")[2], f.check_id): f.status for f in store.findings()}
    assert statuses[("api", "nginx-server-tokens")] == "resolved"
    assert statuses[("web", "nginx-server-tokens")] == "open"
    assert all(s == "open" for (target, _), s in statuses.items() if target == "web")


def test_accept_with_expiry_then_open_again(store: Store) -> None:
    store.record(nginx_report(T0, web=WEAK))
    fp = next(f.fingerprint for f in store.findings() if f.check_id == "nginx-server-tokens")
    with pytest.raises(StoreError, match="no finding"):
        store.accept("ffffffffffff", reason="x", by="y", expires=dt.date(2026, 2, 1), now=T0)
    with pytest.raises(StoreError, match="in the past"):
        store.accept(fp, reason="x", by="y", expires=dt.date(2025, 2, 1), now=T0)
    accepted = store.accept(fp[:10], reason="legacy clients need it", by="ciso@example.com",
                            expires=dt.date(2026, 1, 10), now=T0)
    assert accepted.status == "accepted" and accepted.accepted_by == "ciso@example.com"
    kept = store.record(nginx_report(T0 + 2 * DAY, web=WEAK))  # 2026-01-07: still accepted
    assert kept.accepted == 1 and store.get(fp).status == "accepted"  # type: ignore[union-attr]
    # Read on 2026-01-11 without a new audit, the acceptance has ended: the finding counts as open again.
    assert fp in {f.fingerprint for f in store.open_findings(dt.datetime(2026, 1, 11, tzinfo=dt.UTC))}
    after = store.record(nginx_report(dt.datetime(2026, 1, 11, tzinfo=dt.UTC), web=WEAK))
    assert after.expired == 1 and store.get(fp).status == "open"  # type: ignore[union-attr]


def test_baseline_suppressed_findings_are_accepted(store: Store) -> None:
    report = nginx_report(T0, web=WEAK)
    fp = next(f.fingerprint for f in report.findings if f.check_id == "nginx-server-tokens")
    entry = BaselineEntry(fingerprint=fp, status="false_positive", reason="tokens hidden by the CDN")
    from outsidein.audit import evaluate
    from outsidein.evidence import Snapshot
    from tests.test_store_support import nginx_evidence

    suppressed = evaluate(Snapshot(collected_at=T0, nginx=[nginx_evidence("web", WEAK)]), "t", {fp: entry})
    assert [s.finding.fingerprint for s in suppressed.suppressed] == [fp]
    stored = store.record(suppressed)
    found = store.get(fp)
    assert stored.accepted == 1 and found is not None and found.status == "accepted"
    assert found.accepted_by == "baseline" and "tokens hidden by the CDN" in (found.accepted_reason or "")
    assert fp not in {f.fingerprint for f in store.open_findings(T0)}


def test_due_dates_overdue_and_severity_change(store: Store) -> None:
    report = synthetic_report(3, T0, severity=Severity.HIGH)
    store.record(report)
    f = store.findings()[0]
    assert f.due == T0 + dt.timedelta(days=7)
    later = T0 + dt.timedelta(days=8)
    escalated = store.record(synthetic_report(3, later, severity=Severity.HIGH))
    assert escalated.overdue == 3 and all(x.overdue(later) for x in store.open_findings(later))
    critical = replace(report, evaluated_at=T0 + DAY,
                       findings=[replace(report.findings[0], severity=Severity.CRITICAL), *report.findings[1:]])
    store.record(critical)
    raised = store.get(report.findings[0].fingerprint)
    assert raised is not None and raised.severity is Severity.CRITICAL and raised.due == T0 + dt.timedelta(hours=24)
    assert store.open_findings(T0 + 2 * DAY)[0].fingerprint == raised.fingerprint  # overdue first


def test_migrations_are_versioned_and_a_newer_store_is_refused(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "state.db")
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        assert conn.execute(select(schema_version.c.version)).scalar() == LATEST
        assert migrate(conn) == LATEST  # idempotent
        calls: list[int] = []
        assert migrate(conn, [(1, lambda c: None), (2, lambda c: calls.append(2))]) == 2
        assert calls == [2]
        conn.execute(schema_version.update().values(version=LATEST + 5))
    with pytest.raises(StoreError, match="schema is version"):
        Store(url)
    engine.dispose()


def _writer_script(url: str, offset: int, count: int, kill_marker: bool = False) -> str:
    return textwrap.dedent(f"""
        import datetime as dt, sys
        from outsidein.store import Store
        from tests.test_store_support import synthetic_report
        report = synthetic_report({count}, dt.datetime(2026, 1, 5, tzinfo=dt.UTC), offset={offset})
        def progress(done):
            if {kill_marker}:
                print("writing", done, flush=True)
                import time; time.sleep(30)
        with Store({url!r}) as store:
            store.record(report, progress=progress)
        print("done", flush=True)
    """)


def _run(script: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_audits_lose_nothing(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "sqlite":
        url = sqlite_url(tmp_path / "state.db")
    else:
        url = request.getfixturevalue("pg_url")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    # Six writers at once; each shares half its findings with the next one (and, assessing the same check in
    # the same region, resolves what the audit stored before it did not see).
    procs = [_run(_writer_script(url, i * 500, 1000)) for i in range(6)]
    for proc in procs:
        _out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    with Store(url) as store:
        records = store.audits()
        assert len(records) == 6 and len(store.findings()) == 3500
        assert sum(a.findings for a in records) == 6000 and sum(a.new for a in records) == 3500
        engine = create_engine(url)
        with engine.connect() as conn:  # every sighting and every resolution of every audit is there
            assert conn.execute(select(func.count()).select_from(observations)).scalar() == \
                6000 + sum(a.resolved for a in records)
        engine.dispose()
        last = records[-1]
        assert sum(1 for f in store.findings() if f.status != "resolved") == 1000  # what the last audit saw
        assert all(f.last_audit == last.id for f in store.findings() if f.status != "resolved")


def test_kill_9_mid_write_leaves_the_store_consistent(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "state.db")
    with Store(url) as store:
        store.record(synthetic_report(10, T0))
    proc = _run(_writer_script(url, 100, 30_000, kill_marker=True))
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the child is inside its transaction, rows written but not committed
    assert line.startswith("writing"), proc.stderr.read() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with Store(url) as store:
        assert store.integrity_check() == "ok"
        assert [a.findings for a in store.audits()] == [10]
        assert len(store.findings()) == 10
        assert store.record(synthetic_report(10, T0 + DAY)).audit_id == 2  # still writable
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audits)).scalar() == 2
        assert conn.execute(select(func.count()).select_from(findings)).scalar() == 10
    engine.dispose()


def _scope(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "outsidein.toml"
    path.write_text(textwrap.dedent("""
        [[owners]]
        check = "nginx-server-tokens"
        owner = "web-team"

        [[owners]]
        environment = "prod"
        owner = "platform"
    """) + extra)
    return path


def _snapshot(tmp_path: Path, at: dt.datetime, text: str, name: str = "snap.json") -> Path:
    from outsidein.evidence import Snapshot
    from tests.test_store_support import nginx_evidence

    path = tmp_path / name
    Snapshot(collected_at=at, nginx=[nginx_evidence("web", text)]).save(path)
    return path


def test_cli_stores_by_default_and_history_diff_accept(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OUTSIDEIN_STORE", raising=False)
    config = _scope(tmp_path)
    first = _snapshot(tmp_path, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), WEAK, "1.json")
    args = ["audit", "--config", str(config), "--format", "json", "--output", str(tmp_path / "r.json")]
    assert main([*args, "--from", str(first)]) == 0
    assert (tmp_path / ".outsidein" / "state.db").is_file()
    assert "stored as audit #1" in capsys.readouterr().err
    # A year later nothing is fixed: every finding is overdue and the overdue gate trips.
    second = _snapshot(tmp_path, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), WEAK, "2.json")
    assert main([*args, "--from", str(second), "--fail-on-overdue"]) == 1
    err = capsys.readouterr().err
    assert "ESCALATED" in err and "OVERDUE" in err and "--fail-on-overdue" in err
    assert main([*args, "--from", str(second), "--no-store"]) == 0
    assert main(["history", "--config", str(config), "--format", "json"]) == 0
    history = json.loads(capsys.readouterr().out)["audits"]
    assert [a["id"] for a in history] == [1, 2] and history[1]["overdue"] == history[1]["findings"] > 0
    assert main(["diff", "--config", str(config), "--format", "json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    assert diff["summary"]["new"] == 0 and diff["summary"]["overdue"] == history[1]["findings"]
    owners = {f["check_id"]: f["owner"] for f in diff["overdue"]}
    assert owners["nginx-server-tokens"] == "web-team" and owners["nginx-x-frame-options"] == "platform"
    tokens = next(f for f in diff["overdue"] if f["check_id"] == "nginx-server-tokens")
    assert main(["accept", tokens["fingerprint"], "--config", str(config), "--reason", "CDN strips it",
                 "--by", "alice", "--expires", "2099-01-01"]) == 0
    assert main(["diff", "1", "2", "--config", str(config)]) == 0
    table = capsys.readouterr().out
    assert "audit #1 -> audit #2" in table and "OVERDUE" in table
    assert main(["history", "--store", str(tmp_path / "missing-dir" / "x.db")]) == 0  # a new, empty store
    assert "no audit stored yet" in capsys.readouterr().out


def test_report_shows_first_seen_due_owner_state_and_overdue_first(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """What the user sees once audits are stored: a finding first seen in an earlier audit keeps that first-seen
    and due date (first seen + SLA), is marked overdue past it and listed first; owners come from the rules."""
    monkeypatch.delenv("OUTSIDEIN_STORE", raising=False)
    config = _scope(tmp_path)
    day1, day60 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC), dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    first = _snapshot(tmp_path, day1, FIXED, "1.json")  # everything but nginx-server-tokens
    second = _snapshot(tmp_path, day60, WEAK, "2.json")  # the same findings, plus nginx-server-tokens (new)
    base = ["audit", "--config", str(config)]
    assert main([*base, "--from", str(first), "--format", "json", "-o", str(tmp_path / "1.report.json")]) == 0
    assert main([*base, "--from", str(second), "--format", "json", "-o", str(tmp_path / "2.report.json")]) == 0
    report = json.loads((tmp_path / "2.report.json").read_text())
    found = report["findings"]
    late = [f for f in found if f["overdue"]]
    # MEDIUM (30 days) first seen on day 1 is overdue on day 60; LOW (90 days) is not; the new one is not.
    assert late and {f["severity"] for f in late} == {"MEDIUM"} and report["summary"]["overdue"] == len(late)
    assert found[:len(late)] == late  # overdue listed first
    for f in late:
        assert f["first_seen"] == day1.isoformat() and f["due"] == (day1 + dt.timedelta(days=30)).isoformat()
        assert f["state"] == "open" and f["found_at"] == day60.isoformat()
    low = [f for f in found if f["severity"] == "LOW"]
    assert low and all(f["first_seen"] == day1.isoformat() and not f["overdue"] for f in low)
    assert all(f["due"] == (day1 + dt.timedelta(days=90)).isoformat() for f in low)
    tokens = next(f for f in found if f["check_id"] == "nginx-server-tokens")
    assert tokens["state"] == "new" and tokens["first_seen"] == day60.isoformat() and not tokens["overdue"]
    assert tokens["owner"] == "web-team"  # the check rule comes first
    assert {f["owner"] for f in found if f["check_id"] != "nginx-server-tokens"} == {"platform"}  # prod

    # The table: an escalation line, every OVERDUE row before any other, first-seen and owner on each row.
    assert main([*base, "--from", str(second), "-o", str(tmp_path / "table.txt")]) == 0
    table = (tmp_path / "table.txt").read_text()
    assert f"ESCALATED: {len(late)} finding(s) past their due date" in table
    rows = [line for line in table.splitlines() if line.startswith(("MEDIUM ", "LOW "))]
    marks = ["OVERDUE" in row for row in rows]
    assert len(rows) == len(found) and marks == [True] * len(late) + [False] * (len(found) - len(late))
    assert table.index("[nginx-x-frame-options]") < table.index("[nginx-server-tokens]")
    assert all(" 2025-01-01 " in row and " platform " in row for row in rows[:len(late)])
    assert any(" 2025-03-01 " in row and " web-team " in row and "server_tokens on" in row for row in rows)

    # HTML: the findings table and the tickets section show the owner and mark the overdue.
    assert main([*base, "--from", str(second), "--format", "html", "-o", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    tickets = page[page.index('<section id="tickets"'):]
    tickets = tickets[:tickets.index("</section>")]
    assert "web-team" in tickets and "platform" in tickets and "OVERDUE" in tickets
    findings_html = page[page.index('<section id="findings"'):page.index('<section id="tickets"')]
    assert findings_html.count('class="overdue"') == len(late) and "web-team" in findings_html
    assert findings_html.index('class="overdue"') < findings_html.index("web-team")  # overdue rows first


def test_without_a_store_owners_still_come_from_the_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OUTSIDEIN_STORE", raising=False)
    config = _scope(tmp_path)
    snap = _snapshot(tmp_path, T0, WEAK)
    out = tmp_path / "r.json"
    assert main(["audit", "--config", str(config), "--from", str(snap), "--no-store", "--format", "json",
                 "-o", str(out)]) == 0
    assert not (tmp_path / ".outsidein").exists()
    found = json.loads(out.read_text())["findings"]
    assert {f["check_id"]: f["owner"] for f in found}["nginx-server-tokens"] == "web-team"
    assert all(f["state"] is None and not f["overdue"] and f["first_seen"] == f["found_at"] == T0.isoformat()
               for f in found)
    assert all(f["due"] == (T0 + Severity(f["severity"]).sla).isoformat() for f in found)  # type: ignore[operator]


def test_demo_and_no_scope_do_not_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OUTSIDEIN_STORE", raising=False)
    monkeypatch.delenv("OUTSIDEIN_CONFIG", raising=False)
    snap = _snapshot(tmp_path, T0, WEAK)
    assert main(["audit", "--from", str(snap), "--output", str(tmp_path / "r.txt")]) == 0
    assert not (tmp_path / ".outsidein").exists()
    assert main(["history"]) == 2  # no store to read
    assert main(["audit", "--from", str(snap), "--output", str(tmp_path / "r.txt"),
                 "--store", str(tmp_path / "explicit.db")]) == 0
    with Store(sqlite_url(tmp_path / "explicit.db")) as store:
        assert len(store.audits()) == 1


def test_scope_store_keys(tmp_path: Path) -> None:
    from outsidein.scope import ScopeError, load_scope

    config = _scope(tmp_path, '\n[store]\npath = "history/audits.db"\ndefault_owner = "secops"\n')
    scope = load_scope(config)
    assert scope.store.path == tmp_path / "history" / "audits.db" and scope.store.default_owner == "secops"
    bad = tmp_path / "bad.toml"
    bad.write_text('[store]\nurl = "sqlite:///a.db"\npath = "b.db"\n')
    with pytest.raises(ScopeError, match="both url and path"):
        load_scope(bad)
    bad.write_text('[[owners]]\nlayer = 13\nowner = "x"\n')
    with pytest.raises(ScopeError, match="layer"):
        load_scope(bad)
    bad.write_text('[[owners]]\nlayer = 3\n')
    with pytest.raises(ScopeError, match="owner"):
        load_scope(bad)


def test_bad_store_values_are_clear_errors_with_the_password_masked(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OUTSIDEIN_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    # A port that is not a number: a StoreError naming the value, not a ValueError traceback.
    with pytest.raises(StoreError, match=r"postgresql://u:\*\*\*@db:5x432/app: not a valid store URL") as bad:
        Store("postgresql://u:S3cretPW@db:5x432/app")
    assert "S3cretPW" not in str(bad.value)
    assert main(["history", "--store", "postgresql://u:S3cretPW@db:5x432/app"]) == 2
    err = capsys.readouterr().err
    assert "not a valid store URL" in err and "S3cretPW" not in err and "Traceback" not in err
    # A URL missing its "://" is refused, never taken as a SQLite path to create.
    for value in ("postgres//u:S3cretPW@db/app", "u:S3cretPW@db/app", "postgres:db//app"):
        assert main(["history", "--store", value]) == 2, value
        err = capsys.readouterr().err
        assert "without scheme://" in err and "S3cretPW" not in err
    assert list(tmp_path.iterdir()) == []  # nothing was created
