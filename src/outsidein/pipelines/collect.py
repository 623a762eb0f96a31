"""Collect CI/CD evidence: GitHub Actions workflows, GitLab CI files (and their local includes), Dockerfiles.

Read-only and judging nothing. Each file is stored as masked text (``outsidein.redact``) keyed by its path, so
the offline audit re-parses it and findings keep ``path:line``. Beside the CI files the collector notes what
makes a gate applicable (Terraform/Kubernetes/Helm files for the IaC scan) and the SCA bots' configuration
(Dependabot, Renovate). An unreadable file is a recorded reason, never a silent skip.

Data layout (``SourceEvidence.data.data``)::

    {"root": "/repo", "files": {"/repo/.github/workflows/ci.yml": {"kind": "github", "text": "..."},
                                "/repo/Dockerfile": {"kind": "dockerfile", "error": "permission denied"}},
     "iac": ["/repo/infra/main.tf"], "sca_bots": ["/repo/.github/dependabot.yml"],
     "truncated": null}  # or why the walk stopped at a cap before reading every file

A cap that was hit is recorded in ``truncated``: the checks then never PASS (NOT_ASSESSED naming the cap).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from outsidein.evidence import Record, SourceEvidence
from outsidein.redact import redact_text
from outsidein.scope import Scope

MAX_FILE_BYTES = 2_000_000
MAX_FILES = 20_000
MAX_IAC_LISTED = 50
SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".terraform", ".tox"}
SCA_BOT_FILES = {"dependabot.yml", "dependabot.yaml", "renovate.json", "renovate.json5", ".renovaterc",
                 ".renovaterc.json"}
IAC_NAMES = {"Chart.yaml", "kustomization.yaml", "kustomization.yml"}
IAC_SUFFIXES = (".tf", ".tf.json", ".bicep")
_LOCAL_INCLUDE = re.compile(r"""^\s*(?:-\s*)?(?:local:\s*)?["']?(/?[\w./*-]+\.ya?ml)["']?\s*$""")


def file_kind(path: Path) -> str | None:
    """``github``, ``gitlab``, ``dockerfile``, ``sca_bot``, ``iac`` or None for a file this layer does not read."""
    name = path.name
    parts = path.parts
    if name.endswith((".yml", ".yaml")) and len(parts) >= 3 and parts[-2] == "workflows" and parts[-3] == ".github":
        return "github"
    if name in (".gitlab-ci.yml", ".gitlab-ci.yaml"):
        return "gitlab"
    if name.startswith("Dockerfile") or name.endswith((".Dockerfile", ".dockerfile")) or name == "Containerfile":
        return "dockerfile"
    if name in SCA_BOT_FILES and (name.startswith(("renovate", ".renovate")) or parts[-2:-1] == (".github",)):
        return "sca_bot"
    if name in IAC_NAMES or name.endswith(IAC_SUFFIXES):
        return "iac"
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return {"error": f"larger than {MAX_FILE_BYTES} bytes, not read"}
        return {"text": redact_text(path.read_text(encoding="utf-8", errors="replace"))}
    except FileNotFoundError:
        return {"error": "no such file"}
    except PermissionError:
        return {"error": "permission denied"}
    except IsADirectoryError:
        return {"error": "is a directory"}
    except OSError as exc:
        return {"error": exc.strerror or str(exc)}


def _walk(root: Path) -> tuple[list[Path], bool]:
    """The files under ``root`` and whether the walk stopped at its cap (``MAX_FILES * 10``) before the end."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            if len(found) >= MAX_FILES * 10:
                return found, True
            found.append(Path(dirpath) / name)
    return found, False


def _local_includes(text: str, root: Path) -> list[Path]:
    """The files a .gitlab-ci.yml includes from the same repository (``include: local:`` or a bare path)."""
    out: list[Path] = []
    in_include = False
    for line in text.splitlines():
        if re.match(r"^include\s*:", line):
            in_include = True
            rest = line.split(":", 1)[1].strip()
            if rest:
                m = _LOCAL_INCLUDE.match(rest)
                if m:
                    out.append(root / m.group(1).lstrip("/"))
            continue
        if in_include:
            if line and not line[0].isspace() and not line.startswith("-"):
                in_include = False
                continue
            if re.search(r"\b(?:remote|template|project|component)\s*:", line):
                continue
            m = _LOCAL_INCLUDE.match(line)
            if m:
                out.append(root / m.group(1).lstrip("/"))
    expanded: list[Path] = []
    for path in out:
        expanded.extend(sorted(root.glob(str(path.relative_to(root)))) if "*" in str(path) else [path])
    return expanded


def collect_files(root: Path | None, paths: list[Path]) -> dict[str, Any]:
    """Read the CI files, Dockerfiles and SCA-bot configurations among ``paths`` (files, or folders walked)."""
    files: dict[str, dict[str, Any]] = {}
    iac: list[str] = []
    sca_bots: list[str] = []
    candidates: list[Path] = []
    truncated: list[str] = []
    for path in paths:
        if path.is_dir():
            walked, capped = _walk(path)
            candidates.extend(walked)
            if capped:
                truncated.append(f"{path}: the walk stopped at its cap of {MAX_FILES * 10} files; "
                                 "the files beyond it were not read")
        else:
            candidates.append(path)
    dropped = 0
    for path in candidates:
        kind = file_kind(path)
        if kind is None and not path.is_dir() and any(str(path) == str(p) for p in paths):
            kind = "gitlab" if "gitlab" in path.name else "github" if path.suffix in (".yml", ".yaml") else None
        if kind == "iac":
            iac.append(str(path))
        elif kind == "sca_bot":
            sca_bots.append(str(path))
        elif kind and len(files) < MAX_FILES:
            files[str(path)] = {"kind": kind, **_read(path)}
        elif kind:
            dropped += 1
    # GitLab's local includes, wherever they live in the tree
    queue = [p for p, f in files.items() if f["kind"] == "gitlab" and "text" in f]
    while queue:
        main = queue.pop()
        base = root or Path(main).parent
        for inc in _local_includes(files[main]["text"], base):
            if str(inc) not in files and len(files) < MAX_FILES:
                files[str(inc)] = entry = {"kind": "gitlab", "included_by": main, **_read(inc)}
                if "text" in entry:
                    queue.append(str(inc))
            elif str(inc) not in files:
                dropped += 1
            elif str(inc) in files:
                files[str(inc)].setdefault("included_by", main)
    if dropped:
        truncated.append(f"{dropped} CI file(s) or Dockerfile(s) beyond the cap of {MAX_FILES} were not read")
    return {"root": str(root) if root else None, "files": dict(sorted(files.items())),
            "iac": iac[:MAX_IAC_LISTED], "iac_count": len(iac), "sca_bots": sca_bots,
            "truncated": "; ".join(truncated) or None}


def collect_pipelines(scope: Scope) -> list[SourceEvidence]:
    """One evidence entry per repository and per ``[[pipelines]]`` entry of the scope."""
    out: list[SourceEvidence] = []
    for repo in scope.repositories:
        if not repo.path.is_dir():
            out.append(SourceEvidence(repo.name, "pipelines", repo.environment,
                                      Record(error=f"{repo.path} is not a readable folder")))
            continue
        out.append(SourceEvidence(repo.name, "pipelines", repo.environment,
                                  Record(data=collect_files(repo.path, [repo.path]))))
    for entry in scope.pipelines:
        absent = [str(p) for p in entry.paths if not p.exists()]
        data = collect_files(None, [p for p in entry.paths if p.exists()])
        for path in absent:
            data["files"][path] = {"kind": "unknown", "error": "no such file"}
        out.append(SourceEvidence(entry.name, "pipelines", entry.environment, Record(data=data)))
    return out
