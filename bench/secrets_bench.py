"""Layer 5 benchmark: history-scanning throughput of outsidein against detect-secrets (and kingfisher if it installs).

    .venv/bin/python bench/secrets_bench.py [--commits 4000] [--files-per-commit 6]

Builds a repository with ``git fast-import`` (source-like files, a planted secret every 200 commits, half of
them removed again later), then measures, on the same input:

- outsidein: ``outsidein.secrets.collect.scan_history`` (one ``git log --all -p -U0`` stream), MB/s over the
  bytes of that stream;
- detect-secrets and kingfisher: the same stream saved as one file, scanned by each tool (detect-secrets does
  not walk git history itself; kingfisher's ``scan`` of the repository is timed as well when it installs).

The tools are installed into their own virtualenvs under bench/.venvs/ (created if missing, never in the
project's venv). A tool that does not install is reported as skipped. Results go to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENVS = HERE / ".venvs"
RESULTS = HERE / "results"
TOOLS = {"detect-secrets": "detect-secrets==1.5.0", "kingfisher": "kingfisher-bin"}
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
    """A repository built with git fast-import; returns the number of planted secrets."""
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
            if n % 200 == 0 and f == 0:
                key = "AKIA" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=16))
                body += f"\nAWS_ACCESS_KEY_ID = '{key}'\n"
                planted += 1
            data = body.encode()
            lines.append(f"M 100644 inline src/mod{n % 50}/file{f}.py\ndata {len(data)}\n")
            lines.append(data.decode() + "\n")
    stream = "".join(lines).encode()
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=stream, check=True)
    subprocess.run(["git", "-C", str(path), "reset", "-q", "--hard", "main"], check=True)
    return planted


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commits", type=int, default=4000)
    parser.add_argument("--files-per-commit", type=int, default=6)
    args = parser.parse_args()
    from outsidein.secrets.collect import scan_history

    out: dict[str, Any] = {"commits": args.commits, "files_per_commit": args.files_per_commit, "tools": {}}
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        started = time.monotonic()
        out["planted"] = build_repo(repo, args.commits, args.files_per_commit)
        log(f"built {args.commits} commits in {time.monotonic() - started:.1f}s, {out['planted']} secrets planted")

        result = scan_history(repo)
        mb = result["bytes"] / 1e6
        out["stream_mb"] = round(mb, 1)
        out["tools"]["outsidein"] = {"seconds": result["seconds"], "mb_per_s": round(mb / result["seconds"], 1),
                                     "findings": len(result["findings"])}
        log(f"outsidein: {mb:.1f} MB of history in {result['seconds']:.2f}s = {mb / result['seconds']:.1f} MB/s, "
            f"{len(result['findings'])} findings")

        patch = Path(tmp) / "history.patch"
        with patch.open("wb") as fh:
            subprocess.run(["git", "-C", str(repo), "log", "--all", "-p", "-U0", "--no-color", "--format=%x01%H"],
                           stdout=fh, check=True)
        detect = venv_tool("detect-secrets")
        if detect:
            started = time.monotonic()
            done = subprocess.run([str(detect), "scan", "--all-files", str(patch)], capture_output=True, text=True,
                                  cwd=tmp)
            seconds = time.monotonic() - started
            found = sum(len(v) for v in json.loads(done.stdout or "{}").get("results", {}).values())
            out["tools"]["detect-secrets"] = {"seconds": round(seconds, 2), "mb_per_s": round(mb / seconds, 1),
                                              "findings": found}
            log(f"detect-secrets: {seconds:.2f}s = {mb / seconds:.1f} MB/s, {found} findings")
        else:
            out["tools"]["detect-secrets"] = {"skipped": "did not install"}
        king = venv_tool("kingfisher")
        if king:
            started = time.monotonic()
            done = subprocess.run([str(king), "scan", str(repo), "--format", "json", "--no-validate"],
                                  capture_output=True, text=True)
            seconds = time.monotonic() - started
            count = done.stdout.count('"rule"')
            out["tools"]["kingfisher"] = {"seconds": round(seconds, 2), "mb_per_s": round(mb / seconds, 1),
                                          "findings_rule_mentions": count, "exit": done.returncode}
            log(f"kingfisher: {seconds:.2f}s = {mb / seconds:.1f} MB/s ({done.returncode})")
        else:
            out["tools"]["kingfisher"] = {"skipped": "did not install"}
    RESULTS.mkdir(exist_ok=True)
    target = RESULTS / f"secrets-{time.strftime('%Y%m%dT%H%M%S')}.json"
    target.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
