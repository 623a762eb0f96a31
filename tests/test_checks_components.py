"""Layer 10: real lockfiles written here, OSV records in the real schema (facts of real advisories), the local
database loaded through ``outsidein db import``, and the checks' verdicts.

Grafana cannot run here: its stand-in is a tiny HTTP server on loopback that answers ``GET /api/health`` the way
Grafana does (``{"database": "ok", "version": ...}``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from outsidein.checks.registry import COMPONENTS, all_checks
from outsidein.cli import main
from outsidein.components import osvdb
from outsidein.components.collect import collect_components
from outsidein.components.facts import ComponentsFacts, parse_components
from outsidein.components.versions import InvalidVersion, in_range, is_affected
from outsidein.evidence import SourceEvidence
from outsidein.models import Result, Severity, Status
from outsidein.scope import ManifestsScope, OpsToolScope, OsvScope, RepositoryScope, Scope

# --- OSV records: the real schema, the facts of real advisories ------------------------------------------

DJANGO_GHSA = {
    "schema_version": "1.4.0", "id": "GHSA-2gwj-7jmv-h26r", "modified": "2024-09-13T14:52:49Z",
    "published": "2022-04-12T00:00:39Z", "aliases": ["CVE-2022-28346"],
    "summary": "SQL Injection in Django",
    "details": "An issue was discovered in Django 2.2 before 2.2.28, 3.2 before 3.2.13, and 4.0 before 4.0.4. "
               "QuerySet.annotate(), aggregate(), and extra() methods are subject to SQL injection ...",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    "affected": [{"package": {"ecosystem": "PyPI", "name": "django", "purl": "pkg:pypi/django"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.2"}, {"fixed": "2.2.28"},
                                                              {"introduced": "3.2"}, {"fixed": "3.2.13"},
                                                              {"introduced": "4.0"}, {"fixed": "4.0.4"}]}]}],
    "database_specific": {"cwe_ids": ["CWE-89"], "severity": "CRITICAL", "github_reviewed": True},
}
DJANGO_PYSEC = {  # the same vulnerability as published by the PyPA advisory database: merged by alias
    "id": "PYSEC-2022-190", "modified": "2022-04-19T04:00:00Z", "published": "2022-04-12T05:15:00Z",
    "aliases": ["CVE-2022-28346", "GHSA-2gwj-7jmv-h26r"],
    "details": "An issue was discovered in Django 2.2 before 2.2.28, 3.2 before 3.2.13, and 4.0 before 4.0.4.",
    "affected": [{"package": {"ecosystem": "PyPI", "name": "django"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.2"}, {"fixed": "2.2.28"},
                                                              {"introduced": "3.2"}, {"fixed": "3.2.13"},
                                                              {"introduced": "4.0"}, {"fixed": "4.0.4"}]}],
                  "versions": ["2.2", "3.2", "3.2.12", "4.0"]}],
}
LODASH = {
    "schema_version": "1.4.0", "id": "GHSA-35jh-r3h4-6jhm", "modified": "2024-02-16T08:08:37Z",
    "published": "2021-05-06T16:05:51Z", "aliases": ["CVE-2021-23337"],
    "summary": "Command Injection in lodash",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"}],
    "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
                  "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]}],
    "database_specific": {"severity": "HIGH"},
}
LODASH_WITHDRAWN = {
    "id": "GHSA-0000-withdrawn", "modified": "2023-01-01T00:00:00Z", "withdrawn": "2023-01-02T00:00:00Z",
    "summary": "Withdrawn: duplicate", "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
                                                   "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}],
}
X_NET = {  # the Go vulnerability database's record: no severity given
    "schema_version": "1.3.1", "id": "GO-2023-1571", "modified": "2024-05-20T16:03:47Z",
    "published": "2023-02-16T22:25:31Z", "aliases": ["CVE-2022-41723", "GHSA-vvpx-j8f3-3w6h"],
    "summary": "Denial of service via crafted HTTP/2 stream in net/http and golang.org/x/net",
    "affected": [{"package": {"ecosystem": "Go", "name": "golang.org/x/net"},
                  "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "0.7.0"}]}],
                  "ecosystem_specific": {"imports": [{"path": "golang.org/x/net/http2"}]}}],
}
GRAFANA = {
    "schema_version": "1.4.0", "id": "GHSA-gxh2-6vvc-rrgp", "modified": "2024-05-20T21:13:32Z",
    "published": "2023-06-22T21:30:19Z", "aliases": ["CVE-2023-3128"],
    "summary": "Grafana vulnerable to Authentication Bypass by Spoofing",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:L"}],
    "affected": [{"package": {"ecosystem": "Go", "name": "github.com/grafana/grafana"},
                  "ranges": [{"type": "SEMVER", "events": [{"introduced": "9.5.0"}, {"fixed": "9.5.5"}]},
                             {"type": "SEMVER", "events": [{"introduced": "10.0.0"}, {"fixed": "10.0.1"}]}]}],
}
RECORDS = [DJANGO_GHSA, DJANGO_PYSEC, LODASH, LODASH_WITHDRAWN, X_NET, GRAFANA]


def write_records(folder: Path, records: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for record in records:
        (folder / f"{record['id']}.json").write_text(json.dumps(record, indent=2))
    return folder


@pytest.fixture
def database(tmp_path: Path) -> Path:
    db = tmp_path / "osv"
    osvdb.import_file(db, write_records(tmp_path / "records", RECORDS))
    return db


def run(facts: ComponentsFacts, check_id: str) -> list[Result]:
    checks = {c.meta.id: c for c in all_checks() if c.source == COMPONENTS}
    return list(checks[check_id].run(facts))


def fails(results: list[Result]) -> list[Result]:
    return [r for r in results if r.status is Status.FAIL]


def statuses(results: list[Result]) -> set[Status]:
    return {r.status for r in results}


# --- the range algorithm ---------------------------------------------------------------------------------

R = "ECOSYSTEM"
RANGE_TABLE = [
    # ecosystem, type, events, version, affected
    ("PyPI", R, [{"introduced": "0"}, {"fixed": "1.5"}], "1.4.9", True),
    ("PyPI", R, [{"introduced": "0"}, {"fixed": "1.5"}], "1.5", False),  # fixed is exclusive
    ("PyPI", R, [{"introduced": "0"}, {"fixed": "1.5"}], "1.5.0", False),  # PEP 440: 1.5 == 1.5.0
    ("PyPI", R, [{"introduced": "1.0"}, {"fixed": "1.5"}], "0.9", False),
    ("PyPI", R, [{"introduced": "1.0"}, {"fixed": "1.5"}], "1.0", True),  # introduced is inclusive
    ("PyPI", R, [{"introduced": "0"}, {"fixed": "1.5"}], "1.5.dev1", True),  # dev release precedes 1.5
    ("PyPI", R, [{"introduced": "0"}, {"fixed": "1.5"}], "1.5rc1", True),
    ("PyPI", R, [{"introduced": "0"}, {"fixed": "1.5"}], "1.5.post1", False),  # post release follows 1.5
    ("PyPI", R, [{"introduced": "0"}, {"fixed": "1.5"}], "1.5+ubuntu1", False),  # local version of 1.5
    ("PyPI", R, [{"introduced": "0"}, {"fixed": "1.5"}], "1.4+local", True),
    ("PyPI", R, [{"introduced": "0"}, {"last_affected": "1.5"}], "1.5", True),  # last_affected is inclusive
    ("PyPI", R, [{"introduced": "0"}, {"last_affected": "1.5"}], "1.5.post1", False),
    ("PyPI", R, [{"introduced": "2.2"}, {"fixed": "2.2.28"}, {"introduced": "3.2"}, {"fixed": "3.2.13"}], "3.1", False),
    ("PyPI", R, [{"introduced": "2.2"}, {"fixed": "2.2.28"}, {"introduced": "3.2"}, {"fixed": "3.2.13"}], "3.2.12",
     True),
    ("PyPI", R, [{"fixed": "3.2.13"}, {"introduced": "3.2"}, {"fixed": "2.2.28"}, {"introduced": "2.2"}], "2.2.5",
     True),  # events are sorted before evaluation
    ("PyPI", R, [{"introduced": "1.0"}], "99.0", True),  # no fix yet: everything from introduced on
    ("PyPI", R, [{"introduced": "0"}, {"limit": "2.0"}], "1.9", True),
    ("PyPI", R, [{"introduced": "0"}, {"limit": "2.0"}], "2.1", False),  # at or past every limit
    ("PyPI", R, [{"introduced": "0"}, {"limit": "*"}], "9.0", True),
    ("npm", R, [{"introduced": "0"}, {"fixed": "4.17.21"}], "4.17.20", True),
    ("npm", R, [{"introduced": "0"}, {"fixed": "4.17.21"}], "4.17.21", False),
    ("npm", R, [{"introduced": "0"}, {"fixed": "2.0.0"}], "2.0.0-rc.1", True),  # a pre-release precedes its release
    ("npm", R, [{"introduced": "0"}, {"fixed": "2.0.0-beta.11"}], "2.0.0-beta.2", True),  # numeric identifiers
    ("npm", R, [{"introduced": "0"}, {"fixed": "2.0.0-beta.2"}], "2.0.0-beta.11", False),
    ("npm", R, [{"introduced": "0"}, {"fixed": "2.0.0-alpha.beta"}], "2.0.0-alpha.1", True),  # numeric < alnum
    ("npm", R, [{"introduced": "0"}, {"fixed": "2.0.0-alpha.1"}], "2.0.0-alpha", True),  # shorter prefix first
    ("npm", R, [{"introduced": "0"}, {"fixed": "1.2.3"}], "1.2.3+build.5", False),  # build metadata ignored
    ("npm", R, [{"introduced": "1.0.0"}, {"fixed": "1.0.5"}], "1.0.10", False),  # numeric, not lexical
    ("Go", "SEMVER", [{"introduced": "0"}, {"fixed": "0.7.0"}], "v0.6.0", True),
    ("Go", "SEMVER", [{"introduced": "0"}, {"fixed": "0.7.0"}], "v0.7.0", False),
    ("Go", "SEMVER", [{"introduced": "0"}, {"fixed": "0.7.0"}], "v0.0.0-20221012135044-0b7e1fb9d458", True),
    ("Go", "SEMVER", [{"introduced": "0"}, {"fixed": "0.7.0"}], "v0.7.1-0.20230214181424-abcdef123456", False),
    ("Go", "SEMVER", [{"introduced": "0"}, {"fixed": "0.7.0"}], "v0.6.1-0.20230101000000-abcdef123456", True),
    ("Go", "SEMVER", [{"introduced": "2.0.0"}], "v2.3.0+incompatible", True),
]


@pytest.mark.parametrize(("ecosystem", "range_type", "events", "version", "expected"), RANGE_TABLE)
def test_osv_range_algorithm(ecosystem: str, range_type: str, events: list[dict[str, str]], version: str,
                             expected: bool) -> None:
    assert in_range(ecosystem, range_type, events, version) is expected


def test_versions_list_and_git_ranges() -> None:
    affected = {"versions": ["3.2.12"], "ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}
    assert is_affected("PyPI", affected, "3.2.12.0")[0]  # PEP 440 equality
    assert not is_affected("PyPI", affected, "3.2.13")[0]  # a GIT range names commits, not versions
    with pytest.raises(InvalidVersion):
        is_affected("npm", affected, "not-a-version")
    hit, problems = is_affected("npm", {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "x.y"}]}]},
                                "1.0.0")
    assert not hit and problems  # a bad event is reported, not silently passed


# --- the database ----------------------------------------------------------------------------------------


def test_db_import_and_status_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "osv"
    folder = write_records(tmp_path / "records", RECORDS)
    assert main(["db", "import", "--database", str(db), str(folder)]) == 0
    assert "PyPI 2" in capsys.readouterr().out
    archive = tmp_path / "npm-all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo("GHSA-35jh-r3h4-6jhm.json", date_time=(2020, 1, 2, 3, 4, 6)), json.dumps(LODASH))
    assert main(["db", "import", "--database", str(db), str(archive)]) == 0
    assert main(["db", "import", "--database", str(db), str(folder / "GO-2023-1571.json")]) == 0
    capsys.readouterr()
    assert main(["db", "status", "--database", str(db)]) == 0
    out = capsys.readouterr().out
    assert "PyPI" in out and "Go" in out
    assert "npm                1 advisories  built 2020-01-02T03:04:06+00:00" in out  # the export's own date
    assert "oldest ecosystem built 2020-01-02" in out
    assert main(["db", "status", "--database", str(tmp_path / "none")]) == 0
    assert "run `outsidein db update`" in capsys.readouterr().out
    assert main(["db", "import", "--database", str(db), str(tmp_path / "missing.json")]) == 2


def test_db_update_downloads_each_ecosystem_from_a_mirror(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``db update`` over HTTP: a loopback server laid out like OSV's bucket stands in for it (no network here)."""
    import functools
    import http.server
    import threading

    site = tmp_path / "site"
    (site / "npm").mkdir(parents=True)
    with zipfile.ZipFile(site / "npm" / "all.zip", "w") as zf:
        zf.writestr("GHSA-35jh-r3h4-6jhm.json", json.dumps(LODASH))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mirror = f"http://127.0.0.1:{server.server_address[1]}"
    db = tmp_path / "osv"
    try:
        assert main(["db", "update", "--database", str(db), "--ecosystem", "npm", "--mirror", mirror]) == 0
        assert "npm: 1 advisories" in capsys.readouterr().out
        assert main(["db", "update", "--database", str(db), "--ecosystem", "PyPI", "--mirror", mirror]) == 2
        err = capsys.readouterr().err
        assert f"{mirror}/PyPI/all.zip" in err and "404" in err and "outsidein db import" in err
    finally:
        server.shutdown()
        server.server_close()
    assert main(["db", "status", "--database", str(db)]) == 0
    assert "npm" in capsys.readouterr().out


def test_lookup_merges_aliases_and_skips_withdrawn(database: Path) -> None:
    db = osvdb.OsvDatabase(database)
    try:
        found, _ = db.lookup("PyPI", "Django", "3.2.12")
        assert [a["id"] for a in found] == ["GHSA-2gwj-7jmv-h26r"]
        assert found[0]["aliases"] == ["CVE-2022-28346", "PYSEC-2022-190"]
        assert found[0]["severity"] == "CRITICAL" and found[0]["score"] == 9.8 and found[0]["fixed"] == ["3.2.13"]
        assert db.lookup("PyPI", "django", "3.2.13")[0] == []
        assert [a["id"] for a in db.lookup("npm", "lodash", "4.17.20")[0]] == ["GHSA-35jh-r3h4-6jhm"]
        assert db.lookup("npm", "lodash", "4.17.21")[0] == []  # the withdrawn record matches nothing
    finally:
        db.close()


# --- lockfiles, manifests, images ------------------------------------------------------------------------

REQUIREMENTS = """\
# generated by pip-compile
Django==3.2.12 \\
    --hash=sha256:0a0b3bd1d9de7b3bc9c4f0bd7a01ac0f5ef1e1ee3e2c3e3b12345678
requests[socks]==2.31.0 ; python_version >= "3.8"
flask>=2.0
-r base.txt
"""
POETRY_LOCK = """\
# This file is automatically @generated by Poetry 1.8.2 and should not be changed by hand.

[[package]]
name = "certifi"
version = "2024.2.2"
description = "Python package for providing Mozilla's CA Bundle."
optional = false
python-versions = ">=3.6"
files = []

[[package]]
name = "django"
version = "4.0.3"
description = "A high-level Python web framework."
optional = false
python-versions = ">=3.8"
files = []

[metadata]
lock-version = "2.0"
python-versions = "^3.11"
content-hash = "abc"
"""
UV_LOCK = """\
version = 1
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1.0"
source = { editable = "." }

[[package]]
name = "django"
version = "4.0.4"
source = { registry = "https://pypi.org/simple" }
"""
PIPFILE_LOCK = {"_meta": {"hash": {"sha256": "x"}, "pipfile-spec": 6},
                "default": {"django": {"hashes": [], "index": "pypi", "version": "==2.2.27"}},
                "develop": {"pytest": {"hashes": [], "version": "==8.1.1"}}}
PACKAGE_LOCK_V3 = {"name": "web", "version": "1.0.0", "lockfileVersion": 3, "requires": True,
                   "packages": {"": {"name": "web", "version": "1.0.0", "dependencies": {"lodash": "^4.17.0"}},
                                "node_modules/lodash": {"version": "4.17.20",
                                                        "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.20.tgz",
                                                        "integrity": "sha512-x"},
                                "node_modules/@babel/core": {"version": "7.24.0", "dev": True},
                                "packages/ui": {"version": "0.0.1"},
                                "node_modules/ui": {"resolved": "packages/ui", "link": True}}}
PACKAGE_LOCK_V1 = {"name": "old", "version": "1.0.0", "lockfileVersion": 1,
                   "dependencies": {"express": {"version": "4.17.1", "dependencies": {
                       "lodash": {"version": "4.17.15"}}}}}
YARN_V1 = """\
# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.
# yarn lockfile v1


"@babel/code-frame@^7.0.0":
  version "7.24.2"
  resolved "https://registry.yarnpkg.com/@babel/code-frame/-/code-frame-7.24.2.tgz"

lodash@^4.17.19, lodash@^4.17.20:
  version "4.17.20"
  resolved "https://registry.yarnpkg.com/lodash/-/lodash-4.17.20.tgz"
"""
YARN_BERRY = """\
# This file is generated by running "yarn install" inside your project.

__metadata:
  version: 8
  cacheKey: 10c0

"lodash@npm:^4.17.21":
  version: 4.17.21
  resolution: "lodash@npm:4.17.21"
  checksum: 10c0/x
  languageName: node
  linkType: hard

"web@workspace:.":
  version: 0.0.0-use.local
  resolution: "web@workspace:."
  languageName: unknown
  linkType: soft
"""
PNPM_V9 = """\
lockfileVersion: '9.0'

importers:
  .:
    dependencies:
      lodash:
        specifier: ^4.17.0
        version: 4.17.19

packages:

  lodash@4.17.19:
    resolution: {integrity: sha512-x}

  '@types/react@18.2.0':
    resolution: {integrity: sha512-y}

snapshots:

  lodash@4.17.19: {}
"""
PNPM_V5 = """\
lockfileVersion: 5.4

packages:

  /lodash/4.17.15:
    resolution: {integrity: sha512-x}
    dev: false

  /react-dom/18.2.0_react@18.2.0:
    resolution: {integrity: sha512-z}
"""
GO_MOD = """\
module example.com/api

go 1.21

require (
\tgithub.com/gin-gonic/gin v1.9.1
\tgolang.org/x/net v0.0.0-20221012135044-0b7e1fb9d458 // indirect
)

require golang.org/x/text v0.14.0

replace github.com/gin-gonic/gin => ../gin
"""
DOCKERFILE = """\
ARG PY=3.12
FROM python:${PY}-slim AS build
RUN pip install -r requirements.txt
FROM build AS test
FROM gcr.io/distroless/python3@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
FROM nginx
"""
COMPOSE = """\
services:
  grafana:
    image: grafana/grafana:latest
    ports: ["3000:3000"]
  db:
    image: postgres:16.2
  dash:
    image: grafana/grafana:10.0.0
"""
HELM_VALUES = """\
replicaCount: 2
image:
  repository: registry.example.com/team/api
  tag: ""
sidecar:
  image:
    registry: docker.io
    repository: bitnami/nginx
    tag: 1.25.4
"""
K8S = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  template:
    spec:
      containers:
        - name: api
          image: registry.example.com/team/api:1.4.2
---
apiVersion: v1
kind: Pod
metadata: {name: debug}
spec:
  containers:
    - name: shell
      image: "busybox"
"""


def make_repo(root: Path) -> Path:
    files = {
        "requirements.txt": REQUIREMENTS, "services/billing/poetry.lock": POETRY_LOCK,
        "services/auth/uv.lock": UV_LOCK, "legacy/Pipfile.lock": json.dumps(PIPFILE_LOCK, indent=4),
        "web/package-lock.json": json.dumps(PACKAGE_LOCK_V3, indent=2),
        "old/package-lock.json": json.dumps(PACKAGE_LOCK_V1, indent=2),
        "web/yarn.lock": YARN_V1, "berry/yarn.lock": YARN_BERRY, "web2/pnpm-lock.yaml": PNPM_V9,
        "web3/pnpm-lock.yaml": PNPM_V5, "api/go.mod": GO_MOD, "api/go.sum": "golang.org/x/net v0.1.0 h1:x=\n",
        "Dockerfile": DOCKERFILE, "docker-compose.yml": COMPOSE, "chart/values.yaml": HELM_VALUES,
        "k8s/deploy.yaml": K8S, "chart/templates/deploy.yaml": "image: {{ .Values.image.repository }}\n{{- end }}\n",
        "node_modules/evil/package-lock.json": json.dumps(PACKAGE_LOCK_V3),
        ".github/workflows/ci.yml": "jobs:\n  a:\n    container:\n      image: node:latest\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def collect(scope: Scope) -> list[ComponentsFacts]:
    evidence = collect_components(scope)
    # round-trip through the snapshot's JSON: the offline audit sees exactly this
    return [parse_components(SourceEvidence.from_json(json.loads(json.dumps(e.to_json())), "t")) for e in evidence]


def test_inventory_reads_every_format_with_locations(tmp_path: Path, database: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (facts,) = collect(Scope(aws=None, repositories=(RepositoryScope("shop", repo, "prod"),),
                             osv=OsvScope(database=database)))
    got = {(p.ecosystem, p.name, p.version): p.locations for p in facts.packages}
    assert got[("PyPI", "Django", "3.2.12")] == ("requirements.txt:2",)
    assert got[("PyPI", "requests", "2.31.0")] == ("requirements.txt:4",)
    assert got[("PyPI", "django", "4.0.3")] == ("services/billing/poetry.lock:12",)
    assert ("PyPI", "django", "4.0.4") in got and ("PyPI", "app", "0.1.0") not in got
    assert ("PyPI", "django", "2.2.27") in got and ("PyPI", "pytest", "8.1.1") in got
    assert got[("npm", "lodash", "4.17.20")][0].startswith("web/package-lock.json:")
    assert ("npm", "@babel/core", "7.24.0") in got and ("npm", "ui", "0.0.1") not in got
    assert ("npm", "express", "4.17.1") in got and ("npm", "lodash", "4.17.15") in got
    assert "web/yarn.lock:9" in got[("npm", "lodash", "4.17.20")]
    assert got[("npm", "@babel/code-frame", "7.24.2")] == ("web/yarn.lock:5",)
    assert ("npm", "lodash", "4.17.21") in got and not any(k[1] == "web" for k in got)
    assert ("npm", "lodash", "4.17.19") in got and ("npm", "@types/react", "18.2.0") in got
    assert ("npm", "react-dom", "18.2.0") in got
    assert got[("Go", "golang.org/x/net", "v0.0.0-20221012135044-0b7e1fb9d458")] == ("api/go.mod:7",)
    assert ("Go", "golang.org/x/text", "v0.14.0") in got and ("Go", "golang.org/x/net", "v0.1.0") not in got
    assert not any(k[1] == "github.com/gin-gonic/gin" for k in got)  # replaced by a local path
    assert {u["name"] for u in facts.unpinned} == {"flask", "github.com/gin-gonic/gin"}
    images = {i.ref: i.location for i in facts.images}
    assert images == {
        "python:3.12-slim": "Dockerfile:2", "nginx": "Dockerfile:6",
        "gcr.io/distroless/python3@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef":
            "Dockerfile:5",
        "grafana/grafana:latest": "docker-compose.yml:3", "postgres:16.2": "docker-compose.yml:6",
        "grafana/grafana:10.0.0": "docker-compose.yml:8", "registry.example.com/team/api": "chart/values.yaml:3",
        "docker.io/bitnami/nginx:1.25.4": "chart/values.yaml:7",
        "registry.example.com/team/api:1.4.2": "k8s/deploy.yaml:9", "busybox": "k8s/deploy.yaml:17",
    }
    assert not any("node_modules" in loc for locs in got.values() for loc in locs)
    assert facts.errors == []


# --- the checks ------------------------------------------------------------------------------------------


def test_vulnerable_packages_fail_with_advisory_fix_and_location(tmp_path: Path, database: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (facts,) = collect(Scope(aws=None, repositories=(RepositoryScope("shop", repo, "prod"),),
                             osv=OsvScope(database=database)))
    found = {(r.resource, r.detail.split(": ", 1)[1].split(" ", 1)[0]): r
             for r in fails(run(facts, "components-vulnerable-package"))}
    django = found[("Django@3.2.12", "GHSA-2gwj-7jmv-h26r")]
    assert django.severity is Severity.CRITICAL
    assert django.detail.startswith("requirements.txt:2: GHSA-2gwj-7jmv-h26r (CVE-2022-28346) [CRITICAL, CVSS 9.8]")
    assert "3.2.12 installed, fixed in 3.2.13" in django.detail
    assert found[("django@4.0.3", "GHSA-2gwj-7jmv-h26r")].detail.endswith("fixed in 4.0.4")
    assert ("django@4.0.4", "GHSA-2gwj-7jmv-h26r") not in found
    assert found[("django@2.2.27", "GHSA-2gwj-7jmv-h26r")].detail.endswith("fixed in 2.2.28")
    assert found[("lodash@4.17.20", "GHSA-35jh-r3h4-6jhm")].severity is Severity.HIGH  # CVSS 7.2
    assert ("lodash@4.17.21", "GHSA-35jh-r3h4-6jhm") not in found
    x_net = found[("golang.org/x/net@v0.0.0-20221012135044-0b7e1fb9d458", "GO-2023-1571")]
    assert x_net.severity is Severity.HIGH and "[unrated]" in x_net.detail  # no severity in the record: HIGH
    grafana = found[("grafana/grafana:10.0.0", "GHSA-gxh2-6vvc-rrgp")]
    assert grafana.severity is Severity.CRITICAL and "fixed in 10.0.1" in grafana.detail
    assert len(found) == 8  # Django x3, lodash x3 (4.17.20, 4.17.15, 4.17.19), x/net, grafana image


def test_clean_packages_pass_and_missing_ecosystem_is_not_assessed(tmp_path: Path, database: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "requirements.txt").write_text("Django==4.2.11\nrequests==2.31.0\n")
    (tmp_path / "app" / "Gemfile.lock").write_text("GEM\n")
    (facts,) = collect(Scope(aws=None, manifests=(ManifestsScope("app", (tmp_path / "app",), "staging"),),
                             osv=OsvScope(database=database)))
    assert statuses(run(facts, "components-vulnerable-package")) == {Status.PASS}

    crates = tmp_path / "crates"
    crates.mkdir()
    (crates / "package-lock.json").write_text(json.dumps(PACKAGE_LOCK_V3))
    only_pypi = tmp_path / "pypi-only"
    osvdb.import_file(only_pypi, write_records(tmp_path / "pypi-records", [DJANGO_GHSA]))
    (facts,) = collect(Scope(aws=None, manifests=(ManifestsScope("web", (crates,)),),
                             osv=OsvScope(database=only_pypi)))
    results = run(facts, "components-vulnerable-package")
    assert statuses(results) == {Status.NOT_ASSESSED}
    assert "no npm advisories" in results[0].reason


def test_missing_database_is_never_pass(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (facts,) = collect(Scope(aws=None, repositories=(RepositoryScope("shop", repo),),
                             osv=OsvScope(database=tmp_path / "nothing-here")))
    for check in ("components-vulnerable-package", "components-osv-database-stale"):
        results = run(facts, check)
        assert statuses(results) == {Status.NOT_ASSESSED}, check
        assert "run `outsidein db update`" in results[0].reason


def test_nothing_to_audit_is_not_assessed(tmp_path: Path, database: Path) -> None:
    (tmp_path / "empty").mkdir()
    (facts,) = collect(Scope(aws=None, repositories=(RepositoryScope("empty", tmp_path / "empty"),),
                             osv=OsvScope(database=database)))
    assert statuses(run(facts, "components-vulnerable-package")) == {Status.NOT_ASSESSED}


def test_stale_database_fails_and_fresh_passes(tmp_path: Path, database: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "requirements.txt").write_text("Django==4.2.11\n")
    scope = Scope(aws=None, manifests=(ManifestsScope("app", (tmp_path / "app",)),), osv=OsvScope(database=database))
    (facts,) = collect(scope)
    assert statuses(run(facts, "components-osv-database-stale")) == {Status.PASS}
    old = (datetime.now(UTC) - timedelta(days=9)).isoformat(timespec="seconds")
    with sqlite3.connect(database / osvdb.DB_FILE) as conn:
        conn.execute("UPDATE ecosystems SET built_at = ? WHERE name = 'npm'", (old,))
    conn.close()
    (facts,) = collect(scope)
    (result,) = run(facts, "components-osv-database-stale")
    assert result.status is Status.FAIL and "limit 7 days" in result.detail and result.severity is None


def test_latest_images_fail_higher_in_production(tmp_path: Path, database: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (prod,) = collect(Scope(aws=None, repositories=(RepositoryScope("shop", repo, "prod"),),
                            osv=OsvScope(database=database)))
    failed = {r.resource: r for r in fails(run(prod, "components-image-latest"))}
    assert set(failed) == {"grafana/grafana:latest", "nginx", "registry.example.com/team/api", "busybox"}
    assert failed["grafana/grafana:latest"].severity is Severity.HIGH
    assert failed["nginx"].detail == "Dockerfile:6: nginx is untagged (pulls :latest) in production"
    (dev,) = collect(Scope(aws=None, repositories=(RepositoryScope("shop", repo, "dev"),),
                           osv=OsvScope(database=database)))
    assert {r.severity for r in fails(run(dev, "components-image-latest"))} == {Severity.MEDIUM}

    (tmp_path / "pinned").mkdir()
    (tmp_path / "pinned" / "compose.yaml").write_text(COMPOSE.replace("grafana:latest", "grafana:10.4.2"))
    (pinned,) = collect(Scope(aws=None, manifests=(ManifestsScope("p", (tmp_path / "pinned",), "prod"),),
                              osv=OsvScope(database=database)))
    assert statuses(run(pinned, "components-image-latest")) == {Status.PASS}


def test_unpinned_requirements(tmp_path: Path, database: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "requirements-dev.txt").write_text("pytest>=8\nruff==0.4.1\n")
    (facts,) = collect(Scope(aws=None, manifests=(ManifestsScope("a", (tmp_path / "a",)),),
                             osv=OsvScope(database=database)))
    (result,) = run(facts, "components-unpinned-requirement")
    assert result.status is Status.FAIL and "a/requirements-dev.txt:1: pytest >=8 is not pinned" in result.detail
    (tmp_path / "a" / "requirements-dev.txt").write_text("pytest==8.1.1\n")
    (facts,) = collect(Scope(aws=None, manifests=(ManifestsScope("a", (tmp_path / "a",)),),
                             osv=OsvScope(database=database)))
    assert statuses(run(facts, "components-unpinned-requirement")) == {Status.PASS}


class _Grafana(BaseHTTPRequestHandler):
    version = "10.0.0"

    def do_GET(self) -> None:
        if self.path == "/api/health":
            version = self.server.version  # type: ignore[attr-defined]
            body = json.dumps({"commit": "d8b2a1f", "database": "ok", "version": version}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        else:
            body = b"not found"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def grafana() -> Iterator[ThreadingHTTPServer]:
    """A stand-in for Grafana, which cannot run here: it answers GET /api/health as Grafana does."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Grafana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_ops_tool_version_matched_against_osv(grafana: ThreadingHTTPServer, database: Path) -> None:
    url = f"http://127.0.0.1:{grafana.server_address[1]}"
    scope = Scope(aws=None, ops_tools=(OpsToolScope("grafana-prod", url, "grafana", "prod"),),
                  osv=OsvScope(database=database))
    grafana.version = "10.0.0"  # type: ignore[attr-defined]
    (facts,) = collect(scope)
    (result,) = run(facts, "components-ops-tool-vulnerable")
    assert result.status is Status.FAIL and result.resource == "grafana-prod (grafana 10.0.0)"
    assert result.severity is Severity.CRITICAL and "fixed in 10.0.1" in result.detail
    grafana.version = "10.0.1"  # type: ignore[attr-defined]
    (facts,) = collect(scope)
    assert statuses(run(facts, "components-ops-tool-vulnerable")) == {Status.PASS}
    assert run(facts, "components-vulnerable-package") == []  # the package checks leave tools alone


def test_unreachable_or_unmatched_ops_tool_is_not_assessed(grafana: ThreadingHTTPServer, database: Path) -> None:
    port = grafana.server_address[1]
    grafana.shutdown()
    grafana.server_close()
    scope = Scope(aws=None, ops_tools=(OpsToolScope("g", f"http://127.0.0.1:{port}", "grafana"),
                                       OpsToolScope("sonar", f"http://127.0.0.1:{port}", "sonarqube")),
                  osv=OsvScope(database=database))
    for facts in collect(scope):
        (result,) = run(facts, "components-ops-tool-vulnerable")
        assert result.status is Status.NOT_ASSESSED and "unreachable" in result.reason


# --- malformed evidence never breaks the audit nor reads as PASS -----------------------------------------

MALFORMED = {  # an ``affected`` list holding a string beside a valid entry for the same package
    "id": "GHSA-bad0-bad0-bad0", "modified": "2024-01-01T00:00:00Z", "summary": "broken record",
    "affected": ["oops", {"package": {"ecosystem": "PyPI", "name": "flask"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}]}],
}


def test_malformed_osv_record_is_not_assessed_and_others_still_match(tmp_path: Path) -> None:
    db = tmp_path / "osv"
    osvdb.import_file(db, write_records(tmp_path / "records", [*RECORDS, MALFORMED]))
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "requirements.txt").write_text("flask==2.0.0\nDjango==3.2.12\n")
    (facts,) = collect(Scope(aws=None, manifests=(ManifestsScope("app", (tmp_path / "app",), "prod"),),
                             osv=OsvScope(database=db)))
    results = run(facts, "components-vulnerable-package")
    [flask] = [r for r in results if r.resource.startswith("flask")]
    assert flask.status is Status.NOT_ASSESSED and "malformed OSV record GHSA-bad0-bad0-bad0" in (flask.reason or "")
    assert [r.resource for r in fails(results)] == ["Django@3.2.12"]
    assert Status.PASS not in statuses(results)


def test_db_import_counts_malformed_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("GHSA-35jh-r3h4-6jhm.json", json.dumps(LODASH))
        zf.writestr("GHSA-trunc.json", json.dumps(LODASH)[:40])  # a truncated member
        zf.writestr("GHSA-noid.json", json.dumps({"affected": []}))
    assert main(["db", "import", "--database", str(tmp_path / "osv"), str(archive)]) == 0
    out = capsys.readouterr().out
    assert "npm 1" in out and "skipped 2 malformed record(s)" in out
    assert "GHSA-trunc.json: not valid JSON" in out and "no id" in out


def test_broken_compose_file_makes_image_check_not_assessed(tmp_path: Path, database: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "docker-compose.yml").write_text("services:\n  web:\n    image: nginx:1.25\n   bad: [\n")
    (tmp_path / "app" / "Dockerfile").write_text("FROM python:3.12-slim\n")
    (facts,) = collect(Scope(aws=None, manifests=(ManifestsScope("app", (tmp_path / "app",), "prod"),),
                             osv=OsvScope(database=database)))
    results = run(facts, "components-image-latest")
    assert statuses(results) == {Status.NOT_ASSESSED}, results
    [gap] = results
    assert gap.resource.startswith("docker-compose.yml:") or "docker-compose.yml:" in gap.resource
    assert "docker-compose.yml:4:" in (gap.reason or "")


def test_inventory_file_cap_is_recorded(tmp_path: Path, database: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from outsidein.components import inventory

    monkeypatch.setattr(inventory, "MAX_FILES", 1)
    (tmp_path / "app" / "a").mkdir(parents=True)
    (tmp_path / "app" / "a" / "Dockerfile").write_text("FROM python:3.12-slim\n")
    (tmp_path / "app" / "b").mkdir()
    (tmp_path / "app" / "b" / "Dockerfile").write_text("FROM nginx:latest\n")
    (facts,) = collect(Scope(aws=None, manifests=(ManifestsScope("app", (tmp_path / "app",), "prod"),),
                             osv=OsvScope(database=database)))
    assert any("stopped at the cap" in e for e in facts.errors)
    results = run(facts, "components-image-latest")
    assert Status.PASS not in statuses(results)
    assert any(r.status is Status.NOT_ASSESSED and "cap" in (r.reason or "") for r in results)


def test_one_package_failing_to_match_never_stops_the_others(tmp_path: Path, database: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    real = osvdb.OsvDatabase.lookup

    def lookup(self: osvdb.OsvDatabase, ecosystem: str, name: str, version: str) -> Any:
        if name == "flask":
            raise RuntimeError("corrupt row")
        return real(self, ecosystem, name, version)

    monkeypatch.setattr(osvdb.OsvDatabase, "lookup", lookup)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "requirements.txt").write_text("flask==2.0.0\nDjango==3.2.12\n")
    (facts,) = collect(Scope(aws=None, manifests=(ManifestsScope("app", (tmp_path / "app",), "prod"),),
                             osv=OsvScope(database=database)))
    results = run(facts, "components-vulnerable-package")
    [flask] = [r for r in results if r.resource.startswith("flask")]
    assert flask.status is Status.NOT_ASSESSED and "RuntimeError: corrupt row" in (flask.reason or "")
    assert [r.resource for r in fails(results)] == ["Django@3.2.12"]
