"""The demo's layers 5, 10 and 11: a real git repository for the "shop" service, built at start-up, and a
local OSV database to match its dependencies against.

The repository is rebuilt from scratch at every run from the files bundled under ``demo/repository/``
(``tree/`` is HEAD, ``history/`` what was committed and removed since; a leading ``dot-`` stands for ``.``,
a trailing ``.tmpl`` is dropped, ``@NAME@`` is a fake secret) and a scripted history of five commits, with
fixed authors and dates so commit hashes, and so findings' fingerprints, stay the same from run to run. It
carries the playbook's classic mistakes:

- Layer 5: an AWS access key id and secret key committed in ``config/aws.yml`` and deleted in a later commit
  (history only, HIGH); a Stripe live key still in ``shop/settings.py`` (HEAD, CRITICAL); a ``.env`` committed
  then deleted (HIGH; its Django secret key and database password stay in history); a ``.gitignore`` without
  ``.env.*``, ``*.key``, ``*.p12``, ``*.pfx``, ``secrets.yaml``, ``secrets.json``; a pre-commit configuration
  with formatters but no secret scanner; a Dockerfile ``ENV DB_PASSWORD=<literal>``.
- Layer 10: ``requirements.txt`` pins Django 3.2.12 (GHSA-2gwj-7jmv-h26r, SQL injection, CRITICAL) and requests
  2.25.1 (GHSA-j8r2-6x86-q33q, Proxy-Authorization leak, MEDIUM); ``web/package-lock.json`` locks lodash 4.17.20
  (GHSA-35jh-r3h4-6jhm, command injection, HIGH); ``docker-compose.yml`` runs ``redis:latest`` (HIGH: prod).
- Layer 11: the GitHub Actions workflow scans the image with ``aquasecurity/trivy-action@master`` (a branch, and
  no ``exit-code``: the scan cannot fail the build), expands ``${{ github.event.issue.title }}`` in a ``run:``
  of an ``issues``-triggered job, and has no SAST and no secret-scan gate; the Dockerfile sets a secret ``ENV``
  literal, never drops root (no ``USER``) and uses a base image tag without a digest.

The secrets are fake, derived from a hash of their name: shaped like the real thing so the detectors fire,
spelled ``...OUTSIDEINDEMO...`` so nobody mistakes them for credentials. None of them is written in this
package: the bundled files hold placeholders.

The OSV database holds the three advisories above (``osv/``, OSV-schema records of real advisories), imported
at every run so it is never stale. Both live in a fixed folder under the temporary directory
(``outsidein-demo-<uid>/repositories/shop`` and ``.../osv``). Without ``git`` the folder is still handed over:
the collectors then say why the history is NOT_ASSESSED, and the demo goes on.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from outsidein.components import osvdb
from outsidein.scope import OsvScope, RepositoryScope

NAME = "shop"
ENVIRONMENT = "prod"
GIT_TIMEOUT = 30.0
AUTHOR = ("Dana Shop", "dana@shop.example.com")
# (date, message, files added or rewritten: repository path -> bundled path, repository paths removed)
HISTORY: tuple[tuple[str, str, dict[str, str], tuple[str, ...]], ...] = (
    ("2024-01-08T09:12:00+01:00", "Initial shop service",
     {".gitignore": "history/dot-gitignore", ".pre-commit-config.yaml": "tree/dot-pre-commit-config.yaml",
      ".env.example": "tree/dot-env.example", "README.md": "tree/README.md",
      "requirements.txt": "tree/requirements.txt",
      "shop/__init__.py": "tree/shop/__init__.py.tmpl", "shop/settings.py": "tree/shop/settings.py.tmpl",
      "shop/urls.py": "tree/shop/urls.py.tmpl", "shop/wsgi.py": "tree/shop/wsgi.py.tmpl"}, ()),
    ("2024-01-15T14:40:00+01:00", "Upload product images to S3",
     {"config/aws.yml": "history/config/aws.yml.tmpl"}, ()),
    ("2024-01-22T18:05:00+01:00", "Local development settings",
     {".env": "history/dot-env.tmpl"}, ()),
    ("2024-02-05T10:30:00+01:00", "Remove credentials from the repository",
     {".gitignore": "tree/dot-gitignore"}, ("config/aws.yml", ".env")),
    ("2024-02-19T16:20:00+01:00", "Containerise the service, add CI and the storefront assets",
     {}, ()),  # the last commit adds every remaining file of tree/
)


@dataclass(frozen=True)
class DemoRepository:
    repository: RepositoryScope
    osv: OsvScope


def _fake(label: str, length: int, prefix: str = "", alphabet: str = "") -> str:
    """A deterministic, obviously fake secret: ``prefix`` + OUTSIDEINDEMO + hash characters."""
    digest = base64.b64encode(hashlib.sha256(f"outsidein demo {label}".encode()).digest() * 2).decode()
    body = "".join(c for c in digest if not alphabet or c in alphabet)
    return (prefix + "OUTSIDEINDEMO" + body)[:length]


UPPER_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
ALNUM = UPPER_DIGITS + "abcdefghijklmnopqrstuvwxyz"
# The planted values, by placeholder name (shared with the test, which proves none is ever stored raw).
SECRETS = {
    "AWS_ACCESS_KEY_ID": _fake("aws key id", 20, "AKIA", UPPER_DIGITS),
    "AWS_SECRET_ACCESS_KEY": _fake("aws secret", 40, "Shop/", ALNUM + "/+"),
    "STRIPE_API_KEY": _fake("stripe", 40, "sk" + "_live_", ALNUM),
    "DJANGO_SECRET_KEY": _fake("django", 50, "dj-", ALNUM + "-_"),
    "DEV_DB_PASSWORD": _fake("dev db password", 24, "dev-", ALNUM),
    "DB_PASSWORD": _fake("prod db password", 24, "Pr0d-", ALNUM),
}


def _root() -> Path:
    return Path(tempfile.gettempdir()) / f"outsidein-demo-{os.getuid()}"


def _bundled() -> Traversable:
    return resources.files("outsidein.demo").joinpath("repository")


def _render(source: Traversable) -> bytes:
    text = source.read_text(encoding="utf-8")
    for name, value in SECRETS.items():
        text = text.replace(f"@{name}@", value)
    return text.encode()


def _repo_path(relative: str) -> str:
    parts = [("." + p[4:]) if p.startswith("dot-") else p for p in relative.split("/")]
    parts[-1] = parts[-1].removesuffix(".tmpl")
    return "/".join(parts)


def _tree_files(folder: Traversable, prefix: str = "") -> dict[str, str]:
    """Every bundled file under ``folder``: repository path -> bundled path (relative to ``repository/``)."""
    out: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        rel = f"{prefix}/{entry.name}" if prefix else entry.name
        if entry.is_dir():
            out.update(_tree_files(entry, rel))
        elif entry.is_file():
            out[_repo_path(rel.split("/", 1)[1])] = rel
    return out


def _git_env(date: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_DATE": date,
                "GIT_COMMITTER_DATE": date, "GIT_AUTHOR_NAME": AUTHOR[0], "GIT_AUTHOR_EMAIL": AUTHOR[1],
                "GIT_COMMITTER_NAME": AUTHOR[0], "GIT_COMMITTER_EMAIL": AUTHOR[1], "TZ": "UTC", "LC_ALL": "C"})
    return env


def _git(path: Path, date: str, *args: str) -> None:
    subprocess.run(["git", "-c", f"user.name={AUTHOR[0]}", "-c", f"user.email={AUTHOR[1]}",
                    "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main",
                    "-c", "core.autocrlf=false", "-c", "core.hooksPath=/dev/null", "-c", "init.templateDir=",
                    "-C", str(path), *args], check=True, capture_output=True, stdin=subprocess.DEVNULL,
                   env=_git_env(date), timeout=GIT_TIMEOUT)


def _write(path: Path, relative: str, source: Traversable) -> None:
    target = path / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(_render(source))


def build_repository(path: Path) -> bool:
    """Recreate the shop repository at ``path``; False when git is missing or failed (the files are there)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    bundled = _bundled()
    tree = _tree_files(bundled.joinpath("tree"), "tree")
    git = shutil.which("git") is not None
    try:
        if git:
            _git(path, HISTORY[0][0], "init", "-q")
        for number, (date, message, files, removed) in enumerate(HISTORY, 1):
            if number == len(HISTORY):
                files = {rel: src for rel, src in tree.items() if not (path / rel).exists() or
                         (path / rel).read_bytes() != _render(bundled.joinpath(src))}
            for rel, src in files.items():
                _write(path, rel, bundled.joinpath(src))
            for rel in removed:
                (path / rel).unlink()
            if git:
                _git(path, date, "add", "-A")
                _git(path, date, "commit", "-q", "--no-verify", "-m", message)
    except (OSError, subprocess.SubprocessError):
        git = False
    if not git:  # at least the working tree, so layers 10 and 11 still have files to read
        for rel, src in tree.items():
            with contextlib.suppress(OSError):
                _write(path, rel, bundled.joinpath(src))
    return git


def build_osv_database(database: Path) -> None:
    """A fresh database holding the bundled advisories (imported now, so it is never stale)."""
    shutil.rmtree(database, ignore_errors=True)
    with resources.as_file(_bundled().joinpath("osv")) as records:
        osvdb.import_file(database, records)


@contextlib.contextmanager
def demo_repository() -> Iterator[DemoRepository]:
    """Build the shop repository and its OSV database; hand back the scopes that reach them."""
    root = _root()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    path = root / "repositories" / NAME
    database = root / "osv"
    build_repository(path)
    with contextlib.suppress(osvdb.OsvError, OSError):
        build_osv_database(database)  # without it, layer 10 reads NOT_ASSESSED and says why
    yield DemoRepository(repository=RepositoryScope(name=NAME, path=path, environment=ENVIRONMENT),
                         osv=OsvScope(database=database, max_age_days=7))
