"""Layer 9 benchmark: the restore drill against the playbook's own shell pipeline, on the same object, same run.

    PATH=$PATH:/usr/sbin .venv/bin/python bench/backup_bench.py [--mb 300] [--repeat 2]

Starts a throwaway PostgreSQL (``tests/servers.py``, as root), fills a database with about ``--mb`` MB of rows
(``orders`` and ``customers``), makes the backup object with the playbook's pipeline
(``pg_dump | gzip | openssl enc -aes-256-cbc -pbkdf2 -iter 100000 -salt -pass env:BACKUP_ENCRYPTION_KEY``) and a
``.sha256`` next to it, then restores it, alternating, ``--repeat`` times each:

- drill: ``outsidein.backups.drill.run_drill`` (SHA-256 check, PBKDF2, streaming AES-256-CBC in ``cryptography``,
  ``zlib`` gunzip, ``psql --single-transaction``, row counts), into ``restore_test``;
- shell: ``openssl enc -d -aes-256-cbc -pbkdf2 -iter 100000 -pass env:BACKUP_ENCRYPTION_KEY -in backup.sql.gz.enc
  | gunzip | psql -q -X -v ON_ERROR_STOP=1 -d restore_shell`` into a fresh database (no checksum, no counts).

Reports MB of backup object restored per second (object bytes / wall time) for both.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.servers import Postgres, postgres_server  # noqa: E402

from outsidein.backups.drill import open_object, run_drill  # noqa: E402
from outsidein.scope import DrillScope  # noqa: E402

KEY = "bench-only-passphrase"
ITER = 100_000


def fill(pg: Postgres, mb: int) -> int:
    """About ``mb`` MB of dump: ~120 bytes of SQL text per order row."""
    rows = max(1000, mb * 1_000_000 // 120)
    pg.psql("CREATE TABLE customers (id int PRIMARY KEY, name text, email text);"
            "INSERT INTO customers SELECT g, 'customer ' || g, 'c' || g || '@example.com' "
            "FROM generate_series(1, 10000) g;"
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer int, total numeric(12,2), placed timestamptz, "
            "note text);"
            f"INSERT INTO orders SELECT g, 1 + g % 10000, (g % 100000) / 7.0, now() - (g % 86400) * interval '1 s', "
            f"md5(g::text) || md5((g * 7)::text) FROM generate_series(1, {rows}) g;", timeout=3600)
    return rows


def make_object(pg: Postgres, out: Path) -> None:
    env = {**os.environ, "PGPASSWORD": pg.password, "BACKUP_ENCRYPTION_KEY": KEY}
    subprocess.run(f"pg_dump '{pg.dsn(password=False)}' | gzip | openssl enc -aes-256-cbc -pbkdf2 -iter {ITER} "
                   f"-salt -pass env:BACKUP_ENCRYPTION_KEY -out {out}", shell=True, check=True, env=env, timeout=3600)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    out.with_name(out.name + ".sha256").write_text(f"{digest}  {out.name}\n")


def shell_restore(pg: Postgres, obj: Path) -> float:
    pg.admin("DROP DATABASE IF EXISTS restore_shell")
    pg.admin(f"CREATE DATABASE restore_shell OWNER {pg.user}")
    env = {**os.environ, "PGPASSWORD": pg.password, "BACKUP_ENCRYPTION_KEY": KEY}
    target = pg.dsn(password=False).replace("dbname=appdb", "dbname=restore_shell")
    started = time.perf_counter()
    subprocess.run(f"openssl enc -d -aes-256-cbc -pbkdf2 -iter {ITER} -pass env:BACKUP_ENCRYPTION_KEY -in {obj} | "
                   f"gunzip | psql -q -X -v ON_ERROR_STOP=1 '{target}' > /dev/null", shell=True, check=True, env=env,
                   timeout=3600)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=300, help="approximate size of the plain SQL dump (MB)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="outsidein-backup-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with postgres_server(tmp) as pg:
            pg.admin(f"CREATE DATABASE restore_test OWNER {pg.user}")
            started = time.perf_counter()
            rows = fill(pg, args.mb)
            obj = tmp / "db_backup_20261128_020000.sql.gz.enc"
            make_object(pg, obj)
            size = obj.stat().st_size
            print(f"{rows:,} order rows; object {size / 1e6:.1f} MB (made in {time.perf_counter() - started:.0f} s)")
            drill = DrillScope(scratch_databases=("restore_test",), iterations=ITER, expect={"orders": rows},
                               expect_min={"customers": 10000}, max_seconds=3600)
            target = pg.dsn().replace("dbname=appdb", "dbname=restore_test")
            drills, shells = [], []
            for _ in range(args.repeat):
                record = run_drill(open_object(str(obj)), target, drill, KEY.encode())
                if record.result != "success":
                    print(f"drill failed: {record.reason}")
                    return 1
                drills.append(record.duration_s)
                shells.append(shell_restore(pg, obj))
            sql_mb = record.sql_bytes / 1e6
    best_drill, best_shell = min(drills), min(shells)
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs; SQL {sql_mb:.0f} MB, object {size / 1e6:.1f} MB")
    print(f"| pipeline | best of {args.repeat} | object MB/s | SQL MB/s |")
    print("|---|---|---|---|")
    for name, seconds in (("outsidein drill restore (checksum, decrypt, gunzip, psql, counts)", best_drill),
                          ("openssl enc -d | gunzip | psql", best_shell)):
        print(f"| {name} | {seconds:.1f} s | {size / 1e6 / seconds:.1f} | {sql_mb / seconds:.1f} |")
    print(f"all runs: drill {', '.join(f'{d:.1f}' for d in drills)} s; shell {', '.join(f'{s:.1f}' for s in shells)} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
