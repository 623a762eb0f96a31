"""Benchmark outsidein's NGINX layer (layer 3) against gixy-next and gixy-ng, in the same run.

1. Timing: a synthetic estate (N server blocks in N included files, with a known set of planted problems)
   and realistic configurations (Debian's default /etc/nginx when present, and the weak and hardened configs
   of tests/nginx/), each audited by every tool in its own child process: wall time, and peak RSS from
   ``os.wait4``. outsidein runs twice: parse + checks from saved evidence, and collection + parse + checks.
2. Findings: per planted problem class, how many planted files each tool names (and how many other files).
3. Detection on gixy's own test configurations (``tests/plugins/simply/<plugin>/*.conf`` of both sdists): for
   every problem class both tools cover, which configurations each one flags.

gixy-next and gixy-ng are installed into their own virtualenvs under bench/.venvs/ (created if missing, never
project dependencies). Results go to bench/results/nginx-<time>.json.

    python bench/nginx_bench.py                # 500 servers, 5 runs per tool and configuration
    python bench/nginx_bench.py --servers 50 --repeat 1   # a quick smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENVS = HERE / ".venvs"
RESULTS = HERE / "results"
GIXY = {"gixy-next": "gixy-next==0.9.0", "gixy-ng": "gixy-ng==0.2.59"}
GIXY_TEST_FLAG = {"gixy-next": "--tests", "gixy-ng": "--checks"}

# problem class -> gixy plugin, and outsidein check ids -> problem class
GIXY_CLASS = {
    "add_header_redefinition": "add_header_redefinition", "alias_traversal": "alias_traversal",
    "host_spoofing": "host_spoofing", "http_splitting": "http_splitting", "origins": "origins", "ssrf": "ssrf",
    "valid_referers": "valid_referers", "version_disclosure": "version_disclosure", "hsts_header": "hsts",
    "weak_ssl_tls": "weak_tls",
}
OUTSIDEIN_CLASS = {
    "nginx-add-header-redefinition": "add_header_redefinition", "nginx-alias-traversal": "alias_traversal",
    "nginx-host-spoofing": "host_spoofing", "nginx-http-splitting": "http_splitting",
    "nginx-origin-validation": "origins", "nginx-ssrf": "ssrf", "nginx-valid-referers": "valid_referers",
    "nginx-server-tokens": "version_disclosure", "nginx-hsts": "hsts", "nginx-ssl-protocols": "weak_tls",
    "nginx-ssl-ciphers": "weak_tls", "nginx-login-rate-limit": "login_rate_limit",
    "nginx-client-max-body-size": "body_size", "nginx-proxy-timeouts": "proxy_timeouts",
}

# What each planted problem changes in an otherwise hardened site (one class per planted file).
PLANTS = {
    "add_header_redefinition": ("api_headers", "add_header Cache-Control no-store;"),
    "alias_traversal": ("static", "location /static{n} {\n        alias /srv/static{n}/;\n    }"),
    "host_spoofing": ("host", "proxy_set_header Host $http_host;"),
    "http_splitting": ("extra", "proxy_set_header X-Original-Uri $uri;"),
    "origins": ("server_extra", 'if ($http_origin ~* "site{n}.example.com") {\n        set $cors_origin $http_origin;\n'
                                '    }'),
    "ssrf": ("server_extra", "location /fetch{n}/ {\n        proxy_pass http://$arg_target;\n    }"),
    "valid_referers": ("server_extra", "location /img{n}/ {\n        valid_referers none server_names;\n"
                                       "        if ($invalid_referer) {\n            return 403;\n        }\n    }"),
    "version_disclosure": ("server_extra", "server_tokens on;"),
    "hsts": ("server_headers", "include @DIR@/snippets/headers-no-hsts.conf;"),
    "weak_tls": ("server_extra", "ssl_protocols TLSv1 TLSv1.1 TLSv1.2;"),
    "login_rate_limit": ("server_extra", "location /login{n} {\n        proxy_pass http://127.0.0.1:8081;\n    }"),
    "body_size": ("server_extra", "client_max_body_size 0;"),
    "proxy_timeouts": ("extra", "proxy_read_timeout 300s;"),
}
PER_CLASS = 10

HEADERS = [
    'add_header Strict-Transport-Security "max-age=31536000; includeSubDomains; preload" always;',
    'add_header X-Frame-Options "DENY" always;',
    'add_header X-Content-Type-Options "nosniff" always;',
    'add_header X-XSS-Protection "1; mode=block" always;',
    'add_header Referrer-Policy "strict-origin-when-cross-origin" always;',
    'add_header Content-Security-Policy "default-src \'self\'" always;',
    'add_header Permissions-Policy "geolocation=(), microphone=(), camera=()" always;',
]

MAIN = """user www-data;
worker_processes auto;
pid @DIR@/nginx.pid;
error_log @DIR@/error.log;
events {
    worker_connections 1024;
}
http {
    access_log off;
    server_tokens off;
    client_max_body_size 1m;
    client_body_timeout 10s;
    client_header_timeout 10s;
    keepalive_timeout 5s 5s;
    send_timeout 10s;
    proxy_connect_timeout 10s;
    proxy_read_timeout 30s;
    proxy_send_timeout 30s;
    proxy_hide_header X-Powered-By;
    proxy_hide_header Server;
    resolver 127.0.0.53;
    limit_req_zone $binary_remote_addr zone=login_limit:10m rate=5r/m;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384;
    ssl_stapling on;
    ssl_stapling_verify on;
    ssl_certificate @DIR@/cert.pem;
    ssl_certificate_key @DIR@/key.pem;
    include @DIR@/sites/*.conf;
}
"""

SITE = """server {
    listen 443 ssl;
    server_name site{n}.example.com;
    @server_headers@
    @server_extra@
    @static@

    location / {
        proxy_pass http://127.0.0.1:8080;
        proxy_set_header X-Site site{n};
        @host@
        @extra@
    }
    location /api/ {
        @api_headers@
        proxy_pass http://127.0.0.1:8081;
        proxy_set_header Host $host;
        proxy_set_header X-Site site{n};
    }
    location = /api/auth/login {
        limit_req zone=login_limit burst=3 nodelay;
        limit_req_status 429;
        proxy_pass http://127.0.0.1:8081;
    }
}
"""


# -- the synthetic estate -------------------------------------------------------------------------------

def write_estate(folder: Path, servers: int) -> dict[str, list[str]]:
    """N sites in N files under ``folder``; returns problem class -> planted file paths."""
    (folder / "sites").mkdir(parents=True)
    (folder / "snippets").mkdir()
    (folder / "snippets" / "headers.conf").write_text("\n".join(HEADERS) + "\n")
    (folder / "snippets" / "headers-no-hsts.conf").write_text("\n".join(HEADERS[1:]) + "\n")
    write_cert(folder)
    (folder / "nginx.conf").write_text(MAIN.replace("@DIR@", str(folder)))
    planted: dict[str, list[str]] = {cls: [] for cls in PLANTS}
    classes = list(PLANTS)
    for n in range(servers):
        slots = {"server_headers": f"include {folder}/snippets/headers.conf;", "server_extra": "", "static": "",
                 "host": "proxy_set_header Host $host;", "extra": "",
                 "api_headers": f"include {folder}/snippets/headers.conf;\n        "
                                "add_header Cache-Control no-store always;"}
        slots["static"] = "location /static/ {\n        alias /srv/static/;\n    }"
        path = folder / "sites" / f"site-{n:04d}.conf"
        index = n // PER_CLASS
        if index < len(classes):
            cls = classes[index]
            slot, text = PLANTS[cls]
            slots[slot] = text.replace("@DIR@", str(folder))
            planted[cls].append(str(path))
        text = SITE
        for slot, value in slots.items():
            text = text.replace(f"@{slot}@", value)
        text = text.replace("{n}", str(n))
        path.write_text("\n".join(line for line in text.splitlines() if line.strip()) + "\n")
    return planted


def write_cert(folder: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))


def render_fixture(name: str, folder: Path) -> Path:
    """tests/nginx/<name> rendered like the tests do (ports and paths filled in), not started."""
    src_root = ROOT / "tests" / "nginx" / name
    dest_root = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    write_cert(folder)
    tokens = {"@PREFIX@": str(dest_root), "@PORT@": "8080", "@TLS_PORT@": "8443",
              "@CERT@": str(folder / "cert.pem"), "@KEY@": str(folder / "key.pem")}
    for src in src_root.rglob("*.conf"):
        text = src.read_text()
        for token, value in tokens.items():
            text = text.replace(token, value)
        dest = dest_root / src.relative_to(src_root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
    (dest_root / "tmp").mkdir(exist_ok=True)
    return dest_root / "nginx.conf"


# -- tools ------------------------------------------------------------------------------------------------

def ensure_gixy() -> dict[str, Path]:
    """Each gixy in its own venv under bench/.venvs (created once; never the project's dependencies)."""
    VENVS.mkdir(exist_ok=True)
    (VENVS / ".gitignore").write_text("*\n")
    exes = {}
    for tool, requirement in GIXY.items():
        venv = VENVS / tool
        exe = venv / "bin" / "gixy"
        if not exe.exists():
            print(f"creating {venv} with {requirement}", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", requirement], check=True)
        exes[tool] = exe
    return exes


def ensure_sdists() -> dict[str, Path]:
    """gixy's test configurations: the ``tests/plugins/simply`` folder of each sdist (downloaded once)."""
    out = {}
    for tool, requirement in GIXY.items():
        folder = VENVS / "sdists" / tool
        tests = next(folder.glob("*/tests/plugins/simply"), None) if folder.exists() else None
        if tests is None:
            folder.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
                            requirement, "-d", str(folder)], check=True)
            with tarfile.open(next(folder.glob("*.tar.gz"))) as tar:
                tar.extractall(folder, filter="data")
            tests = next(folder.glob("*/tests/plugins/simply"))
        out[tool] = tests
    return out


# A process's peak RSS (ru_maxrss) includes the memory of whatever it was forked from before exec. So the tools
# are started by this small spawner (python -S, started before anything heavy is imported), not by the bench.
SPAWNER_CODE = r"""
import json, os, sys, time
for line in sys.stdin:
    req = json.loads(line)
    out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    start = time.perf_counter()
    pid = os.posix_spawn(req["argv"][0], req["argv"], dict(os.environ),
                         file_actions=[(os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, err, 2)])
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    os.close(out)
    os.close(err)
    print(json.dumps({"wall_s": wall, "rss_mib": usage.ru_maxrss / 1024,
                      "exit": os.waitstatus_to_exitcode(status)}), flush=True)
"""
_SPAWNER: subprocess.Popen[str] | None = None


def start_spawner() -> None:
    global _SPAWNER
    _SPAWNER = subprocess.Popen([sys.executable, "-S", "-c", SPAWNER_CODE], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)


def measure(argv: list[str], out: Path | None = None, err: Path | None = None) -> dict[str, Any]:
    """Run a child to completion: wall seconds, peak RSS (MiB, from os.wait4 in the spawner), exit code."""
    assert _SPAWNER is not None and _SPAWNER.stdin is not None and _SPAWNER.stdout is not None
    request = {"argv": argv, "stdout": str(out or os.devnull), "stderr": str(err or os.devnull)}
    _SPAWNER.stdin.write(json.dumps(request) + "\n")
    _SPAWNER.stdin.flush()
    result: dict[str, Any] = json.loads(_SPAWNER.stdout.readline())
    return result


def gixy_argv(exe: Path, conf: Path | Iterable[Path], output: Path, only: str | None = None,
              tool: str = "gixy-next") -> list[str]:
    argv = [str(exe), "-f", "json", "-o", str(output)]
    if only:
        argv += [GIXY_TEST_FLAG[tool], only]
    return argv + [str(p) for p in ([conf] if isinstance(conf, Path) else conf)]


def gixy_findings(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text() or "[]")
    except (OSError, json.JSONDecodeError):
        return []
    return data if isinstance(data, list) else []


# -- outsidein in a child process ---------------------------------------------------------------------------

# The NGINX layer on its own, as a user's process would run it: parse the evidence, run the layer's checks.
CHILD_CODE = r"""
import json, sys, time
t0 = time.perf_counter()
from outsidein.checks import nginx as _layer  # registers the layer's checks
from outsidein.checks.registry import NGINX, REGISTRY
from outsidein.evidence import NginxEvidence
from outsidein.models import Status
from outsidein.nginx.collect import collect_nginx
from outsidein.nginx.config import parse_nginx
mode, target, out = sys.argv[1:4]
t1 = time.perf_counter()
if mode == "collect":
    evidence = collect_nginx("bench", target)
else:
    evidence = NginxEvidence.from_json(json.loads(open(target).read()), target)
t2 = time.perf_counter()
cfg = parse_nginx(evidence)
t3 = time.perf_counter()
findings = [{"check_id": r.check_id, "resource": r.resource}
            for check in REGISTRY.values() if check.source == NGINX
            for r in check.run(cfg) if r.status is Status.FAIL]
t4 = time.perf_counter()
json.dump({"import_s": t1 - t0, "load_or_collect_s": t2 - t1, "parse_s": t3 - t2, "checks_s": t4 - t3,
           "findings": findings}, open(out, "w"))
"""


def outsidein_argv(mode: str, target: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", CHILD_CODE, mode, str(target), str(out)]


# -- comparisons ------------------------------------------------------------------------------------------

def by_class_outsidein(findings: list[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in findings:
        cls = OUTSIDEIN_CLASS.get(f["check_id"])
        if cls:
            out.setdefault(cls, set()).add(f["resource"].rsplit(":", 1)[0])
    return out


def by_class_gixy(findings: list[dict[str, Any]], estate: Path | None = None) -> dict[str, set[str]]:
    """Problem class -> files gixy names. gixy reports identical issues once, listing every occurrence's
    block in ``config``: in the synthetic estate each block is attributed to its site file by server_name."""
    out: dict[str, set[str]] = {}
    for f in findings:
        cls = GIXY_CLASS.get(f.get("plugin", ""))
        if cls:
            files = out.setdefault(cls, set())
            files.add(str(f.get("file") or f.get("path")))
            if estate is not None:
                for n in re.findall(r"server_name site(\d+)\.example\.com", str(f.get("config", ""))):
                    files.add(str(estate / "sites" / f"site-{int(n):04d}.conf"))
    return out


def wrap_fragment(text: str) -> str:
    """gixy's test configs are fragments (a location, an add_header); give them the http/server they assume."""
    if re.search(r"^\s*http\s*\{", text, re.M):
        return text
    if re.search(r"^\s*server\s*\{", text, re.M) and not re.search(
            r"^\s*(location|add_header|add_trailer|if|return|rewrite|proxy_\w+|set|valid_referers)\b", text, re.M):
        return "http {\n" + text + "\n}\n"
    return "http {\nserver {\nlisten 443 ssl;\n" + text + "\n}\n}\n"


def outsidein_on_fragments(files: list[Path]) -> dict[str, set[str]]:
    """problem class -> gixy test configs outsidein flags (parsed from their text, wrapped as above)."""
    from outsidein.checks.registry import all_checks
    from outsidein.evidence import NginxEvidence, Record
    from outsidein.models import Status
    from outsidein.nginx.config import parse_nginx

    checks = [c for c in all_checks() if c.meta.id in OUTSIDEIN_CLASS]
    flagged: dict[str, set[str]] = {}
    for path in files:
        main = "/etc/nginx/nginx.conf"
        ev = NginxEvidence("gixy-test", main, files={main: Record(data=wrap_fragment(path.read_text()))})
        cfg = parse_nginx(ev)
        for check in checks:
            if any(r.status is Status.FAIL for r in check.run(cfg)):
                flagged.setdefault(OUTSIDEIN_CLASS[check.meta.id], set()).add(str(path))
    return flagged


def _gixy_batch(exe: Path, tool: str, plugin: str, files: list[Path], tmp: Path,
                crashes: list[str]) -> list[tuple[str, str]]:
    """(config path, plugin) for each issue; a batch gixy aborts on is re-run file by file, crashes noted."""
    if not files:
        return []
    out = tmp / f"{tool}-tests.json"
    out.unlink(missing_ok=True)
    measure(gixy_argv(exe, files, out, plugin, tool))
    if not out.exists():
        if len(files) == 1:
            crashes.append(f"{files[0].parents[4].name.split('-')[0]}:{plugin}/{files[0].name}")
            return []
        return [hit for f in files for hit in _gixy_batch(exe, tool, plugin, [f], tmp, crashes)]
    return [(str(f.get("path")), str(f.get("plugin"))) for f in gixy_findings(out) if f.get("plugin") in GIXY_CLASS]


def gixy_test_comparison(exes: dict[str, Path], sdists: dict[str, Path], tmp: Path) -> dict[str, Any]:
    plugins_by_class: dict[str, str] = {cls: plugin for plugin, cls in GIXY_CLASS.items()}
    table: dict[str, Any] = {}
    all_files: dict[str, list[Path]] = {}
    for cls, plugin in plugins_by_class.items():
        files: list[Path] = []
        for tests in sdists.values():
            files.extend(sorted((tests / plugin).glob("*.conf")))
        if files:
            all_files[cls] = files
    ours = outsidein_on_fragments([f for files in all_files.values() for f in files])
    theirs: dict[str, dict[str, set[str]]] = {}
    crashes: dict[str, list[str]] = {}
    for tool, exe in exes.items():
        available = {p.name for p in sdists[tool].iterdir()}
        found: dict[str, set[str]] = {}
        for cls, files in all_files.items():
            plugin = plugins_by_class[cls]
            if plugin not in available:
                continue
            for batch in (files[:len(files) // 2], files[len(files) // 2:]):
                for path, plugin_name in _gixy_batch(exe, tool, plugin, batch, tmp, crashes.setdefault(tool, [])):
                    found.setdefault(GIXY_CLASS[plugin_name], set()).add(path)
        found["_covered"] = {cls for cls in all_files if plugins_by_class[cls] in available}
        theirs[tool] = found
    table["_crashes"] = {tool: sorted(c) for tool, c in crashes.items()}
    for cls, files in all_files.items():
        expected = sum(not f.name.endswith("_fp.conf") for f in files)
        row: dict[str, Any] = {"configs": len(files), "should_flag": expected}
        names = {str(f): f"{f.parents[4].name.split('-')[0]}:{f.name}" for f in files}
        for tool, flagged in [("outsidein", ours.get(cls, set())),
                              *[(t, found.get(cls, set())) for t, found in theirs.items()]]:
            if tool != "outsidein" and cls not in theirs[tool]["_covered"]:
                row[tool] = None
                continue
            hits = {str(f) for f in files} & flagged
            row[tool] = {
                "flagged": len(hits),
                "true": sum(not p.endswith("_fp.conf") for p in hits),
                "on_fp_configs": sorted(names[p] for p in hits if p.endswith("_fp.conf")),
            }
        for tool in theirs:
            if row.get(tool) is not None:
                missed = sorted(names[p] for p in theirs[tool].get(cls, set()) & {str(f) for f in files}
                                if p not in ours.get(cls, set()))
                row[f"{tool}_only"] = missed
        table[cls] = row
    return table


# -- main -------------------------------------------------------------------------------------------------

def run_timings(name: str, conf: Path, exes: dict[str, Path], tmp: Path, repeat: int,
                estate: Path | None = None) -> dict[str, Any]:
    from outsidein.nginx.collect import collect_nginx

    evidence_file = tmp / f"{name}-evidence.json"
    evidence_file.write_text(json.dumps(collect_nginx(name, conf).to_json()))
    runs: dict[str, list[dict[str, Any]]] = {}
    outputs: dict[str, Path] = {}
    for _ in range(repeat):
        for tool, argv_out in [
            ("outsidein (parse+checks)", outsidein_argv("evaluate", evidence_file, tmp / f"{name}-oi-eval.json")),
            ("outsidein (collect+parse+checks)", outsidein_argv("collect", conf, tmp / f"{name}-oi-collect.json")),
            *[(tool, gixy_argv(exe, conf, tmp / f"{name}-{tool}.json")) for tool, exe in exes.items()],
        ]:
            result = measure(argv_out)
            runs.setdefault(tool, []).append(result)
            outputs[tool] = Path(argv_out[-1]) if tool.startswith("outsidein") else Path(argv_out[4])
    summary: dict[str, Any] = {}
    for tool, results in runs.items():
        entry: dict[str, Any] = {
            "wall_s_median": statistics.median(r["wall_s"] for r in results),
            "wall_s_min": min(r["wall_s"] for r in results),
            "rss_mib_max": max(r["rss_mib"] for r in results),
            "exit": results[-1]["exit"],
        }
        if tool.startswith("outsidein"):
            data = json.loads(outputs[tool].read_text())
            entry.update({k: data[k] for k in ("import_s", "load_or_collect_s", "parse_s", "checks_s")})
            entry["findings"] = len(data["findings"])
            entry["by_class"] = {k: sorted(v) for k, v in by_class_outsidein(data["findings"]).items()}
        else:
            found = gixy_findings(outputs[tool])
            entry["findings"] = len(found)
            entry["by_class"] = {k: sorted(v) for k, v in by_class_gixy(found, estate).items()}
        summary[tool] = entry
    return summary


def print_timings(name: str, summary: dict[str, Any]) -> None:
    print(f"\n## {name}")
    print(f"{'tool':36} {'wall (median)':>14} {'peak RSS':>10} {'findings':>9}")
    for tool, e in summary.items():
        print(f"{tool:36} {e['wall_s_median']:>12.3f} s {e['rss_mib_max']:>6.0f} MiB {e['findings']:>9}")


def print_planted(planted: dict[str, list[str]], summary: dict[str, Any]) -> dict[str, Any]:
    tools = ["outsidein (parse+checks)", *[t for t in summary if not t.startswith("outsidein")]]
    print(f"\n{'problem class':26} {'planted':>7} " + " ".join(f"{t.split(' ')[0]:>18}" for t in tools))
    table: dict[str, Any] = {}
    dirty = {f for files in planted.values() for f in files}
    for cls, files in planted.items():
        row = {}
        cells = []
        for tool in tools:
            by_class = summary[tool]["by_class"]
            found = set(by_class.get(cls, []))
            hit, other = len(found & set(files)), len(found - dirty)
            row[tool] = {"found": hit, "on_clean_files": other}
            cells.append(f"{hit:>4} (+{other:>3} clean)")
        table[cls] = {"planted": len(files), **row}
        print(f"{cls:26} {len(files):>7} " + " ".join(f"{c:>18}" for c in cells))
    return table


def print_gixy_tests(table: dict[str, Any]) -> None:
    print(f"\n{'class (gixy test configs)':26} {'configs':>7} {'expect':>6} "
          f"{'outsidein':>10} {'gixy-next':>10} {'gixy-ng':>10}")
    for cls, row in table.items():
        if cls.startswith("_"):
            continue
        cells = []
        for tool in ("outsidein", "gixy-next", "gixy-ng"):
            r = row.get(tool)
            cells.append("—" if r is None else f"{r['true']}+{len(r['on_fp_configs'])}fp")
        print(f"{cls:26} {row['configs']:>7} {row['should_flag']:>6} " + " ".join(f"{c:>10}" for c in cells))
        for tool in ("gixy-next", "gixy-ng"):
            if row.get(f"{tool}_only"):
                print(f"    {tool} flags, outsidein does not: {', '.join(row[f'{tool}_only'])}")
    for tool, crashed in table.get("_crashes", {}).items():
        if crashed:
            print(f"{tool} aborted (no report) on: {', '.join(crashed)}")


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    start_spawner()
    exes = ensure_gixy()
    sdists = ensure_sdists()
    started = time.perf_counter()
    result: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "cpu": _cpu_model()},
        "servers": args.servers, "repeat": args.repeat, "tools": GIXY,
    }
    with tempfile.TemporaryDirectory(prefix="outsidein-nginx-bench-") as tmp_name:
        tmp = Path(tmp_name)
        estate = tmp / "estate"
        planted = write_estate(estate, args.servers)
        configs = {f"synthetic ({args.servers} servers, {args.servers} files)": estate / "nginx.conf"}
        if Path("/etc/nginx/nginx.conf").exists():
            configs["Debian default /etc/nginx"] = Path("/etc/nginx/nginx.conf")
        for fixture in ("weak", "hardened"):
            configs[f"tests/nginx/{fixture}"] = render_fixture(fixture, tmp / "fixtures")
        result["timings"] = {}
        for name, conf in configs.items():
            summary = run_timings(re.sub(r"\W+", "-", name), conf, exes, tmp, args.repeat,
                                  estate if name.startswith("synthetic") else None)
            result["timings"][name] = summary
            print_timings(name, summary)
            if name.startswith("synthetic"):
                result["planted"] = print_planted(planted, summary)
        result["gixy_tests"] = gixy_test_comparison(exes, sdists, tmp)
        print_gixy_tests(result["gixy_tests"])
    for timing in result["timings"].values():
        for entry in timing.values():
            entry.pop("by_class", None)
    result["total_s"] = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"nginx-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=1, default=sorted))
    print(f"\nwrote {out} ({result['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
