"""Layer 5 scanning speed-ups change no finding: the block pre-filter, the per-rule gates, the generic rule's
fast matcher and the block-wise history parser are each compared with the plain per-line way on generated text
(random, seeded: a failure reproduces) and on a real git repository.
"""

from __future__ import annotations

import random
import re
import string
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from outsidein.secrets import rules
from outsidein.secrets.collect import (
    GIT_LOG,
    _finding,
    is_env_file,
    scan_history,
    scan_history_stream,
)
from outsidein.secrets.scan import LineScanner, scan_text
from tests.test_checks_secrets import LOOK_ALIKES, SECRETS, Repo

RNG = random.Random(11)
ALNUM = string.ascii_letters + string.digits


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


SAMPLES: dict[str, list[str]] = {  # rule -> lines it must report (one per token shape the pre-filter names)
    "aws-access-key-id": [f"id = '{p}{rand(16, string.ascii_uppercase + string.digits)}'"
                          for p in ("AKIA", "ASIA", "ABIA", "ACCA")],
    "aws-secret-access-key": [f"AWS_SK = {rand(20)}/{rand(19)}", f"aws_secret_access_key: '{rand(38)}+/'"],
    "github-token": [f"t = '{p}_{rand(36)}'" for p in ("ghp", "gho", "ghu", "ghs", "ghr")]
    + [f"t = 'github_pat_{rand(70, ALNUM + '_')}'"],
    "gitlab-token": [f"GL={p}-{rand(24)}" for p in ("glpat", "gldt", "glrt", "glptt")],
    "slack-token": [f"SLACK=xox{c}-{rand(12, string.digits)}-{rand(20)}" for c in "abprs"],
    "slack-webhook": [f"url: https://hooks.slack.com/services/T{rand(8, string.ascii_uppercase)}/"
                      f"B{rand(8, string.ascii_uppercase)}/{rand(24)}"],
    "sendgrid-api-key": [f"SENDGRID=SG.{rand(22)}.{rand(43)}"],
    "stripe-live-key": [f"key: sk_live_{rand(24)}", f"restricted = 'rk_live_{rand(30)}'"],
    "private-key": [f"-----BEGIN {kind}PRIVATE KEY-----" for kind in ("", "RSA ", "EC ", "OPENSSH ", "PGP ")],
    "jwt": [f"Authorization: Bearer eyJ{rand(20)}.eyJ{rand(30)}.{rand(43)}"],
    "database-url-password": [f"DATABASE_URL=postgresql://app:{rand(16)}@db:5432/app",
                              f"MONGO = 'mongodb+srv://u:{rand(12)}@cluster.example.net/db'"],
    "generic-secret": [f"{name} {op} '{rand(14)}!{rand(4)}'" for name in
                       ("password", "DB_PASSWD", "db_pwd", "client_secret", "API_TOKEN", "apiKey", "access-key",
                        "private_key", "credential", "SigningKey", "encryption_key", "auth-key", "apikey")
                       for op in ("=", ":", ":=", "=>")],
}
FRAGMENTS = ["x", "value", "=", " = ", ": ", "'", '"', ",", " ", "key", "token", "secret", "password", "pwd",
             "credential", "api_key", "aws", "_sk", "AKIA", "ghp_", "glpat-", "xoxb-", "sk_live_", "SG.", "eyJ",
             "PRIVATE KEY", "-----BEGIN ", "://", "u:p@", "@host", "hooks.slack.com", "\t", "#", "(", ")", ".",
             "-", "changeme", "os.environ['X']", "${VAR}", "pragma: allowlist secret"]


def fuzz_line() -> str:
    parts = [RNG.choice(FRAGMENTS) if RNG.random() < 0.7 else rand(RNG.choice((4, 8, 16, 20, 36, 40)),
                                                                    ALNUM + "+/")
             for _ in range(RNG.randint(1, 12))]
    return "".join(parts)


LINES = [line for _, text in SECRETS + LOOK_ALIKES for line in text.split("\n")]
LINES += [line for samples in SAMPLES.values() for line in samples]
LINES += [fuzz_line() for _ in range(4000)]


def findings(scan: Iterable[tuple[int, rules.Candidate]]) -> list[tuple[int, str, str]]:
    return [(line, c.rule, c.fingerprint) for line, c in scan]


def every_line(text: bytes, path: str) -> list[tuple[int, str, str]]:
    scanner = LineScanner(path)
    hits = [h for number, line in enumerate(text.split(b"\n"), 1) for h in scanner.feed(line, number)]
    return findings(hits + list(scanner.close()))


def test_every_rule_sample_is_a_prefilter_hit_and_reported() -> None:
    for rule, lines in SAMPLES.items():
        for line in lines:
            raw = line.encode()
            assert rules.hit_offsets(raw), (rule, line)
            assert rule in {c.rule for c in rules.scan_line(raw, "app/config.py")}, (rule, line)


def test_generic_fast_matcher_equals_finditer() -> None:
    lines = [line.encode() for line in LINES]
    lines += [f"password={rand(n)}{sep}token={rand(12)}!".encode() for n in (199, 200, 201, 230, 401)
              for sep in ("", "x", ".", " ", ",")]
    for line in lines:
        fast = [(m.span(), m.groups()) for m in rules._generic_matches(line)]
        assert fast == [(m.span(), m.groups()) for m in rules._GENERIC.finditer(line)], line


def test_gates_and_block_prefilter_change_no_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = LINES
    text = "\n".join(lines).encode()
    gated_lines = [rules.scan_line(line.encode(), "app/x.py") for line in lines]
    block = {path: findings(scan_text(text, path)) for path in ("app/x.py", "tests/x.py")}
    monkeypatch.setattr(rules, "_GATES", tuple(re.compile(b"") for _ in rules.RULES))  # every rule on every line
    assert gated_lines == [rules.scan_line(line.encode(), "app/x.py") for line in lines]
    for path, found in block.items():
        reference = every_line(text, path)
        assert found == reference and len(reference) > 50, path


def test_scan_text_edges() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----"
    body = "MIIEpAIBAAKCAQEA" + rand(48, ALNUM + "+/")
    for text in (key, key + "\n", key + "\n\n", key + "\n...\n", key + f"\n{body}", f"x\n{key}\r\n{body}\r\n",
                 f"{key}\n{key}\n{body}", f"token = '{rand(20)}'", f"a\n\ntoken = '{rand(20)}'\n"):
        raw = text.encode()
        assert findings(scan_text(raw, "k.pem")) == every_line(raw, "k.pem"), text


# ------------------------------------------------------------------------------------------ history stream


def reference_history(stream: bytes) -> dict[str, Any]:
    """The former per-line parser of ``git log -p -U0`` output: every added line is fed to a scanner."""
    commits, commit, path, in_hunk, number = 0, "", "", False, 0
    scanner: LineScanner | None = None
    found: dict[tuple[str, str], dict[str, Any]] = {}
    env_files: dict[str, str] = {}

    def record(hits: Iterable[tuple[int, rules.Candidate]]) -> None:
        for at, cand in hits:
            seen = found.get((cand.fingerprint, path))
            found[(cand.fingerprint, path)] = _finding(path, at, cand, commit=commit,
                                                       commits=seen["commits"] + 1 if seen else 1)

    for line in stream.split(b"\n"):
        if in_hunk and line[:1] == b"+":
            if scanner is not None:
                number += 1
                record(scanner.feed(line[1:], number - 1))
            continue
        if line[:1] == b"\x01":
            if scanner is not None:
                record(scanner.close())
            commits += 1
            commit, scanner, in_hunk = line[1:].decode().strip(), None, False
        elif line.startswith(b"diff --git "):
            if scanner is not None:
                record(scanner.close())
            in_hunk = False
            head = line[len(b"diff --git "):].decode("utf-8", "replace")
            path = head.rpartition(" b/")[2] if " b/" in head else head
            scanner = LineScanner(path)
        elif line.startswith(b"new file mode") and is_env_file(path):
            env_files[path] = commit
        elif line.startswith(b"@@ "):
            in_hunk = True
            match = re.search(rb"\+(\d+)", line[3:])
            number = int(match.group(1)) if match else 0
        elif line.startswith(b"+++ /dev/null"):
            scanner = None
    if scanner is not None:
        record(scanner.close())
    return {"commits": commits, "findings": sorted(found.values(), key=lambda f: (f["file"], f["line"])),
            "env_files": [{"path": p, "commit": c} for p, c in sorted(env_files.items())]}


def chunked(data: bytes, sizes: Iterable[int]) -> Iterator[bytes]:
    at = 0
    for size in sizes:
        if at >= len(data):
            return
        yield data[at:at + size]
        at += size


@pytest.fixture(scope="module")
def history_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Commits that add, edit (several hunks), rename and delete files holding secrets and look-alikes."""
    repo = Repo(tmp_path_factory.mktemp("hist") / "r")
    files: dict[str, list[str]] = {}
    for n in range(40):
        changes: dict[str, str | None] = {}
        for _ in range(RNG.randint(1, 4)):
            name = f"src/m{RNG.randint(0, 9)}/f{RNG.randint(0, 5)}.py"
            lines = files.setdefault(name, [])
            for _ in range(RNG.randint(1, 6)):  # edits scattered over the file: several hunks
                at = RNG.randint(0, len(lines))
                pick = RNG.random()
                if pick < 0.15:
                    new = [RNG.choice(LINES[:120])]
                elif pick < 0.25:
                    new = ["-----BEGIN OPENSSH PRIVATE KEY-----", rand(64, ALNUM + "+/")]
                elif pick < 0.3:
                    new = ["-----BEGIN RSA PRIVATE KEY-----"]  # its body lands wherever the next edit puts it
                else:
                    new = [fuzz_line() for _ in range(RNG.randint(1, 5))]
                if lines and RNG.random() < 0.4:
                    del lines[at:at + RNG.randint(1, 3)]
                lines[at:at] = new
            changes[name] = "\n".join(lines) + "\n"
        if n % 7 == 3:
            changes[f"deploy/{n}.env"] = f"DB_PASSWORD={rand(12)}#{rand(6)}\n"
        committed = sorted(f for f in files if f not in changes)
        if n % 11 == 5 and committed:
            changes[committed[0]] = None
            del files[committed[0]]
        for rel, text in changes.items():
            target = repo.path / rel
            if text is None:
                repo.git("rm", "-q", rel)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        repo.git("add", "-A")
        repo.git("commit", "-q", "-m", f"c{n}")
    return repo.path


def test_history_blocks_equal_per_line_parse(history_repo: Path) -> None:
    stream = subprocess.run(["git", "-C", str(history_repo), *GIT_LOG], check=True, capture_output=True).stdout
    reference = reference_history(stream)
    assert len(reference["findings"]) > 20 and reference["env_files"]
    assert any(f["rule"] == "private-key" for f in reference["findings"])
    scanned = scan_history(history_repo)
    assert {k: scanned[k] for k in reference} == reference and scanned["bytes"] == len(stream)
    rng = random.Random(3)
    for chunks, block in ((stream.splitlines(keepends=True), 1), (chunked(stream, iter(lambda: 1000, 0)), 64),
                          (chunked(stream, (rng.randint(1, 5000) for _ in iter(int, 1))), 4096),
                          ([stream], 1 << 30)):
        result = scan_history_stream(chunks, block_bytes=block)
        assert {k: result[k] for k in reference} == reference, block
