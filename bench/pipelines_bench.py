"""Benchmark outsidein's CI/CD layer (layer 11) against zizmor on the same synthetic estate.

The estate: N GitHub Actions workflows (default 500) in one repository; every tenth workflow plants one problem
of a class both tools cover (an action pinned to a branch/tag, a template injection in ``run:``, a
``pull_request_target`` that checks out the PR head), the rest are hardened (SHA pins, env indirection,
``permissions: contents: read``). Each tool runs in its own child process (wall time, peak RSS via
``os.wait4``); findings are compared per class by the workflow files each tool names.

zizmor is installed into bench/.venvs/zizmor (created if missing, never a project dependency).

    python bench/pipelines_bench.py                 # 500 workflows, 3 runs per tool
    python bench/pipelines_bench.py --workflows 50 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venvs" / "zizmor"
SHA = "11bd71901bbe5b1630ceea73d27597364c9af683"
ZIZMOR_CLASS = {"unpinned-uses": "unpinned", "template-injection": "injection",
                "dangerous-triggers": "pr_target", "artipacked": None}
OUTSIDEIN_CLASS = {"cicd-action-unpinned": "unpinned", "cicd-script-injection": "injection",
                   "cicd-pr-target-checkout": "pr_target"}

HARDENED = """name: ci-{n}
on:
  pull_request:
permissions:
  contents: read
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@{sha}
        with:
          persist-credentials: false
      - name: test
        env:
          TITLE: ${{{{ github.event.pull_request.title }}}}
        run: |
          echo "$TITLE"
          npm ci
          npm audit --audit-level=high
"""
PLANTS = {
    "unpinned": ("      - uses: actions/checkout@{sha}", "      - uses: actions/setup-node@v4"),
    "injection": ('          echo "$TITLE"', '          echo "${{ github.event.pull_request.title }}"'),
    "pr_target": ("  pull_request:\n", "  pull_request_target:\n"),
}


def estate(root: Path, count: int) -> dict[str, set[str]]:
    wf_dir = root / ".github" / "workflows"
    wf_dir.mkdir(parents=True)
    planted: dict[str, set[str]] = {k: set() for k in PLANTS}
    classes = list(PLANTS)
    for n in range(count):
        text = HARDENED.format(n=n, sha=SHA)
        name = f"wf{n:04d}.yml"
        if n % 10 == 0:
            cls = classes[(n // 10) % len(classes)]
            old, new = PLANTS[cls]
            text = text.replace(old.format(sha=SHA), new)
            if cls == "pr_target":
                ref = "\n          ref: ${{ github.event.pull_request.head.sha }}"
                text = text.replace("persist-credentials: false", "persist-credentials: false" + ref)
            planted[cls].add(name)
        (wf_dir / name).write_text(text)
    return planted


def ensure_zizmor() -> Path:
    exe = VENV / "bin" / "zizmor"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "zizmor"], check=True)
    return exe


def timed(cmd: list[str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        _pid, _status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        return wall, usage.ru_maxrss // 1024, out.read().decode()


OUTSIDEIN_CHILD = """
import json, sys
from pathlib import Path
from outsidein.checks.registry import all_checks
from outsidein.pipelines.collect import collect_pipelines
from outsidein.pipelines.facts import parse_pipelines
from outsidein.scope import RepositoryScope, Scope
[ev] = collect_pipelines(Scope(repositories=(RepositoryScope("bench", Path(sys.argv[1])),)))
facts = parse_pipelines(ev)
out = []
for c in all_checks():
    if c.meta.layer == 11:
        out += [[r.check_id, r.resource] for r in c.run(facts) if r.status.value == "FAIL"]
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workflows", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    zizmor = ensure_zizmor()
    version = subprocess.run([str(zizmor), "--version"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        planted = estate(root, args.workflows)
        runs: dict[str, list[tuple[float, int]]] = {"outsidein": [], "zizmor": []}
        found: dict[str, dict[str, set[str]]] = {}
        for _ in range(args.repeat):
            wall, rss, out = timed([sys.executable, "-c", OUTSIDEIN_CHILD, str(root)])
            runs["outsidein"].append((wall, rss))
            mine: dict[str, set[str]] = {k: set() for k in PLANTS}
            for check_id, resource in json.loads(out):
                cls = OUTSIDEIN_CLASS.get(check_id)
                if cls:
                    mine[cls].add(Path(resource.rsplit(":", 1)[0]).name)
            found["outsidein"] = mine
            wall, rss, out = timed([str(zizmor), "--offline", "--format", "json", "--no-progress",
                                    "--persona", "regular", str(root)])
            runs["zizmor"].append((wall, rss))
            theirs: dict[str, set[str]] = {k: set() for k in PLANTS}
            for finding in json.loads(out or "[]"):
                cls = ZIZMOR_CLASS.get(finding.get("ident", ""))
                if cls:
                    for loc in finding.get("locations", []):
                        key = loc.get("symbolic", {}).get("key", {})
                        local = key.get("Local", {})
                        path = local.get("verbatim_path") or local.get("given_path") or str(key)
                        theirs[cls].add(Path(path).name)
            found["zizmor"] = theirs
    report = {"workflows": args.workflows, "zizmor": version, "timing": {}, "findings": {}}
    for tool, samples in runs.items():
        report["timing"][tool] = {"median_s": round(statistics.median(s[0] for s in samples), 3),
                                  "peak_rss_mb": max(s[1] for s in samples)}
    for cls, files in planted.items():
        report["findings"][cls] = {"planted": len(files)}
        for tool in found:
            hit = found[tool][cls]
            report["findings"][cls][tool] = {"planted_found": len(hit & files), "other_files": len(hit - files)}
    print(json.dumps(report, indent=2))
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / f"pipelines-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
