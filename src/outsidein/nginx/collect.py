"""Collect NGINX evidence: the configuration files an nginx would read, ``nginx -t``, and one live ``HEAD``.

Read-only: files are only read (never written), ``nginx -t`` only tests, the probe is one HEAD request.
Nothing here judges; an unreadable file, a missing binary or a refused connection is a recorded reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections import deque
from pathlib import Path

import crossplane

from outsidein.evidence import NginxEvidence, Record
from outsidein.redact import redact_text

MAX_FILE_BYTES = 5_000_000
MAX_FILES = 20_000
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


def _includes(path: str) -> list[str]:
    """The patterns of the ``include`` directives in one file (lexed with crossplane, not evaluated)."""
    patterns: list[str] = []
    at_start, want_arg = True, False
    try:
        for token, _line, quoted in crossplane.lex(path):
            if token.startswith("#") and not quoted:
                continue  # comments are tokens too
            if want_arg:
                patterns.append(token)
                want_arg = False
            elif at_start and not quoted and token == "include":
                want_arg = True
            at_start = not quoted and token in (";", "{", "}")
    except (crossplane.errors.NgxParserBaseException, OSError, UnicodeDecodeError):
        pass  # the parser reports the syntax error from the recorded text; the includes seen so far count
    return patterns


def _read(path: str) -> Record:
    try:
        p = Path(path)
        if p.stat().st_size > MAX_FILE_BYTES:
            return Record(error=f"larger than {MAX_FILE_BYTES} bytes, not read")
        return Record(data=redact_text(p.read_text(encoding="utf-8", errors="replace")))
    except FileNotFoundError:
        return Record(error="no such file")
    except PermissionError:
        return Record(error="permission denied (run the audit as a user that can read the nginx configuration)")
    except IsADirectoryError:
        return Record(error="is a directory")
    except OSError as exc:
        return Record(error=exc.strerror or str(exc))


def read_config_files(main: str) -> dict[str, Record]:
    """The main file and every file its ``include`` directives reach (globs resolved like nginx does)."""
    conf_dir = os.path.dirname(main)
    files: dict[str, Record] = {}
    queue = deque([main])
    while queue and len(files) < MAX_FILES:
        path = queue.popleft()
        if path in files:
            continue
        files[path] = rec = _read(path)
        if not rec.ok:
            continue
        for pattern in _includes(path):
            full = pattern if os.path.isabs(pattern) else os.path.normpath(os.path.join(conf_dir, pattern))
            queue.extend(sorted(glob.glob(full)) if glob.has_magic(full) else [full])
    return files


def find_nginx(binary: str) -> str | None:
    """The nginx executable: ``binary`` if it is a path, else looked up in PATH and the sbin folders."""
    if os.sep in binary:
        return binary if os.access(binary, os.X_OK) else None
    search = os.pathsep.join(filter(None, (os.environ.get("PATH", ""), SBIN_PATH)))
    return shutil.which(binary, path=search)


def syntax_test(binary: str, main: str, timeout: float) -> Record | None:
    """``nginx -v -t -c main`` (the version line tells which defaults apply); None when nginx is absent."""
    exe = find_nginx(binary)
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "-v", "-t", "-c", main], capture_output=True, text=True, timeout=timeout,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Record(error=f"nginx -t did not finish within {timeout:g} s")
    except OSError as exc:
        return Record(error=f"cannot run {exe}: {exc.strerror or exc}")
    return Record(data={"exit_code": done.returncode, "output": (done.stdout + done.stderr).strip()})


def probe(url: str, timeout: float, verify: bool = True) -> Record:
    """One ``HEAD`` of ``url``: status and every response header in order, duplicates kept."""
    import httpx  # only a probe needs it (and it is the slowest import of this layer)

    try:
        with httpx.Client(verify=verify, timeout=timeout, follow_redirects=False) as client:
            response = client.head(url)
    except httpx.HTTPError as exc:
        return Record(error=f"{url}: {type(exc).__name__}: {exc}")
    headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in response.headers.raw]
    return Record(data={"url": url, "status": response.status_code, "headers": headers})


def collect_nginx(name: str, config_path: str | Path, environment: str | None = None, url: str | None = None,
                  nginx_binary: str = "nginx", timeout: float = 5.0, verify: bool = True) -> NginxEvidence:
    """Evidence for one NGINX: its files, ``nginx -t`` (if nginx is installed here) and a probe of ``url``.

    ``config_path`` is the main file, or a folder holding ``nginx.conf``. ``verify=False`` skips TLS
    certificate verification of the probe: only for a test server with a self-signed certificate.
    """
    path = Path(config_path).expanduser()
    if path.is_dir():
        path = path / "nginx.conf"
    main = os.path.abspath(path)
    return NginxEvidence(
        name=name, main=main, environment=environment, files=read_config_files(main),
        syntax_test=syntax_test(nginx_binary, main, timeout),
        probe=probe(url, timeout, verify) if url else None,
    )
