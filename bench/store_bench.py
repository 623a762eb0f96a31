"""Benchmark the findings store: storing and diffing an audit of 100,000 findings.

Synthetic findings (tests/test_store_support.py's ``synthetic_report``), three audits in a row so every path
runs: audit 1 stores N new findings, audit 2 sees 90% of them again and 10% new (and resolves the 10% it no
longer sees), then ``diff`` between them and ``open_findings`` + ``build_tickets``. Each step's wall time and
the process's peak RSS after it (getrusage; tracemalloc with --tracemalloc) are printed. SQLite
always; PostgreSQL with ``--postgres URL`` or ``--start-postgres`` (a throwaway cluster from tests/servers.py,
needs root). Results go to bench/results/store-<time>.json.

    .venv/bin/python bench/store_bench.py                          # 100,000 findings, SQLite
    .venv/bin/python bench/store_bench.py --findings 20000 --start-postgres
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import platform
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.test_store_support import synthetic_report  # noqa: E402

from outsidein.store import Store, sqlite_url  # noqa: E402
from outsidein.tickets import build_tickets  # noqa: E402

T = TypeVar("T")
T0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
TRACE = False


def measure(name: str, fn: Callable[[], T], rows: list[dict[str, Any]]) -> T:
    """Wall time, and the process's peak RSS after the step (tracemalloc would slow SQLAlchemy 4x: only
    with --tracemalloc, for the Python-allocation peak of each step)."""
    if TRACE:
        tracemalloc.start()
    started = time.perf_counter()
    value = fn()
    elapsed = time.perf_counter() - started
    row: dict[str, Any] = {"step": name, "seconds": round(elapsed, 2), "peak_rss_mb": _rss_mb()}
    if TRACE:
        row["peak_alloc_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    rows.append(row)
    extra = f"   peak alloc {row['peak_alloc_mb']:7.1f} MB" if TRACE else ""
    print(f"  {name:<44} {elapsed:8.2f} s   peak RSS {row['peak_rss_mb']:7.1f} MB{extra}", flush=True)
    return value


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run(url: str, label: str, count: int) -> list[dict[str, Any]]:
    print(f"{label}: {count:,} findings")
    rows: list[dict[str, Any]] = []
    first = synthetic_report(count, T0)
    second = synthetic_report(count, T0 + dt.timedelta(days=1), offset=count // 10)
    with Store(url) as store:
        measure(f"store audit 1 ({count:,} new)", lambda: store.record(first), rows)
        stored = measure("store audit 2 (90% seen again, 10% new)", lambda: store.record(second), rows)
        assert stored.new == count // 10 and stored.resolved == count // 10, stored
        diff = measure("diff audit 1 -> 2", lambda: store.diff(1, 2), rows)
        assert len(diff.new) == count // 10 and len(diff.fixed) == count // 10
        now = T0 + dt.timedelta(days=2)
        tickets = measure("open findings + tickets", lambda: build_tickets(store.open_findings(now), now), rows)
        assert sum(len(t.findings) for t in tickets) == count
    return rows


@contextlib.contextmanager
def started_postgres() -> Iterator[str]:
    from tests.servers import postgres_server

    base = Path(tempfile.mkdtemp(prefix="outsidein-bench-pg-"))
    base.chmod(0o755)
    try:
        with postgres_server(base) as pg:
            yield f"postgresql+psycopg://{pg.user}:{pg.password}@127.0.0.1:{pg.port}/{pg.database}"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--postgres", metavar="URL", help="also benchmark this PostgreSQL (an empty database)")
    parser.add_argument("--start-postgres", action="store_true", help="start a throwaway cluster (root)")
    parser.add_argument("--tracemalloc", action="store_true", help="also the Python-allocation peak per step")
    args = parser.parse_args()
    global TRACE
    TRACE = args.tracemalloc
    results: dict[str, Any] = {"findings": args.findings, "python": platform.python_version(),
                               "machine": platform.machine(), "at": dt.datetime.now(dt.UTC).isoformat()}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = run(sqlite_url(Path(tmp) / "state.db"), "SQLite (WAL)", args.findings)
        results["sqlite_file_mb"] = round(sum(p.stat().st_size for p in Path(tmp).iterdir()) / 2**20, 1)
    if args.postgres:
        results["postgresql"] = run(args.postgres, "PostgreSQL", args.findings)
    elif args.start_postgres:
        with started_postgres() as url:
            results["postgresql"] = run(url, "PostgreSQL (local, fsync off)", args.findings)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(f"peak RSS {results['peak_rss_mb']} MB; SQLite file {results.get('sqlite_file_mb')} MB")
    out = ROOT / "bench" / "results" / f"store-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
