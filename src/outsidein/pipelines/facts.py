"""Parse collected CI files and Dockerfiles into jobs, steps, commands and security gates (never raises).

A *pipeline* is one CI system in one collected root: all GitHub Actions workflows of a repository together
(gates are often split across ``ci.yml`` and ``security.yml``), or one ``.gitlab-ci.yml`` with its local
includes. A *gate* is one scanner invocation (an action ``uses:``, a ``run:``/``script:`` command, or a GitLab
security template) with its category and **whether it can fail the pipeline**; the reasons it cannot are the
idioms of ``outsidein.pipelines.gates``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import Node

from outsidein.evidence import SourceEvidence
from outsidein.pipelines import yamlnodes as yn

GITLAB_RESERVED = {"stages", "variables", "include", "default", "workflow", "image", "services", "cache",
                   "before_script", "after_script", "types", "pages:deploy"}


@dataclass
class Command:
    """One logical shell command (continuation lines joined) at its file line."""

    line: int
    text: str
    errexit_off: bool = False  # a ``set +e`` is in effect
    exit_after: bool = False  # the block later exits with a saved status (``exit $rc``)
    pipefail: bool = False


@dataclass
class Step:
    file: str
    line: int
    name: str = ""
    uses: str | None = None
    uses_line: int = 0
    with_: dict[str, Any] = field(default_factory=dict)
    with_lines: dict[str, int] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    continue_on_error: Any = None
    if_: Any = None
    shell: str | None = None
    run_lines: list[tuple[int, str]] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)


@dataclass
class Job:
    file: str
    id: str
    line: int
    steps: list[Step] = field(default_factory=list)
    continue_on_error: Any = None
    if_: Any = None
    needs: list[str] = field(default_factory=list)
    permissions: Any = None
    permissions_line: int = 0
    has_permissions: bool = False
    uses: str | None = None  # a reusable workflow
    uses_line: int = 0
    env: dict[str, Any] = field(default_factory=dict)
    # GitLab
    allow_failure: Any = None
    when: Any = None
    rules: list[Any] = field(default_factory=list)
    only: Any = None
    image: str = ""
    environment: str = ""


@dataclass
class Workflow:
    file: str
    system: str  # "github" or "gitlab"
    triggers: dict[str, Any] = field(default_factory=dict)
    permissions: Any = None
    permissions_line: int = 0
    has_permissions: bool = False
    jobs: list[Job] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=dict)
    templates: list[tuple[str, int]] = field(default_factory=list)  # GitLab include: template
    uses_secrets: bool = False
    error: str | None = None


@dataclass
class Instruction:
    line: int
    cmd: str  # upper-case
    args: str
    stage: int


@dataclass
class Dockerfile:
    file: str
    instructions: list[Instruction] = field(default_factory=list)
    stages: list[tuple[str, str | None, int]] = field(default_factory=list)  # (image, alias, line)
    error: str | None = None


@dataclass
class Gate:
    category: str  # one of gates.CATEGORIES
    tool: str
    file: str
    line: int
    job: str
    blocking: bool
    why: str = ""  # why it cannot fail the pipeline
    target: str | None = None  # DAST target URL, when given literally


@dataclass
class Pipeline:
    system: str  # "github" or "gitlab"
    resource: str  # where a missing gate is reported
    workflows: list[Workflow]
    gates: list[Gate] = field(default_factory=list)
    builds_images: bool = False
    deploys: bool = False
    runs_iac: bool = False


@dataclass
class PipelineFacts:
    name: str
    environment: str | None = None
    missing: dict[str, str] = field(default_factory=dict)
    root: str | None = None
    workflows: list[Workflow] = field(default_factory=list)
    dockerfiles: list[Dockerfile] = field(default_factory=list)
    pipelines: list[Pipeline] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    unreadable_kinds: dict[str, str] = field(default_factory=dict)  # path -> the collector's kind
    truncated: str | None = None  # why the collector stopped before reading every file
    iac_count: int = 0
    sca_bots: list[str] = field(default_factory=list)


# -- shell ----------------------------------------------------------------------------------------------

def commands(lines: list[tuple[int, str]], pipefail: bool = False) -> list[Command]:
    """Logical commands of a script: continuation lines joined, comments dropped, ``set`` state tracked."""
    out: list[Command] = []
    errexit_off = False
    buf, start = "", 0
    for number, text in lines:
        stripped = text.strip()
        if not buf:
            start = number
            if not stripped or stripped.startswith("#"):
                continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        full = (buf + stripped).strip()
        buf = ""
        if re.search(r"(?:^|[;&|]\s*)set\s+[-+]\w*", full):
            for flag in re.findall(r"set\s+([-+]\w+)", full):
                if "e" in flag:
                    errexit_off = flag.startswith("+")
            if re.search(r"set\s+-\w*o\s+pipefail|set\s+-o\s+pipefail|set\s+-\w*o\b.*pipefail", full):
                pipefail = True
        out.append(Command(start, full, errexit_off, False, pipefail))
    if buf:
        out.append(Command(start, buf.strip(), errexit_off, False, pipefail))
    for i, cmd in enumerate(out):
        cmd.exit_after = any(re.search(r"\bexit\s+\"?\$", later.text) for later in out[i + 1:])
    return out


def yaml_error(path: str, exc: yaml.YAMLError) -> str:
    """``path:line:column: YAML syntax error: problem`` (1-based position, when PyYAML gives one)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    return f"{where}: YAML syntax error: {problem}"


# -- GitHub Actions -------------------------------------------------------------------------------------

SECRETS_RE = re.compile(r"\$\{\{\s*(?:secrets\.|github\.token)|\$\{\{s(?:ecrets)?…")


def _env(node: Node | None) -> dict[str, Any]:
    value = yn.py(node)
    return value if isinstance(value, dict) else {}


def _github_step(path: str, node: Node, index: int) -> Step:
    step = Step(path, yn.line(node))
    step.name = str(yn.py(yn.get(node, "name")) or yn.py(yn.get(node, "id")) or f"step {index + 1}")
    uses = yn.get(node, "uses")
    if uses is not None:
        step.uses, step.uses_line = str(yn.py(uses)), yn.line(uses)
    for key, _kn, vn in yn.items(yn.get(node, "with")):
        step.with_[key] = yn.py(vn)
        step.with_lines[key] = yn.line(vn)
    step.env = _env(yn.get(node, "env"))
    step.continue_on_error = yn.py(yn.get(node, "continue-on-error"))
    step.if_ = yn.py(yn.get(node, "if"))
    shell = yn.get(node, "shell")
    step.shell = str(yn.py(shell)) if shell is not None else None
    run = yn.get(node, "run")
    if run is not None:
        step.run_lines = yn.text_lines(run)
        # GitHub's default shell is ``bash -e {0}``; an explicit ``shell: bash`` adds ``-o pipefail``
        step.commands = commands(step.run_lines, pipefail=step.shell == "bash")
    return step


def _github_job(path: str, key: str, kn: Node, node: Node) -> Job:
    job = Job(path, key, yn.line(kn))
    job.continue_on_error = yn.py(yn.get(node, "continue-on-error"))
    job.if_ = yn.py(yn.get(node, "if"))
    needs = yn.py(yn.get(node, "needs"))
    job.needs = [needs] if isinstance(needs, str) else [str(n) for n in needs or []]
    perms = yn.get(node, "permissions")
    if perms is not None:
        job.has_permissions, job.permissions, job.permissions_line = True, yn.py(perms), yn.line(perms)
    uses = yn.get(node, "uses")
    if uses is not None:
        job.uses, job.uses_line = str(yn.py(uses)), yn.line(uses)
    job.env = _env(yn.get(node, "env"))
    env = yn.py(yn.get(node, "environment"))
    job.environment = str(env.get("name", "")) if isinstance(env, dict) else str(env or "")
    job.steps = [_github_step(path, s, i) for i, s in enumerate(yn.seq(yn.get(node, "steps")))]
    return job


def parse_github(path: str, text: str) -> Workflow:
    wf = Workflow(path, "github")
    try:
        root = yn.compose(text)
    except yaml.YAMLError as exc:
        wf.error = yaml_error(path, exc)
        return wf
    if root is None or not yn.items(root):
        wf.error = "empty workflow"
        return wf
    on = yn.get(root, "on")
    if on is None:
        on = yn.get(root, "true")
    value = yn.py(on)
    if isinstance(value, str):
        wf.triggers = {value: None}
    elif isinstance(value, list):
        wf.triggers = {str(v): None for v in value}
    elif isinstance(value, dict):
        wf.triggers = value
    perms = yn.get(root, "permissions")
    if perms is not None:
        wf.has_permissions, wf.permissions, wf.permissions_line = True, yn.py(perms), yn.line(perms)
    wf.env = _env(yn.get(root, "env"))
    wf.jobs = [_github_job(path, k, kn, vn) for k, kn, vn in yn.items(yn.get(root, "jobs"))]
    if not wf.jobs and yn.get(root, "jobs") is None:
        wf.error = "not a GitHub Actions workflow (no jobs)"
    wf.uses_secrets = bool(SECRETS_RE.search(text))
    return wf


# -- GitLab CI ------------------------------------------------------------------------------------------

def _script_lines(node: Node | None) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    if node is None:
        return out
    entries = yn.seq(node) or [node]
    for entry in entries:
        if yn.seq(entry):
            out.extend(_script_lines(entry))
        else:
            out.extend(yn.text_lines(entry))
    return out


def _resolve_extends(name: str, defs: dict[str, tuple[Node, Node]], depth: int = 0) -> list[Node]:
    """The job's node and the nodes it extends, nearest first."""
    if name not in defs or depth > 10:
        return []
    _kn, node = defs[name]
    chain = [node]
    ext = yn.py(yn.get(node, "extends"))
    for parent in [ext] if isinstance(ext, str) else ext or []:
        chain.extend(_resolve_extends(str(parent), defs, depth + 1))
    return chain


def _first(chain: list[Node], key: str) -> Node | None:
    for node in chain:
        found = yn.get(node, key)
        if found is not None:
            return found
    return None


def parse_gitlab(path: str, texts: list[tuple[str, str]]) -> Workflow:
    """One GitLab pipeline: the main file and its local includes, ``(path, text)`` each."""
    wf = Workflow(path, "gitlab")
    defs: dict[str, tuple[Node, Node]] = {}
    where: dict[str, str] = {}
    default: Node | None = None
    errors = []
    for file, text in texts:
        try:
            root = yn.compose(text)
        except yaml.YAMLError as exc:
            errors.append(yaml_error(file, exc))
            continue
        for key, kn, vn in yn.items(root):
            if key == "include":
                for inc in yn.seq(vn) or [vn]:
                    template = yn.get(inc, "template")
                    if template is not None:
                        wf.templates.append((str(yn.py(template)), yn.line(template)))
            elif key == "variables":
                wf.env.update(_env(vn))
            elif key == "default":
                default = vn
            elif key not in GITLAB_RESERVED:
                defs[key] = (kn, vn)
                where[key] = file
        if SECRETS_RE.search(text):
            wf.uses_secrets = True
    if errors and not defs:
        wf.error = "; ".join(errors)
        return wf
    for name, (kn, node) in defs.items():
        if name.startswith(".") or (yn.get(node, "script") is None and yn.get(node, "trigger") is None \
                and yn.get(node, "extends") is None):
            continue
        chain = _resolve_extends(name, defs) + ([default] if default is not None else [])
        job = Job(where[name], name, yn.line(kn))
        job.allow_failure = yn.py(_first(chain, "allow_failure"))
        job.when = yn.py(_first(chain, "when"))
        rules = yn.py(_first(chain, "rules"))
        job.rules = rules if isinstance(rules, list) else []
        job.only = yn.py(_first(chain, "only"))
        image = yn.py(_first(chain, "image"))
        job.image = str(image.get("name", "")) if isinstance(image, dict) else str(image or "")
        env = yn.py(_first(chain, "environment"))
        job.environment = str(env.get("name", "")) if isinstance(env, dict) else str(env or "")
        needs = yn.py(_first(chain, "needs"))
        job.needs = [n if isinstance(n, str) else str(n.get("job", "")) for n in needs or []
                     if isinstance(n, str | dict)]
        job.env = _env(_first(chain, "variables"))
        lines = []
        for key in ("before_script", "script"):
            lines.extend(_script_lines(_first(chain, key)))
        step = Step(where[name], job.line, name=name, env=job.env)
        step.run_lines = lines
        step.commands = commands(lines, pipefail=True)  # the runner's bash runs scripts with -eo pipefail
        job.steps = [step]
        wf.jobs.append(job)
    if errors:
        wf.error = "; ".join(errors)
    return wf


# -- Dockerfiles ----------------------------------------------------------------------------------------

def parse_dockerfile(path: str, text: str) -> Dockerfile:
    df = Dockerfile(path)
    stage = -1
    buf, start = "", 0
    heredoc: str | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        if heredoc is not None:
            if raw.strip() == heredoc:
                heredoc = None
            continue
        stripped = raw.strip()
        if not buf:
            if not stripped or stripped.startswith("#"):
                continue
            start = number
        elif stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        full = (buf + stripped).strip()
        buf = ""
        m = re.match(r"(\w+)\s*(.*)", full, re.S)
        if not m:
            continue
        cmd, args = m.group(1).upper(), m.group(2).strip()
        here = re.search(r"<<-?\s*[\"']?(\w+)[\"']?", args)
        if here and cmd in ("RUN", "COPY"):
            heredoc = here.group(1)
        if cmd == "FROM":
            stage += 1
            parts = [p for p in args.split() if not p.startswith("--")]
            image = parts[0] if parts else ""
            alias = parts[2] if len(parts) >= 3 and parts[1].lower() == "as" else None
            df.stages.append((image, alias, start))
        df.instructions.append(Instruction(start, cmd, args, stage))
    if not df.stages:
        df.error = "no FROM instruction (not a Dockerfile?)"
    return df


# -- the whole target -----------------------------------------------------------------------------------

def _looks_gitlab(text: str) -> bool:
    return bool(re.search(r"^(?:stages|include|script|default)\s*:|^\s+script\s*:", text, re.M)) and \
        not re.search(r"^jobs\s*:", text, re.M)


def parse_pipelines(evidence: SourceEvidence) -> PipelineFacts:
    from outsidein.pipelines.gates import find_gates

    facts = PipelineFacts(evidence.name, evidence.environment)
    if not evidence.data.ok:
        facts.missing["files"] = evidence.data.error or "not collected"
        return facts
    data = evidence.data.data if isinstance(evidence.data.data, dict) else {}
    facts.root = data.get("root")
    facts.iac_count = int(data.get("iac_count") or 0)
    facts.sca_bots = [str(p) for p in data.get("sca_bots") or []]
    if data.get("truncated"):
        facts.truncated = str(data["truncated"])
    files: dict[str, Any] = data.get("files") or {}
    github: list[Workflow] = []
    gitlab_mains: dict[str, list[tuple[str, str]]] = {}
    included: dict[str, str] = {}
    for path, entry in files.items():
        if not isinstance(entry, dict):
            facts.unreadable[path] = "malformed evidence entry (not an object)"
            continue
        if "text" not in entry:
            facts.unreadable[path] = str(entry.get("error") or "not read")
            facts.unreadable_kinds[path] = str(entry.get("kind") or "unknown")
            continue
        kind, text = entry.get("kind"), str(entry["text"])
        if entry.get("included_by"):
            included[path] = str(entry["included_by"])
            continue
        if kind == "dockerfile":
            facts.dockerfiles.append(parse_dockerfile(path, text))
        elif kind == "gitlab" or (kind not in ("github",) and _looks_gitlab(text)):
            gitlab_mains[path] = [(path, text)]
        elif kind in ("github", "ci"):
            github.append(parse_github(path, text))
    for path, main in included.items():
        while main in included:
            main = included[main]
        if main in gitlab_mains:
            gitlab_mains[main].append((path, str(files[path]["text"])))
    facts.workflows.extend(github)
    if github:
        root = facts.root
        resource = str(Path(root) / ".github" / "workflows") if root else github[0].file
        facts.pipelines.append(Pipeline("github", resource, github))
    for main, texts in gitlab_mains.items():
        wf = parse_gitlab(main, texts)
        facts.workflows.append(wf)
        facts.pipelines.append(Pipeline("gitlab", f"{main}:1", [wf]))
    for pipeline in facts.pipelines:
        find_gates(pipeline)
    if not files and not facts.root:
        facts.missing["files"] = "no CI files or Dockerfiles were found"
    return facts
