"""Tickets created or updated in Jira (REST API v2) and GitHub Issues, without duplicates.

Each ticket is searched for by its stable key label (``outsidein-<hash>``): found, it is updated (summary,
description with the current resources and the fingerprints marker, priority, due date, labels); not found, it
is created. Credentials come from the environment (JIRA_USER and JIRA_TOKEN, or JIRA_TOKEN alone as a bearer
token; GITHUB_TOKEN) and are never printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from outsidein.tickets.build import PRIORITY, Ticket


class TrackerError(RuntimeError):
    """The tracker refused a request; the message has the status and the endpoint, never the token."""


@dataclass(frozen=True)
class Synced:
    key: str  # the outsidein ticket key
    action: str  # "created" or "updated"
    remote: str  # the tracker's id: a Jira issue key, a GitHub issue number


def _check(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 400:
        raise TrackerError(f"{what}: {response.request.method} {response.request.url.path} answered "
                           f"{response.status_code}: {response.text[:200]}")
    return response.json() if response.content else None


class JiraTracker:
    def __init__(self, base_url: str, project: str, *, user: str | None = None, token: str | None = None,
                 issue_type: str = "Task", client: httpx.Client | None = None) -> None:
        headers = {"Accept": "application/json"}
        auth: httpx.BasicAuth | None = None
        if user and token:
            auth = httpx.BasicAuth(user, token)
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        self.project, self.issue_type = project, issue_type
        self.client = client or httpx.Client(base_url=base_url.rstrip("/"), headers=headers, auth=auth, timeout=30)

    def _fields(self, t: Ticket) -> dict[str, Any]:
        fields: dict[str, Any] = {"summary": t.summary[:250], "description": t.description(),
                                  "priority": {"name": PRIORITY[t.severity]}, "labels": list(t.labels)}
        if t.due:
            fields["duedate"] = t.due.date().isoformat()
        return fields

    def find(self, t: Ticket) -> str | None:
        jql = f'project = "{self.project}" AND labels = "{t.key}" ORDER BY created ASC'
        data = _check(self.client.get("/rest/api/2/search", params={"jql": jql, "fields": "summary",
                                                                   "maxResults": 1}), "Jira search")
        issues = data.get("issues", []) if isinstance(data, dict) else []
        return str(issues[0]["key"]) if issues else None

    def sync(self, tickets: list[Ticket]) -> list[Synced]:
        done = []
        for t in tickets:
            existing = self.find(t)
            if existing:
                _check(self.client.put(f"/rest/api/2/issue/{existing}", json={"fields": self._fields(t)}),
                       "Jira update")
                done.append(Synced(t.key, "updated", existing))
            else:
                fields = {"project": {"key": self.project}, "issuetype": {"name": self.issue_type}, **self._fields(t)}
                data = _check(self.client.post("/rest/api/2/issue", json={"fields": fields}), "Jira create")
                done.append(Synced(t.key, "created", str(data["key"])))
        return done


class GitHubTracker:
    def __init__(self, repository: str, *, token: str | None = None, api_url: str = "https://api.github.com",
                 client: httpx.Client | None = None) -> None:
        if repository.count("/") != 1:
            raise TrackerError(f"--github {repository!r}: expected owner/name")
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.repository = repository
        self.client = client or httpx.Client(base_url=api_url.rstrip("/"), headers=headers, timeout=30)

    def find(self, t: Ticket) -> int | None:
        data = _check(self.client.get(f"/repos/{self.repository}/issues",
                                      params={"labels": t.key, "state": "all", "per_page": 10}), "GitHub search")
        issues = [i for i in data or [] if "pull_request" not in i]
        return int(issues[0]["number"]) if issues else None

    def _body(self, t: Ticket) -> dict[str, Any]:
        body: dict[str, Any] = {"title": t.summary[:250], "body": t.description(), "labels": list(t.labels)}
        if t.owner.startswith("@") and "/" not in t.owner and " " not in t.owner:
            body["assignees"] = [t.owner[1:]]  # a CODEOWNERS user; teams stay in the body
        return body

    def sync(self, tickets: list[Ticket]) -> list[Synced]:
        done = []
        for t in tickets:
            number = self.find(t)
            if number is not None:
                _check(self.client.patch(f"/repos/{self.repository}/issues/{number}",
                                         json={**self._body(t), "state": "open"}), "GitHub update")
                done.append(Synced(t.key, "updated", str(number)))
            else:
                data = _check(self.client.post(f"/repos/{self.repository}/issues", json=self._body(t)),
                              "GitHub create")
                done.append(Synced(t.key, "created", str(data["number"])))
        return done
