"""Layer 12 benchmark: the load generator's capacity and added latency, against wrk, on one local NGINX.

Starts NGINX (``return 200`` on loopback, one worker), then for each concurrency runs wrk (one thread) and
outsidein's generator (``engine.run_stages``: ``wire.Client`` on asyncio, one process) for the same duration,
and prints for each requests/s, requests per CPU-second of the generator itself (wrk's from the child's
rusage, ours from ``time.process_time``) and p50/p90/p99 latency, plus the latency outsidein adds at p50
(its p50 minus wrk's). wrk is skipped when absent (``apt-get install wrk``).

    PATH=$PATH:/usr/sbin .venv/bin/python bench/simulate_bench.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from outsidein.scope import ScenarioScope
from outsidein.simulate import engine
from outsidein.simulate.guard import Endpoint

CONF = """worker_processes 1; pid {p}/nginx.pid; error_log {p}/error.log crit;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {p}/b; proxy_temp_path {p}/p; fastcgi_temp_path {p}/f;
  uwsgi_temp_path {p}/u; scgi_temp_path {p}/s; keepalive_requests 100000;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok"; }} }} }}
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(wrk: str, url: str, conns: int, seconds: float) -> dict[str, float]:
    cpu = children_cpu()
    out = subprocess.run([wrk, "-t1", f"-c{conns}", f"-d{seconds:g}s", "--latency", url], capture_output=True,
                         text=True, check=True).stdout
    cpu = children_cpu() - cpu
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    lat = {q: ms(re.search(rf"^\s*{q}%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
           for q in (50, 90, 99)}
    return {"rps": rps, "per_cpu_s": total / cpu, "p50": lat[50], "p90": lat[90], "p99": lat[99]}


def run_ours(port: int, conns: int, seconds: float) -> dict[str, float]:
    endpoint = Endpoint(url=f"http://127.0.0.1:{port}/", scheme="http", host="127.0.0.1", port=port,
                        address="127.0.0.1", path="/")
    target = engine.Target.of(endpoint, ScenarioScope(kind="load", name="bench", url=endpoint.url))
    budget = engine.Budget(200_000, 600)
    cpu, wall = time.process_time(), time.perf_counter()
    samples, _, _ = asyncio.run(engine.run_stages(target, [(0.001, conns), (seconds, conns)], budget))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    lat = [s.latency_ms for s in samples if s.status == 200]
    return {"rps": len(lat) / wall, "per_cpu_s": len(lat) / cpu, "p50": engine.percentile(lat, 50) or 0,
            "p90": engine.percentile(lat, 90) or 0, "p99": engine.percentile(lat, 99) or 0,
            "errors": len(samples) - len(lat)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, nargs="*", default=[1, 10, 50])
    args = parser.parse_args()
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin") or "nginx"
    wrk = shutil.which("wrk")
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        conf = Path(folder) / "nginx.conf"
        conf.write_text(CONF.format(p=folder, port=port))
        proc = subprocess.Popen([nginx, "-c", str(conf), "-g", "daemon off;"])
        try:
            time.sleep(0.5)
            url = f"http://127.0.0.1:{port}/"
            print("| connections | wrk req/s | wrk req per CPU-s | wrk p50 / p90 / p99 ms | outsidein req/s | "
                  "outsidein req per CPU-s | outsidein p50 / p90 / p99 ms | added p50 ms | errors |")
            print("|---|---|---|---|---|---|---|---|---|")
            for conns in args.connections:
                w = run_wrk(wrk, url, conns, args.seconds) if wrk else None
                o = run_ours(port, conns, args.seconds)
                wtext = (f"{w['rps']:,.0f} | {w['per_cpu_s']:,.0f} | {w['p50']:.3f} / {w['p90']:.3f} / "
                         f"{w['p99']:.3f}") if w else "skipped (no wrk) | - | -"
                added = f"{o['p50'] - w['p50']:+.3f}" if w else "-"
                print(f"| {conns} | {wtext} | {o['rps']:,.0f} | {o['per_cpu_s']:,.0f} | {o['p50']:.3f} / "
                      f"{o['p90']:.3f} / {o['p99']:.3f} | {added} | {o['errors']:.0f} |")
        finally:
            proc.terminate()
            proc.wait(5)


if __name__ == "__main__":
    main()
