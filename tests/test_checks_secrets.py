"""Layer 5 on real git repositories built here with `git`, real Dockerfiles, and real processes.

The labelled corpus at the end holds true secrets (generated, random, never a real credential) and their
look-alikes (AWS documentation keys, UUIDs, hashes, base64 images, lockfile integrity hashes, placeholders);
``test_corpus_precision_recall`` prints precision and recall over it and asserts thresholds.
"""

from __future__ import annotations

import base64
import json
import os
import random
import string
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from outsidein.audit import evaluate
from outsidein.checks.registry import HOST, REPOSITORY, all_checks
from outsidein.evidence import HostEvidence, Record, Snapshot, SourceEvidence
from outsidein.host.collect import HostCollector, load_host_folder
from outsidein.host.facts import parse_host
from outsidein.models import Result, Severity, Status
from outsidein.scope import HostScope, RepositoryScope
from outsidein.secrets import environ
from outsidein.secrets.collect import MAX_FILE_BYTES, collect_repositories, collect_repository
from outsidein.secrets.facts import ENVIRON_KEY, parse_repository
from outsidein.secrets.scan import LineScanner

RNG = random.Random(5)
ALNUM = string.ascii_letters + string.digits


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


AWS_KEY_ID = "AKIA" + rand(16, string.ascii_uppercase + string.digits)
GITHUB_TOKEN = "ghp_" + rand(36)
DB_PASSWORD = rand(12) + "#!" + rand(10)
BRANCH_TOKEN = "xoxb-" + rand(12, string.digits) + "-" + rand(24)
REPO_CHECKS = ("secrets-in-tree", "secrets-in-history", "secrets-env-file-committed", "secrets-gitignore",
               "secrets-precommit-scan")
GOOD_GITIGNORE = ".env\n.env.*\n!.env.example\n*.pem\n*.key\n*.p12\n*.pfx\nsecrets.yaml\nsecrets.json\n"
PRECOMMIT = ("repos:\n  - repo: https://github.com/gitleaks/gitleaks\n    rev: v8.18.0\n    hooks:\n"
             "      - id: gitleaks\n")


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@example.com"}
        return subprocess.run(["git", "-C", str(self.path), *args], check=True, capture_output=True, text=True,
                              env=env).stdout

    def write(self, rel: str, text: str) -> None:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def commit(self, message: str = "c", **files: str | None) -> str:
        for rel, text in files.items():
            rel = rel.replace("__", "/").replace("DOT", ".").replace("_H_", "-")
            if text is None:
                self.git("rm", "-q", rel)
            else:
                self.write(rel, text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").strip()


def run(source: str, target: Any, check_id: str) -> list[Result]:
    checks = {c.meta.id: c for c in all_checks() if c.source == source}
    return list(checks[check_id].run(target))


def verdicts(evidence: SourceEvidence) -> dict[str, list[Result]]:
    facts = parse_repository(evidence)
    return {cid: run(REPOSITORY, facts, cid) for cid in REPO_CHECKS}


def statuses(results: list[Result]) -> set[Status]:
    return {r.status for r in results}


def scan(repo: Repo, history: bool = True) -> SourceEvidence:
    return collect_repository(RepositoryScope(name="app", path=repo.path, environment="prod", history=history))


def assert_no_secret(evidence: Any, found: dict[str, list[Result]], *secrets: str) -> None:
    text = json.dumps(evidence.to_json()) + json.dumps([[r.detail, r.reason, r.verify] for rs in found.values()
                                                        for r in rs])
    for secret in secrets:
        assert secret not in text


@pytest.fixture
def clean_repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "clean")
    repo.commit(DOTgitignore=GOOD_GITIGNORE, DOTpre_H_commit_H_configDOTyaml=PRECOMMIT,
                app__mainDOTpy="import os\nPASSWORD = os.environ['DB_PASSWORD']\n",
                DOTenvDOTexample="DB_PASSWORD=changeme\n",
                Dockerfile="FROM python:3.11-slim\nENV PYTHONUNBUFFERED=1\nARG VERSION\n")
    return repo


def test_clean_repository_passes_every_check(clean_repo: Repo) -> None:
    found = verdicts(scan(clean_repo))
    for check_id, results in found.items():
        assert statuses(results) == {Status.PASS}, (check_id, results)


def test_secret_removed_later_is_history_only_high(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    first = repo.commit(DOTgitignore=GOOD_GITIGNORE, DOTpre_H_commit_H_configDOTyaml=PRECOMMIT,
                        configDOTpy=f"AWS_ACCESS_KEY_ID = '{AWS_KEY_ID}'\nDB_PASSWORD = \"{DB_PASSWORD}\"\n")
    repo.commit(configDOTpy="import os\nDB_PASSWORD = os.environ['DB_PASSWORD']\n")
    evidence = scan(repo)
    found = verdicts(evidence)
    assert statuses(found["secrets-in-tree"]) == {Status.PASS}
    history = [r for r in found["secrets-in-history"] if r.status is Status.FAIL]
    r = repo.path
    assert {h.resource for h in history} == {f"{r}/config.py:1@{first[:12]}", f"{r}/config.py:2@{first[:12]}"}
    assert len(history) == 2 and all(first[:12] in h.detail and h.severity is None for h in history)
    assert any("aws-access-key-id AKIA…[sha256:" in h.detail for h in history)
    checks = {c.meta.id: c.meta for c in all_checks()}
    assert checks["secrets-in-history"].severity is Severity.HIGH
    assert_no_secret(evidence, found, AWS_KEY_ID, DB_PASSWORD)


def test_secret_still_in_head_is_critical_once(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    repo.commit(DOTgitignore=GOOD_GITIGNORE, settingsDOTpy=f"GITHUB_TOKEN = '{GITHUB_TOKEN}'\n")
    repo.commit(READMEDOTmd="# app\n")
    evidence = scan(repo)
    found = verdicts(evidence)
    (hit,) = [r for r in found["secrets-in-tree"] if r.status is Status.FAIL]
    assert hit.resource == f"{repo.path}/settings.py:1" and hit.detail.startswith("github-token ghp_…[sha256:")
    assert {c.meta.id: c.meta.severity for c in all_checks()}["secrets-in-tree"] is Severity.CRITICAL
    assert statuses(found["secrets-in-history"]) == {Status.PASS}  # reported once, as CRITICAL
    assert_no_secret(evidence, found, GITHUB_TOKEN)


def test_branch_only_secret_is_found(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    repo.commit(DOTgitignore=GOOD_GITIGNORE, READMEDOTmd="x\n")
    repo.git("checkout", "-q", "-b", "feature")
    branch_commit = repo.commit(slackDOTyaml=f"slack:\n  bot: {BRANCH_TOKEN}\n")
    repo.git("checkout", "-q", "main")
    found = verdicts(scan(repo))
    assert statuses(found["secrets-in-tree"]) == {Status.PASS}
    (hit,) = [r for r in found["secrets-in-history"] if r.status is Status.FAIL]
    assert hit.resource == f"{repo.path}/slack.yaml:2@{branch_commit[:12]}" and "slack-token" in hit.detail


def test_env_file_committed_then_deleted_and_still_tracked(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    added = repo.commit(DOTenv=f"DB_PASSWORD={DB_PASSWORD}\n", DOTenvDOTexample="DB_PASSWORD=\n")
    repo.commit(DOTenv=None)
    repo.commit(deploy__prodDOTenv="LOG_LEVEL=info\n")
    evidence = scan(repo)
    found = verdicts(evidence)
    fails = {r.resource: r for r in found["secrets-env-file-committed"] if r.status is Status.FAIL}
    env, prod = f"{repo.path}/.env", f"{repo.path}/deploy/prod.env"
    assert set(fails) == {env, prod}
    assert added[:12] in fails[env].detail and fails[env].severity is None  # HIGH: history only
    assert fails[prod].severity is Severity.CRITICAL  # still tracked
    assert any(r.status is Status.FAIL and r.resource.startswith(f"{env}:") for r in found["secrets-in-history"])
    assert_no_secret(evidence, found, DB_PASSWORD)


def test_gitignore_missing_patterns(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    repo.commit(DOTgitignore="node_modules/\n.env\n*.pem\n")
    (result,) = verdicts(scan(repo))["secrets-gitignore"]
    assert result.status is Status.FAIL
    assert result.detail == "not ignored: .env.*, *.key, *.p12, *.pfx, secrets.yaml, secrets.json"
    bare = Repo(tmp_path / "bare")
    bare.commit(READMEDOTmd="x\n")
    (result,) = verdicts(scan(bare))["secrets-gitignore"]
    assert result.status is Status.FAIL and "(no .gitignore at the root)" in result.detail


def test_precommit_without_secret_scanner(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    repo.commit(DOTpre_H_commit_H_configDOTyaml="repos:\n  - repo: https://github.com/psf/black\n    hooks:\n"
                                             "      - id: black\n")
    (result,) = verdicts(scan(repo))["secrets-precommit-scan"]
    assert result.status is Status.FAIL and ".pre-commit-config.yaml name(s) no secret scanner" in result.detail


def test_dockerfile_literal_secret_is_reported_once_in_the_tree(tmp_path: Path) -> None:
    """Layer 5 reports a literal secret on a Dockerfile line like any other (rotate it); the ENV/ARG build design
    is layer 11's dockerfile-secret-env. A name without a literal (ARG NPM_TOKEN) is not a leaked value."""
    repo = Repo(tmp_path / "r")
    repo.commit(Dockerfile=f"FROM node:20\nARG NPM_TOKEN\nENV DB_PASSWORD={DB_PASSWORD} NODE_ENV=production\n"
                           "ENV API_KEY changeme\n",
                docker__workerDOTDockerfile="FROM alpine\nENV STRIPE_SECRET_KEY=${STRIPE_SECRET_KEY}\n")
    evidence = scan(repo)
    found = verdicts(evidence)
    assert "secrets-dockerfile-env" not in {c.meta.id for c in all_checks()}
    assert "dockerfiles" not in evidence.data.data
    fails = [(r.resource, r.detail) for r in found["secrets-in-tree"] if r.status is Status.FAIL]
    assert [res for res, _ in fails] == [f"{repo.path}/Dockerfile:3"]
    assert fails[0][1].startswith("generic-secret ") and "[sha256:" in fails[0][1]
    assert_no_secret(evidence, found, DB_PASSWORD)


def test_skipped_files_are_not_assessed_never_clean(tmp_path: Path) -> None:
    """A 6.5 MB dump ending in a key and an unreadable file are named in a NOT_ASSESSED result, never PASS."""
    repo = Repo(tmp_path / "r")
    dump = "INSERT INTO t VALUES (1, 'x');\n" * (6_500_000 // 31) + f"-- aws_access_key_id = {AWS_KEY_ID}\n"
    assert len(dump) > MAX_FILE_BYTES
    repo.commit(dumpDOTsql=dump, lockedDOTtxt=f"token = '{GITHUB_TOKEN}'\n")
    (repo.path / "locked.txt").chmod(0)
    try:
        if os.access(repo.path / "locked.txt", os.R_OK):
            (repo.path / "locked.txt").chmod(0o644)  # root reads anything: only the large file is skipped
        evidence = scan(repo)
    finally:
        (repo.path / "locked.txt").chmod(0o644)
    found = verdicts(evidence)
    skipped = {s["file"]: s["reason"] for s in evidence.data.data["tree"]["skipped"]}
    assert skipped["dump.sql"] == "6.5 MB, over the 5.0 MB limit"
    results = found["secrets-in-tree"]
    assert Status.PASS not in statuses(results)
    (gap,) = [r for r in results if r.status is Status.NOT_ASSESSED]
    assert "dump.sql (6.5 MB, over the 5.0 MB limit)" in gap.reason
    if "locked.txt" in skipped:
        assert "locked.txt (not readable: Permission denied)" in gap.reason
        assert statuses(results) == {Status.NOT_ASSESSED}
    else:  # what was read still FAILs next to the files that were not
        assert statuses(results) == {Status.FAIL, Status.NOT_ASSESSED}
    assert_no_secret(evidence, found, AWS_KEY_ID, GITHUB_TOKEN)


def test_nul_bytes_text_is_scanned_binary_is_skipped_silently(tmp_path: Path) -> None:
    """A text file with a stray NUL is scanned without it; a real PNG (magic bytes) is neither scanned nor a gap."""
    repo = Repo(tmp_path / "r")
    repo.commit(DOTgitignore=GOOD_GITIGNORE, DOTpre_H_commit_H_configDOTyaml=PRECOMMIT)
    repo.write("export.csv", f"id,name\n1,\0bob\naws_key_id={AWS_KEY_ID}\n")
    repo.write("notes.txt", f"token = '{GITHUB_TOKEN}'\n".encode("utf-16-le").decode("latin-1"))
    (repo.path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + f"AKIA{'B' * 16}".encode())
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "data")
    evidence = scan(repo)
    found = verdicts(evidence)
    tree = evidence.data.data["tree"]
    assert tree["skipped"] == [] and tree["binary"] == 1 and tree["nul_removed"] == 2
    fails = sorted(r.resource for r in found["secrets-in-tree"] if r.status is Status.FAIL)
    assert fails == [f"{repo.path}/export.csv:3", f"{repo.path}/notes.txt:1"]
    assert statuses(found["secrets-in-tree"]) == {Status.FAIL}
    assert_no_secret(evidence, found, AWS_KEY_ID, GITHUB_TOKEN)


def test_not_a_git_repository_is_not_assessed_for_history(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "app.py").write_text(f"token = '{GITHUB_TOKEN}'\n")
    found = verdicts(collect_repository(RepositoryScope("plain", folder, None)))
    assert statuses(found["secrets-in-tree"]) == {Status.FAIL}  # a folder still has a tree
    for check_id in ("secrets-in-history", "secrets-env-file-committed", "secrets-gitignore"):
        (result,) = found[check_id]
        assert result.status is Status.NOT_ASSESSED and "not a git repository" in result.reason


def test_missing_path_and_history_off_are_not_assessed(tmp_path: Path, clean_repo: Repo) -> None:
    (missing, file_path) = collect_repositories([RepositoryScope("gone", tmp_path / "nope", None),
                                                 RepositoryScope("file", clean_repo.path / ".gitignore", None)])
    for evidence in (missing, file_path):
        found = verdicts(evidence)
        for check_id, results in found.items():
            (result,) = results
            assert result.status is Status.NOT_ASSESSED and "no such directory" in result.reason, check_id
    found = verdicts(scan(clean_repo, history=False))
    (result,) = found["secrets-in-history"]
    assert result.status is Status.NOT_ASSESSED and "history = false" in result.reason
    assert statuses(found["secrets-in-tree"]) == {Status.PASS}


def test_snapshot_round_trip_and_audit(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    repo.commit(configDOTpy=f"AWS_ACCESS_KEY_ID = '{AWS_KEY_ID}'\n")
    snapshot = Snapshot(collected_at=__import__("datetime").datetime.now(__import__("datetime").UTC),
                        repositories=[scan(repo)])
    path = tmp_path / "snap.json"
    snapshot.save(path)
    assert AWS_KEY_ID not in path.read_text()
    report = evaluate(Snapshot.load(path))
    layer5 = [f for f in report.findings if f.layer == 5]
    assert {(f.check_id, f.severity) for f in layer5} >= {("secrets-in-tree", Severity.CRITICAL)}


# ------------------------------------------------------------------------------------------ host processes


@pytest.fixture
def secret_process() -> Iterator[subprocess.Popen[bytes]]:
    env = {"PATH": "/usr/bin:/bin", "DB_PASSWORD": DB_PASSWORD, "STRIPE_API_KEY": "sk_live_" + rand(24),
           "REDIS_URL": f"redis://:{DB_PASSWORD}@cache:6379/0", "API_TOKEN": "changeme", "HOME": "/tmp"}
    proc = subprocess.Popen(["sleep", "60"], env=env)
    time.sleep(0.1)
    yield proc
    proc.kill()
    proc.wait()


def test_process_environ_live(secret_process: subprocess.Popen[bytes]) -> None:
    evidence = HostCollector(HostScope(name="local")).collect()
    assert DB_PASSWORD not in json.dumps(evidence.to_json())
    facts = parse_host(evidence)
    assert facts.process_environ is not None
    mine = [v for v in facts.process_environ.secrets if v.pid == secret_process.pid]
    assert sorted(v.name for v in mine) == ["DB_PASSWORD", "REDIS_URL", "STRIPE_API_KEY"]  # placeholder skipped
    results = run(HOST, facts, "secrets-process-environ")
    (sleep,) = [r for r in results if r.resource == "local:sleep"]
    assert sleep.status is Status.FAIL and "DB_PASSWORD=" in sleep.detail and str(secret_process.pid) in str(
        sleep.verify)
    assert DB_PASSWORD not in sleep.detail


def test_process_environ_folder(tmp_path: Path) -> None:
    scope = HostScope(name="saved", evidence=tmp_path)
    (result,) = run(HOST, parse_host(load_host_folder(scope)), "secrets-process-environ")
    assert result.status is Status.NOT_ASSESSED and "proc-environ.txt" in result.reason
    (tmp_path / environ.FOLDER_FILE).write_text("PATH=/usr/bin\nHOME=/root\nOLDPWD=/srv\n#read 1\n#unreadable 0\n")
    (result,) = run(HOST, parse_host(load_host_folder(scope)), "secrets-process-environ")
    assert result.status is Status.PASS
    (tmp_path / environ.FOLDER_FILE).write_text(f"PATH=/usr/bin\nDB_PASSWORD={DB_PASSWORD}\n")
    evidence = load_host_folder(scope)
    (result,) = run(HOST, parse_host(evidence), "secrets-process-environ")
    assert result.status is Status.FAIL and DB_PASSWORD not in json.dumps(evidence.to_json()) + result.detail


def test_process_environ_unreadable_and_off() -> None:
    host = HostEvidence(name="h", address="local", files={environ.KEY: Record(data="#read 3\n#unreadable 40\n")})
    (result,) = run(HOST, parse_host(host), "secrets-process-environ")
    assert result.status is Status.NOT_ASSESSED and "40 process environment(s)" in result.reason
    off = HostCollector(HostScope(name="off", process_environ=False))
    (result,) = run(HOST, parse_host(off.collect()), "secrets-process-environ")
    assert result.status is Status.NOT_ASSESSED and "was not collected" in result.reason


def test_process_environ_nothing_read_is_not_assessed(tmp_path: Path) -> None:
    """An empty saved file, '#read 0' (nothing readable) or hidepid for a non-root collector is never clean."""
    for text, reason in (("", "no '#read <n>' line"), ("#read 0\n#unreadable 0\n", "#read 0"),
                         ("#read 2\n#unreadable 0\n#hidepid rw,nosuid,hidepid=2\n", "hidepid=2")):
        host = HostEvidence(name="h", address="local", files={ENVIRON_KEY: Record(data=text)})
        (result,) = run(HOST, parse_host(host), "secrets-process-environ")
        assert result.status is Status.NOT_ASSESSED and reason in result.reason, text
    scope = HostScope(name="saved", evidence=tmp_path)
    (tmp_path / environ.FOLDER_FILE).write_text("")
    (result,) = run(HOST, parse_host(load_host_folder(scope)), "secrets-process-environ")
    assert result.status is Status.NOT_ASSESSED and "no process environment was read" in result.reason
    # an auditor's raw `cat /proc/<PID>/environ | tr "\0" "\n"` dump is one process read
    (tmp_path / environ.FOLDER_FILE).write_text("PATH=/usr/bin\nHOME=/root\n")
    (result,) = run(HOST, parse_host(load_host_folder(scope)), "secrets-process-environ")
    assert result.status is Status.PASS


# ------------------------------------------------------------------------------------------ labelled corpus


def _jwt() -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': rand(8), 'role': 'admin'})}.{rand(43)}"


B64 = string.ascii_letters + string.digits + "+/"
SECRETS: list[tuple[str, str]] = [  # (path, text) that hold a real-looking secret
    ("app/config.py", f'AWS_ACCESS_KEY_ID = "{AWS_KEY_ID}"'),
    ("deploy/creds", f"aws_secret_access_key = {rand(40, B64)}"),
    (".github/setup.sh", f"export GH_TOKEN={GITHUB_TOKEN}"),
    ("ci/publish.sh", f"git clone https://oauth2:glpat-{rand(20)}@gitlab.com/x/y.git"),
    ("notify.py", f"SLACK = 'xoxb-{rand(12, string.digits)}-{rand(13, string.digits)}-{rand(24)}'"),
    ("notify.js", f"const hook = 'https://hooks.slack.com/services/T{rand(8, string.ascii_uppercase)}/"
                  f"B{rand(8, string.ascii_uppercase)}/{rand(24)}';"),
    ("billing.rb", f"Stripe.api_key = 'sk_live_{rand(24)}'"),
    ("keys/deploy_key", f"-----BEGIN OPENSSH PRIVATE KEY-----\n{rand(70, B64)}\n-----END OPENSSH PRIVATE KEY-----"),
    ("certs/server.key", f"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA{rand(48, B64)}\n"),
    ("client.ts", f"const auth = 'Bearer {_jwt()}';"),
    ("settings.py", f"DATABASE_URL = 'postgresql://app:{rand(20)}@db.internal:5432/app'"),
    ("docker-compose.yml", f"      REDIS_URL: redis://:{rand(24)}@redis:6379/0"),
    ("config/prod.yaml", f"  password: \"{rand(14)}!{rand(6)}\""),
    ("config/app.ini", f"client_secret = {rand(32)}"),
    ("django/settings.py", f"SECRET_KEY = '{rand(40)}$%^&*(-_{rand(10)}'"),
    ("web/config.json", f'  "apiKey": "{rand(32)}",'),
    (".envrc", f"export SENDGRID_API_KEY=SG.{rand(22)}.{rand(43)}"),
    ("k8s/secret.env", f"DB_PASSWORD={rand(10)}@{rand(10)}"),
    ("main.go", f'const signingKey = "{rand(32, B64)}"'),
    ("app.properties", f"spring.datasource.password={rand(16)}9#"),
]
LOOK_ALIKES: list[tuple[str, str]] = [  # (path, text) that must not be reported
    ("docs/aws.md", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"),
    ("app/creds.py", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("app/models.py", 'request_id = "123e4567-e89b-12d3-a456-426614174000"'),
    ("app/models.py", 'token_id = "9b2f6a3e-1c4d-4e8f-9a7b-2d5c6e8f0a1b"'),
    ("app/hash.py", f'checksum = "{rand(64, "0123456789abcdef")}"'),
    ("app/deploy.py", f'commit = "{rand(40, "0123456789abcdef")}"'),
    ("web/logo.html", f'<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA{rand(120, B64)}">'),
    ("package-lock.json", f'      "integrity": "sha512-{rand(86, B64)}=="'),
    ("yarn.lock", f"  integrity sha512-{rand(86, B64)}=="),
    ("poetry.lock", f'    {{file = "x.whl", hash = "sha256:{rand(64, "0123456789abcdef")}"}},'),
    ("config.py", 'password = "changeme"'),
    (".env.example", "DB_PASSWORD=${DB_PASSWORD}"),
    ("config.yaml", "api_key: <your-api-key>"),
    ("config.yaml", 'token: "xxxxxxxxxxxxxxxxxxxxxxxx"'),
    ("ansible/vars.yml", 'db_password: "{{ vault_db_password }}"'),
    ("settings.py", 'SECRET_KEY = os.environ["SECRET_KEY"]'),
    ("auth.py", "password = get_password(user)"),
    ("README.md", "DATABASE_URL=postgres://user:password@localhost:5432/db"),
    ("compose.yml", "      DATABASE_URL: postgres://app:${PGPASSWORD}@db:5432/app"),
    ("docs/keys.md", "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----"),
    ("docs/jwt.md", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0I"
                    "joxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
    ("policy.py", "password_length = 32"),
    ("client.py", 'token_url = "https://auth.example.com/oauth/token"'),
    ("api.py", 'api_key_header = "X-Api-Key-Header"'),
    ("form.tsx", 'const passwordField = "password-input";'),
    ("tests/test_login.py", 'password = "Sup3rS3cret!42"'),
    ("app.py", f'SECRET_KEY = "{rand(40)}"  # pragma: allowlist secret'),
    ("views.py", "csrf_token = request.POST['csrf_token']"),
    ("billing.py", "stripe.api_key = settings.STRIPE_SECRET_KEY"),
    ("config.toml", 'password = "********"'),
    ("tokenizer.py", f'tokenizer_name = "{rand(12)}-base-{rand(6)}"'),
    ("go.sum", f"github.com/x/y v1.2.3 h1:{rand(43, B64)}="),
]


def detected(path: str, text: str) -> bool:
    scanner = LineScanner(path)
    hits = [h for number, line in enumerate(text.encode().split(b"\n"), 1) for h in scanner.feed(line, number)]
    return bool(hits + list(scanner.close()))


def test_corpus_precision_recall() -> None:
    true_pos = sum(detected(p, t) for p, t in SECRETS)
    false_pos = [(p, t[:60]) for p, t in LOOK_ALIKES if detected(p, t)]
    missed = [(p, t[:60]) for p, t in SECRETS if not detected(p, t)]
    precision = true_pos / (true_pos + len(false_pos)) if true_pos + len(false_pos) else 0.0
    recall = true_pos / len(SECRETS)
    print(f"\nsecrets corpus: {len(SECRETS)} secrets, {len(LOOK_ALIKES)} look-alikes; "
          f"precision {precision:.3f}, recall {recall:.3f}; false positives {false_pos}; missed {missed}")
    assert precision >= 0.95 and recall >= 0.95, (false_pos, missed)
