"""Tickets: grouping per (check, environment), the Jira CSV / Markdown / JSON outputs, owners rules, and
creation in Jira and GitHub Issues without duplicates.

The tracker tests run against a recorded contract, not a real Jira or GitHub (neither can run here): a tiny
local HTTP server in the test implements the few endpoints outsidein calls (Jira: GET /rest/api/2/search, POST
/rest/api/2/issue, PUT /rest/api/2/issue/KEY; GitHub: GET/POST /repos/O/R/issues, PATCH /repos/O/R/issues/N),
keeps the issues it was given, and records every call so the test can assert a re-run updates instead of
creating a duplicate.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from outsidein.cli import main
from outsidein.models import Severity
from outsidein.owners import Owners, codeowners_for, parse_codeowners
from outsidein.scope import OwnerRule
from outsidein.store import Store, sqlite_url
from outsidein.tickets import build_tickets, render_csv, render_json, render_markdown, ticket_key
from outsidein.tickets.remote import GitHubTracker, JiraTracker
from tests.test_store_support import T0, WEAK, nginx_report, synthetic_report

NOW = T0 + dt.timedelta(days=2)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(sqlite_url(tmp_path / "state.db")) as s:
        yield s


def _loaded(store: Store) -> None:
    owners = Owners([OwnerRule(owner="prod-team", environments=("prod",)),
                     OwnerRule(owner="edge", resource="sg-0000000[0-4]")], default="secops")
    store.record(synthetic_report(6, T0, severity=Severity.HIGH), owners=owners)
    report = synthetic_report(1, T0 + dt.timedelta(days=1), offset=6, severity=Severity.CRITICAL)
    store.record(report.__class__(**{**report.__dict__, "findings": [*synthetic_report(6, T0).findings,
                                                                     *report.findings],
                                     "results": [*synthetic_report(6, T0).results, *report.results]}),
                 owners=owners)


def test_grouping_one_ticket_per_check_and_environment(store: Store) -> None:
    _loaded(store)
    tickets = build_tickets(store.open_findings(NOW), NOW)
    assert sorted((t.check_id, t.environment) for t in tickets) == [
        ("synthetic-open-port", "dev"), ("synthetic-open-port", "prod"), ("synthetic-open-port", "staging")]
    prod = next(t for t in tickets if t.environment == "prod")
    assert next(f.resource for f in prod.findings) == "sg-00000006"  # the CRITICAL one first
    assert prod.severity is Severity.CRITICAL and prod.owner == "prod-team"
    assert prod.due == T0 + dt.timedelta(days=1, hours=24)  # earliest due: the CRITICAL's 24 hours
    assert tickets[0] is prod  # worst first
    dev = next(t for t in tickets if t.environment == "dev")
    assert dev.severity is Severity.HIGH and dev.owner == "edge" and len(dev.findings) == 2
    assert dev.key == ticket_key("synthetic-open-port", "dev") and dev.key in dev.labels
    assert all(fp in dev.marker for fp in dev.fingerprints) and dev.marker in dev.description()
    assert "nc -zv sg-00000002 2" in dev.description() and "owner secops" in dev.description()
    # Overdue tickets are marked and come first.
    late = T0 + dt.timedelta(days=8)
    overdue = build_tickets(store.open_findings(late), late)
    assert all(t.overdue for t in overdue) and overdue[0].summary.startswith("OVERDUE")


def test_csv_markdown_json(store: Store) -> None:
    _loaded(store)
    tickets = build_tickets(store.open_findings(NOW), NOW)
    rows = list(csv.reader(io.StringIO(render_csv(tickets))))
    assert rows[0][:5] == ["Summary", "Description", "Priority", "Due Date", "Assignee"]
    assert rows[0][5:] == ["Labels"] * 5
    first = dict(zip(rows[0][:5], rows[1][:5], strict=True))
    assert first["Priority"] == "Highest" and first["Due Date"] == "2026-01-07" and first["Assignee"] == "prod-team"
    assert "outsidein" in rows[1][5:] and tickets[0].key in rows[1][5:]
    assert "\n" in first["Description"] and len(rows) == 4
    markdown = render_markdown(tickets, NOW)
    assert markdown.count("\n## ") == 3 and "<!-- outsidein:ticket=" in markdown and "| sg-00000006 |" in markdown
    data = json.loads(render_json(tickets, NOW))
    assert data["schema"] == "outsidein-tickets/1" and len(data["tickets"]) == 3
    assert data["tickets"][0]["fingerprints"] and data["tickets"][0]["verify"]


def test_accepted_and_resolved_findings_make_no_ticket(store: Store) -> None:
    store.record(nginx_report(T0, web=WEAK))
    fp = next(f.fingerprint for f in store.findings() if f.check_id == "nginx-server-tokens")
    store.accept(fp, reason="r", by="b", expires=dt.date(2026, 1, 6), now=T0)
    assert "nginx-server-tokens" not in {t.check_id for t in build_tickets(store.open_findings(T0), T0)}
    after = T0 + dt.timedelta(days=3)  # the acceptance ended on the 6th
    assert "nginx-server-tokens" in {t.check_id for t in build_tickets(store.open_findings(after), after)}


def test_owner_rules_first_match_and_codeowners(tmp_path: Path) -> None:
    codeowners = tmp_path / "CODEOWNERS"
    codeowners.write_text("# owners\n* @org/everyone\n/src/payments/ @org/payments\n*.tf @org/infra\n"
                          "docs/ @alice\n")
    lines = parse_codeowners(codeowners.read_text())
    assert codeowners_for(lines, "src/payments/api.py") == ("@org/payments",)
    assert codeowners_for(lines, "deploy/main.tf") == ("@org/infra",)
    assert codeowners_for(lines, "README.md") == ("@org/everyone",)
    finding = synthetic_report(1, T0).findings[0]  # layer 1, prod? no: index 0 -> env prod
    secret = finding.__class__(**{**finding.__dict__, "layer": 5, "check_id": "secrets-in-head",
                                  "resource": "src/payments/settings.py:12", "environment": "staging"})
    owners = Owners([
        OwnerRule(owner="netsec", layers=(1,), environments=("staging",)),
        OwnerRule(codeowners=codeowners),
        OwnerRule(owner="catch-all"),
    ], default="nobody")
    assert owners.owner(secret) == "@org/payments"
    assert owners.owner(finding) == "@org/everyone"  # layer 1 but prod: rule 1 misses; CODEOWNERS' * matches
    assert Owners([OwnerRule(owner="x", check="nginx-*")], default="nobody").owner(finding) == "nobody"
    assert Owners([OwnerRule(owner="x", resource="sg-*")]).owner(finding) == "x"
    assert Owners([OwnerRule(codeowners=tmp_path / "missing")], default="d").owner(secret) == "d"


class _Contract(BaseHTTPRequestHandler):
    """Jira and GitHub, the few endpoints outsidein uses; issues in memory, every call recorded."""

    calls: list[tuple[str, str, Any]]
    issues: dict[str, dict[str, Any]]

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def _handle(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        body = self._body()
        self.calls.append((method, url.path, body if body is not None else query))
        if self.headers.get("Authorization") is None:
            self._reply(401, {"message": "no credentials"})
            return
        jira = [i for k, i in self.issues.items() if k.startswith("OPS-")]
        gh = [i for k, i in self.issues.items() if k.startswith("gh-")]
        if method == "GET" and url.path == "/rest/api/2/search":
            label = query["jql"].split('labels = "')[1].split('"')[0]
            found = [{"key": i["key"]} for i in jira if label in i["fields"]["labels"]]
            self._reply(200, {"issues": found[:1], "total": len(found)})
        elif method == "POST" and url.path == "/rest/api/2/issue":
            key = f"OPS-{len(jira) + 1}"
            self.issues[key] = {"key": key, "fields": body["fields"]}
            self._reply(201, {"key": key, "id": str(len(jira) + 1)})
        elif method == "PUT" and url.path.startswith("/rest/api/2/issue/"):
            key = url.path.rsplit("/", 1)[1]
            self.issues[key]["fields"].update(body["fields"])
            self._reply(204)
        elif method == "GET" and url.path == "/repos/acme/infra/issues":
            self._reply(200, [i for i in gh if query["labels"] in i["labels"]])
        elif method == "POST" and url.path == "/repos/acme/infra/issues":
            number = len(gh) + 1
            self.issues[f"gh-{number}"] = {"number": number, **body}
            self._reply(201, {"number": number})
        elif method == "PATCH" and url.path.startswith("/repos/acme/infra/issues/"):
            number = url.path.rsplit("/", 1)[1]
            self.issues[f"gh-{number}"].update(body)
            self._reply(200, {"number": int(number)})
        else:
            self._reply(404, {"message": "not in the contract"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")


@pytest.fixture
def contract() -> Iterator[tuple[str, type[_Contract]]]:
    handler = type("Recorded", (_Contract,), {"calls": [], "issues": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_jira_creates_then_updates_without_duplicates(store: Store, contract: tuple[str, type[_Contract]]) -> None:
    url, recorded = contract
    _loaded(store)
    tickets = build_tickets(store.open_findings(NOW), NOW)
    jira = JiraTracker(url, "OPS", user="bot@example.com", token="t0ken")
    first = jira.sync(tickets)
    assert [s.action for s in first] == ["created"] * 3 and len(recorded.issues) == 3
    created = recorded.issues["OPS-1"]["fields"]
    assert created["project"] == {"key": "OPS"} and created["priority"] == {"name": "Highest"}
    assert created["duedate"] == "2026-01-07" and tickets[0].key in created["labels"]
    assert tickets[0].marker in created["description"]
    recorded.calls.clear()
    again = jira.sync(tickets)
    assert [s.action for s in again] == ["updated"] * 3 and [s.remote for s in again] == ["OPS-1", "OPS-2", "OPS-3"]
    assert len(recorded.issues) == 3 and {m for m, _, _ in recorded.calls} == {"GET", "PUT"}
    with pytest.raises(Exception, match="401"):
        JiraTracker(url, "OPS").sync(tickets)  # no credentials: a clear error, not a silent skip


def test_github_creates_then_updates(store: Store, contract: tuple[str, type[_Contract]]) -> None:
    url, recorded = contract
    _loaded(store)
    tickets = build_tickets(store.open_findings(NOW), NOW)
    github = GitHubTracker("acme/infra", token="ghp_x", api_url=url)
    assert [s.action for s in github.sync(tickets)] == ["created"] * 3
    assert [s.action for s in github.sync(tickets)] == ["updated"] * 3
    issue = recorded.issues["gh-1"]
    assert issue["title"] == tickets[0].summary and tickets[0].key in issue["labels"] and issue["state"] == "open"
    assert isinstance(github.client, httpx.Client)


def test_cli_tickets_formats_and_jira(tmp_path: Path, contract: tuple[str, type[_Contract]],
                                      capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    url, recorded = contract
    db = tmp_path / "state.db"
    with Store(sqlite_url(db)) as store:
        store.record(nginx_report(dt.datetime.now(dt.UTC), web=WEAK))
    assert main(["tickets", "--store", str(db), "--format", "csv", "--output", str(tmp_path / "t.csv")]) == 0
    assert (tmp_path / "t.csv").read_text().startswith("Summary,Description,Priority,Due Date,Assignee,Labels")
    assert main(["tickets", "--store", str(db), "--format", "json"]) == 0
    count = len(json.loads(capsys.readouterr().out)["tickets"])
    assert count > 1
    monkeypatch.setenv("JIRA_TOKEN", "t0ken")
    assert main(["tickets", "--store", str(db), "--jira", url, "--jira-project", "OPS"]) == 0
    assert main(["tickets", "--store", str(db), "--jira", url, "--jira-project", "OPS"]) == 0
    err = capsys.readouterr().err
    assert err.count("created") == count and err.count("updated") == count and len(recorded.issues) == count
    assert main(["tickets", "--store", str(db), "--jira", url]) == 2  # no project: usage error
