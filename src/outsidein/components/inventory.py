"""Read lockfiles, manifests and image references into packages and images, each with its path:line.

Decisions:

- Only **exact versions** are audited: a lockfile's resolved version, a ``requirements*.txt`` line pinned with
  ``==`` (or ``===``). A requirement without a pin is listed as *unpinned* (what gets installed is not known from
  the file) and reported by ``components-unpinned-requirement``, never matched or passed.
- **Python**: ``requirements*.txt`` (and ``*requirements*.txt`` / ``requirements/*.txt``), ``poetry.lock``,
  ``uv.lock`` (the project itself, an editable or virtual source, has no version and is skipped),
  ``Pipfile.lock`` (``default`` and ``develop``).
- **JavaScript**: ``package-lock.json`` / ``npm-shrinkwrap.json`` v1 (nested ``dependencies``) and v2/v3
  (``packages`` keyed by ``node_modules/...`` path; a ``link`` entry is a workspace, not a download),
  ``yarn.lock`` v1 and berry (``@workspace:``/``@patch:`` of local packages skipped; ``npm:`` aliases resolve to
  the real name), ``pnpm-lock.yaml`` v5 (``/name/1.0.0``), v6 (``/name@1.0.0``) and v9 (``name@1.0.0``), peer
  suffixes ``(react@18.2.0)`` / ``_react@18.2.0`` removed.
- **Go**: ``go.mod`` ``require`` lines (single and blocks) with ``replace`` directives applied (a replacement by
  a local path has no version to audit); ``go.sum`` only where no ``go.mod`` sits beside it (highest version per
  module).
- **Images**: ``FROM`` in Dockerfiles (``ARG`` defaults substituted; ``scratch`` and earlier stage names are not
  images), and in YAML files (compose, Kubernetes, Helm values) any ``image:`` string and any ``image:`` mapping
  with ``repository`` (+ ``registry``, ``tag``, ``digest``). Templated values (``{{ }}``, ``${}``) are skipped.
  CI files (``.github/``, ``.gitlab-ci.yml``) belong to layer 11 and are not read here.
- A walk skips ``.git``, ``node_modules``, ``vendor`` and virtualenvs, files over 20 MB, and stops at 20,000
  files (an error entry naming the root and the cap); a file that does not parse is an error entry (path, line
  for YAML, and reason), never silently dropped. A YAML file holding Go template markup (``{{``: a Helm
  template) is not YAML and is skipped.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SKIP_DIRS = {".git", "node_modules", "vendor", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache", ".hg"}
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_FILES = 20_000


@dataclass
class Package:
    ecosystem: str
    name: str
    version: str
    location: str  # path:line

    def key(self) -> tuple[str, str, str]:
        return self.ecosystem, self.name, self.version


@dataclass
class Image:
    ref: str
    name: str
    tag: str | None
    digest: str | None
    location: str


@dataclass
class Inventory:
    packages: list[Package] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    unpinned: list[dict[str, str]] = field(default_factory=list)  # {"ecosystem","name","spec","location"}
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _line_of(text: str, needle: str, start: int = 0) -> int:
    index = text.find(needle, start)
    return text.count("\n", 0, index) + 1 if index >= 0 else 0


def _loc(path: str, line: int) -> str:
    return f"{path}:{line}" if line else path


# --- Python ----------------------------------------------------------------------------------------------

_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def parse_requirements(text: str, path: str, inv: Inventory) -> None:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-", "git+", "http:", "https:", ".", "/")) or "://" in line:
            continue
        line = line.split(";", 1)[0].split("--hash", 1)[0].strip().rstrip("\\").strip()
        match = _REQ.match(line)
        if not match:
            continue
        name, _extras, spec = match.groups()
        spec = spec.strip()
        pin = re.fullmatch(r"===?\s*([^\s,]+)", spec)
        if pin and "*" not in pin.group(1):
            inv.packages.append(Package("PyPI", name, pin.group(1), _loc(path, number)))
        else:
            inv.unpinned.append({"ecosystem": "PyPI", "name": name, "spec": spec or "(any version)",
                                 "location": _loc(path, number)})


def _toml_packages(text: str, path: str, inv: Inventory, ecosystem: str) -> None:
    data = tomllib.loads(text)
    cursor = 0
    for package in data.get("package") or []:
        name, version = package.get("name"), package.get("version")
        start = text.find("[[package]]", cursor)
        line = _line_of(text, f'name = "{name}"', start if start >= 0 else 0)
        cursor = start + 1 if start >= 0 else cursor
        source = package.get("source") or {}
        if not name or not version or (isinstance(source, dict) and ({"editable", "virtual"} & set(source))):
            continue
        inv.packages.append(Package(ecosystem, str(name), str(version), _loc(path, line)))


def parse_pipfile_lock(text: str, path: str, inv: Inventory) -> None:
    data = json.loads(text)
    for section in ("default", "develop"):
        for name, entry in (data.get(section) or {}).items():
            version = str(entry.get("version", "")) if isinstance(entry, dict) else ""
            line = _line_of(text, f'"{name}": {{')
            if version.startswith("=="):
                inv.packages.append(Package("PyPI", name, version[2:], _loc(path, line)))
            else:
                inv.unpinned.append({"ecosystem": "PyPI", "name": name, "spec": version or "(a VCS or path source)",
                                     "location": _loc(path, line)})


# --- JavaScript ------------------------------------------------------------------------------------------


def parse_package_lock(text: str, path: str, inv: Inventory) -> None:
    data = json.loads(text)
    packages = data.get("packages")
    if isinstance(packages, dict) and packages:  # lockfileVersion 2 and 3
        for key, entry in packages.items():
            if not key or not isinstance(entry, dict) or entry.get("link") or "node_modules/" not in key:
                continue
            name = entry.get("name") or key.rsplit("node_modules/", 1)[1]
            version = entry.get("version")
            if version:
                inv.packages.append(Package("npm", str(name), str(version), _loc(path, _line_of(text, f'"{key}": {{'))))
        return

    def walk(deps: dict[str, Any], cursor: int) -> None:  # lockfileVersion 1: nested dependencies
        for name, entry in deps.items():
            if not isinstance(entry, dict):
                continue
            line = _line_of(text, f'"{name}": {{', cursor)
            version = str(entry.get("version", ""))
            if version.startswith("npm:"):  # an alias: "npm:real-name@1.0.0"
                name, _, version = version[4:].rpartition("@")
            if version and not version.startswith(("file:", "git", "http", "link:")):
                inv.packages.append(Package("npm", name, version, _loc(path, line)))
            if isinstance(entry.get("dependencies"), dict):
                walk(entry["dependencies"], text.find(f'"{name}": {{', cursor))

    walk(data.get("dependencies") or {}, 0)


def _spec_name(spec: str) -> str:
    spec = spec.strip().strip('"')
    at = spec.find("@", 1)
    return spec[:at] if at > 0 else spec


def parse_yarn_lock(text: str, path: str, inv: Inventory) -> None:
    header: tuple[str, int] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if not raw.startswith(" ") and raw.rstrip().endswith(":"):
            header = (raw.rstrip()[:-1], number)
            continue
        match = re.match(r'^\s+version:?\s+"?([^"\s]+)"?\s*$', raw)
        if not match or header is None:
            continue
        specs, line = header
        header = None
        first = specs.split(",")[0].strip().strip('"')
        if first == "__metadata" or any(k in specs for k in ("@workspace:", "@patch:", "@link:", "@portal:",
                                                              "@file:")):
            continue
        name = _spec_name(first)
        rest = first[len(name) + 1:]
        if rest.startswith("npm:") and "@" in rest[5:]:  # an alias "alias@npm:real@^1.0.0"
            name = _spec_name(rest[4:])
        inv.packages.append(Package("npm", name, match.group(1), _loc(path, line)))


def _pnpm_key(key: str) -> tuple[str, str] | None:
    key = key.strip("'\"").lstrip("/")
    key = re.sub(r"\(.*$", "", key)  # v6/v9 peer suffix
    v5 = re.match(r"^((?:@[^/@]+/)?[^/@]+)/(\d[^/]*)$", key)
    if v5:  # v5 /name/1.0.0 or /@scope/name/1.0.0_peer@1.0.0
        name, version = v5.groups()
    elif "@" in key[1:]:  # v6 /name@1.0.0, v9 name@1.0.0
        at = key.rfind("@")
        name, version = key[:at], key[at + 1:]
    else:
        return None
    version = version.split("_", 1)[0]  # v5 peer suffix
    return (name, version) if name and version else None


def parse_pnpm_lock(text: str, path: str, inv: Inventory) -> None:
    data = yaml.safe_load(text) or {}
    for key, entry in (data.get("packages") or {}).items():
        parsed = _pnpm_key(str(key))
        if parsed is None or (isinstance(entry, dict) and str((entry.get("resolution") or {}).get("type", ""))
                              in ("directory", "git")):
            continue
        name, version = parsed
        line = _line_of(text, f"\n  {key}:") + 1 or _line_of(text, f"'{key}':")
        inv.packages.append(Package("npm", name, version, _loc(path, line)))


# --- Go --------------------------------------------------------------------------------------------------


def parse_go_mod(text: str, path: str, inv: Inventory) -> None:
    requires: list[tuple[str, str, int]] = []
    replaces: dict[str, tuple[str, str | None]] = {}
    block: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if block:
            if line == ")":
                block = None
                continue
            body = line
        elif re.match(r"^(require|replace)\s*\($", line):
            block = line.split()[0].rstrip("(")
            continue
        elif line.startswith(("require ", "replace ")):
            block_kind, body = line.split(None, 1)
            _handle_go(block_kind, body, number, requires, replaces)
            continue
        else:
            continue
        _handle_go(block, body, number, requires, replaces)
    for module, version, number in requires:
        target, replacement = replaces.get(f"{module}@{version}") or replaces.get(module) or (module, version)
        if replacement is None:
            inv.unpinned.append({"ecosystem": "Go", "name": module, "spec": f"replaced by {target}",
                                 "location": _loc(path, number)})
            continue
        inv.packages.append(Package("Go", target, replacement, _loc(path, number)))


def _handle_go(kind: str, body: str, number: int, requires: list[tuple[str, str, int]],
               replaces: dict[str, tuple[str, str | None]]) -> None:
    if kind == "require":
        parts = body.split()
        if len(parts) >= 2:
            requires.append((parts[0].strip('"'), parts[1], number))
    elif kind == "replace" and "=>" in body:
        left, right = (side.split() for side in body.split("=>", 1))
        if not left or not right:
            return
        key = f"{left[0]}@{left[1]}" if len(left) > 1 else left[0]
        local = right[0].startswith((".", "/"))
        replaces[key] = (right[0], None if local or len(right) < 2 else right[1])


def parse_go_sum(text: str, path: str, inv: Inventory) -> None:
    from outsidein.components.versions import InvalidVersion, semver_key

    best: dict[str, tuple[Any, str, int]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        parts = raw.split()
        if len(parts) < 3:
            continue
        module, version = parts[0], parts[1].removesuffix("/go.mod")
        try:
            key = semver_key(version)
        except InvalidVersion:
            continue
        if module not in best or key > best[module][0]:
            best[module] = (key, version, number)
    for module, (_key, version, number) in best.items():
        inv.packages.append(Package("Go", module, version, _loc(path, number)))


# --- images ----------------------------------------------------------------------------------------------


def parse_image_ref(ref: str, location: str) -> Image:
    rest, _, digest = ref.partition("@")
    slash, colon = rest.rfind("/"), rest.rfind(":")
    if colon > slash:
        name, tag = rest[:colon], rest[colon + 1:]
    else:
        name, tag = rest, None
    return Image(ref=ref, name=name, tag=tag or None, digest=digest or None, location=location)


def parse_dockerfile(text: str, path: str, inv: Inventory) -> None:
    args: dict[str, str] = {}
    stages: set[str] = set()
    lines = text.replace("\\\n", " ").splitlines()
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        upper = line.upper()
        if upper.startswith("ARG "):
            name, _, default = line[4:].strip().partition("=")
            if default:
                args[name.strip()] = default.strip().strip('"\'')
        elif upper.startswith("FROM "):
            words = [w for w in line.split()[1:] if not w.startswith("--")]
            if not words:
                continue
            ref = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2].lower())
            if ref.lower() == "scratch" or ref.lower() in stages - {words[2].lower() if len(words) >= 3 else ""} \
                    or "$" in ref:
                continue
            inv.images.append(parse_image_ref(ref, _loc(path, number)))


def _yaml_images(node: yaml.Node, path: str, inv: Inventory) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "image":
                line = value.start_mark.line + 1
                if isinstance(value, yaml.ScalarNode) and value.value and value.tag.endswith(":str"):
                    _add_image(value.value, _loc(path, line), inv)
                elif isinstance(value, yaml.MappingNode):
                    fields = {k.value: v.value for k, v in value.value
                              if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode)}
                    if fields.get("repository"):
                        ref = str(fields["repository"])
                        if fields.get("registry"):
                            ref = f"{fields['registry']}/{ref}"
                        if fields.get("tag"):
                            ref += f":{fields['tag']}"
                        if fields.get("digest"):
                            ref += f"@{fields['digest']}"
                        _add_image(ref, _loc(path, line), inv)
            _yaml_images(value, path, inv)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _yaml_images(item, path, inv)


def _add_image(ref: str, location: str, inv: Inventory) -> None:
    ref = ref.strip()
    if not ref or "{{" in ref or "${" in ref or " " in ref:
        return
    inv.images.append(parse_image_ref(ref, location))


def parse_yaml_images(text: str, path: str, inv: Inventory) -> None:
    if "image" not in text:
        return
    for document in yaml.compose_all(text, Loader=yaml.SafeLoader):
        if document is not None:
            _yaml_images(document, path, inv)


# --- dispatch --------------------------------------------------------------------------------------------

PARSERS: dict[str, Any] = {
    "poetry.lock": lambda t, p, i: _toml_packages(t, p, i, "PyPI"),
    "uv.lock": lambda t, p, i: _toml_packages(t, p, i, "PyPI"),
    "Pipfile.lock": parse_pipfile_lock,
    "package-lock.json": parse_package_lock,
    "npm-shrinkwrap.json": parse_package_lock,
    "yarn.lock": parse_yarn_lock,
    "pnpm-lock.yaml": parse_pnpm_lock,
    "go.mod": parse_go_mod,
}


def parser_for(path: Path) -> Any:
    name = path.name
    if name in PARSERS:
        return PARSERS[name]
    if name == "go.sum":
        return None if (path.parent / "go.mod").is_file() else parse_go_sum
    if name.endswith(".txt") and ("requirements" in name or path.parent.name == "requirements"):
        return parse_requirements
    if name == "Dockerfile" or name.startswith("Dockerfile.") or name.endswith(".Dockerfile") \
            or name == "Containerfile":
        return parse_dockerfile
    if name.endswith((".yaml", ".yml")) and name != ".gitlab-ci.yml" and ".github" not in path.parts:
        return parse_yaml_images
    return None


def walk(root: Path, errors: list[str] | None = None) -> Iterator[Path]:
    """The files under ``root`` worth reading, skipping dependency and VCS folders; stopping at ``MAX_FILES``
    appends the reason to ``errors``."""
    if root.is_file():
        yield root
        return
    count = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = Path(folder) / name
            if parser_for(path) is not None:
                count += 1
                if count > MAX_FILES:
                    if errors is not None:
                        errors.append(f"{root}: more than {MAX_FILES} files to read; the walk stopped at the cap "
                                      "and the rest was not audited")
                    return
                yield path


def read_inventory(roots: list[Path], base: Path | None = None) -> Inventory:
    """Every package and image in the files under ``roots``; paths are shown relative to ``base``."""
    inv = Inventory()
    for root in roots:
        if not root.exists():
            inv.errors.append(f"{root}: does not exist")
            continue
        for path in walk(root, inv.errors):
            parser = parser_for(path)
            if parser is None:
                continue
            shown = str(path.relative_to(base)) if base is not None and path.is_relative_to(base) else str(path)
            text = ""
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    inv.errors.append(f"{shown}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB, not read")
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
                before = (len(inv.packages), len(inv.images), len(inv.unpinned))
                parser(text, shown, inv)
                if (len(inv.packages), len(inv.images), len(inv.unpinned)) != before or \
                        parser is not parse_yaml_images:
                    inv.files.append(shown)
            except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
                if parser is parse_yaml_images and "{{" in text:
                    continue  # a Helm template is Go template markup, not YAML: no image we can read
                mark = getattr(exc, "problem_mark", None)
                where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark is not None else shown
                problem = getattr(exc, "problem", None) or str(exc)
                inv.errors.append(f"{where}: cannot parse ({type(exc).__name__}: {str(problem)[:160]})")
    return inv
