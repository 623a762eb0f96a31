"""Layer 11: CI/CD pipelines. Does every change pass gates that can say no, and is the pipeline itself safe?

Checks read ``PipelineFacts`` (``outsidein.pipelines.facts``); findings name ``path:line``.

Not assessed is never PASS: a file a check reads that could not be read (``facts.unreadable``) or parsed (a
workflow's or Dockerfile's ``error``, with ``path:line:column`` for YAML), or a collector cap that was hit
(``facts.truncated``), gives NOT_ASSESSED naming it. Problems found in the files that were read still FAIL; a
finding that rests on an absence (a missing gate, no blocking run of a category) is not reported then.

Decisions (the playbook's gate matrix says every gate blocks; severities it does not give are ours):

* ``cicd-gate-missing``: a missing secret scan, SAST or SCA gate is HIGH. The container scan is required when
  the pipeline builds images or the tree has a Dockerfile (HIGH); the IaC scan when the tree holds Terraform,
  Helm or Kustomize files or the pipeline runs terraform/helm/kubectl (HIGH); DAST when the pipeline deploys
  (MEDIUM: it needs a deployed staging). A repository without any CI file fails once ("no pipeline").
* ``cicd-gate-non-blocking`` (HIGH): a gate that cannot fail (see ``outsidein.pipelines.gates`` for every
  idiom). Reported only when no invocation of the same category in the pipeline blocks: a report-only
  SARIF run beside a blocking run is the usual, fine pattern. Dependabot/Renovate count as SCA present but
  not blocking.
* ``cicd-action-unpinned``: an action or reusable workflow not pinned to a 40-hex commit SHA. A branch-like
  ref (``main``, ``master``, no digit) HIGH, a tag MEDIUM; ``./local`` actions and ``docker://…@sha256:`` pass.
* ``cicd-pr-target-checkout`` (CRITICAL): ``pull_request_target``/``workflow_run`` checking out the PR head.
* ``cicd-script-injection``: an attacker-controlled ``${{ github.event… }}`` expanded inside ``run:`` (or
  github-script's ``script:``); CRITICAL when anyone can fire the trigger (issues, comments,
  pull_request_target, workflow_run, discussions), else HIGH.
* ``cicd-token-permissions``: ``permissions: write-all`` HIGH; a workflow using secrets with no
  ``permissions:`` block (workflow, or every job) MEDIUM (the default token may be read-write).
* ``cicd-dast-production`` (HIGH): a ZAP/nuclei target whose host does not look like a test environment
  (staging, stage, stg, dev, test, qa, uat, preview, sandbox, localhost, loopback, private IP).
* ``dockerfile-root-user`` (HIGH), ``dockerfile-secret-env`` (literal CRITICAL; a secret-named ARG/ENV
  without a literal HIGH: build args are kept in the image history), ``dockerfile-base-unpinned`` (``:latest``
  or no tag HIGH, a tag without digest LOW), ``dockerfile-add-url`` (MEDIUM; passes with ``--checksum``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

from outsidein.checks.registry import PIPELINE, target_check
from outsidein.models import Result, Severity, fail, not_assessed, passed
from outsidein.pipelines.facts import Dockerfile, PipelineFacts, Workflow
from outsidein.pipelines.gates import CATEGORY_NAMES, CATEGORY_TOOLS
from outsidein.redact import SECRET_KEY

FILES = ("files",)
Problem = tuple[str, str, Severity | None]
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
UNTRUSTED = re.compile(
    r"github\.(?:event\.(?:issue\.(?:title|body)|pull_request\.(?:title|body|head\.ref|head\.label|"
    r"head\.repo\.default_branch)|comment\.body|review\.body|review_comment\.body|discussion\.(?:title|body)|"
    r"pages\.\S*?page_name|commits\.\S*?(?:message|author\.(?:email|name))|"
    r"head_commit\.(?:message|author\.(?:email|name))|workflow_run\.(?:head_branch|head_commit\.(?:message|"
    r"author\.(?:email|name))|display_title)|inputs\.\w+|client_payload\.\S+)|head_ref)")
OPEN_TRIGGERS = {"issues", "issue_comment", "pull_request_target", "workflow_run", "discussion",
                 "discussion_comment", "pull_request_review", "pull_request_review_comment"}
TEST_HOST = re.compile(r"stag|stg|dev|test|qa|uat|preview|sandbox|localhost|^127\.|^10\.|^192\.168\.|"
                       r"^172\.(?:1[6-9]|2\d|3[01])\.|\.local$|\.internal$|example\.", re.I)
SECRET_NAME = re.compile(rf"^{SECRET_KEY}$", re.I)
ROOT_USERS = {"root", "0", "root:root", "0:0"}


# what each check reads: the collector's file kinds, and whether broken workflows / Dockerfiles count
GITHUB_KINDS = {"github", "ci", "unknown"}
CI_KINDS = {"github", "gitlab", "ci", "unknown"}
DOCKER_KINDS = {"dockerfile", "unknown"}
SCOPES: dict[str, tuple[set[str] | None, set[str], bool]] = {
    # scope: (unreadable kinds (None: all), broken workflow systems, broken Dockerfiles)
    "all": (None, {"github", "gitlab"}, True),
    "ci": (CI_KINDS, {"github", "gitlab"}, False),
    "github": (GITHUB_KINDS, {"github"}, False),
    "docker": (DOCKER_KINDS, set(), True),
}


def _named(file: str, reason: str) -> str:
    return reason if reason.startswith(file) else f"{file}: {reason}"


def _gaps(facts: PipelineFacts, scope: str) -> list[tuple[str, str]]:
    """(resource, reason naming the file) for each piece of evidence the check reads that could not be read,
    parsed or collected: a check with a gap never PASSes ("not assessed is never PASS")."""
    kinds, systems, dockerfiles = SCOPES[scope]
    gaps: list[tuple[str, str]] = []
    if facts.truncated:
        gaps.append((facts.root or facts.name, f"collection stopped at a cap: {facts.truncated}"))
    for path, reason in facts.unreadable.items():
        if kinds is None or facts.unreadable_kinds.get(path, "unknown") in kinds:
            gaps.append((path, f"{path} could not be read: {reason}"))
    for wf in facts.workflows:
        if wf.error and wf.system in systems:
            gaps.append((wf.file, _named(wf.file, wf.error)))
    if dockerfiles:
        for df in facts.dockerfiles:
            if df.error:
                gaps.append((df.file, _named(df.file, df.error)))
    return gaps


def _report(check_id: str, facts: PipelineFacts, problems: Iterable[Problem],
            gaps: list[tuple[str, str]] | None = None) -> Iterator[Result]:
    """FAIL for each problem found (proven by the files read), NOT_ASSESSED for each gap; PASS only when
    nothing was found and every file the check reads was read and parsed."""
    gaps = gaps or []
    seen: set[tuple[str, str]] = set()
    for resource, reason in gaps:
        if (resource, reason) not in seen:
            seen.add((resource, reason))
            yield not_assessed(check_id, resource, reason)
    for resource, detail, severity in problems:
        if (resource, detail) not in seen:
            seen.add((resource, detail))
            yield fail(check_id, resource, detail, environment=facts.environment, severity=severity)
    if not seen:
        yield passed(check_id, facts.name, environment=facts.environment)


def _github(facts: PipelineFacts) -> list[Workflow]:
    return [wf for wf in facts.workflows if wf.system == "github" and not wf.error]


# -- the gate matrix ------------------------------------------------------------------------------------

@target_check(source=PIPELINE, id="cicd-gate-missing", layer=11, severity=Severity.HIGH,
              title="Security gate of the playbook's matrix missing from the pipeline",
              remediation="Add the missing gate as a blocking step (secret scan: gitleaks; SAST: semgrep --error "
                          "or SonarQube with sonar.qualitygate.wait=true; SCA: npm audit / pip-audit / trivy fs "
                          "--exit-code 1; container: trivy image --exit-code 1 --severity HIGH,CRITICAL; IaC: "
                          "checkov / tfsec; DAST: ZAP against staging).",
              verify="outsidein audit --layer 11  # the gate matrix of {resource} lists every gate as blocking",
              requires=FILES)
def gate_missing(facts: PipelineFacts) -> Iterator[Result]:
    gaps = _gaps(facts, "all")
    problems: list[Problem] = []
    if _gaps(facts, "ci"):
        # a gate may sit in the file that could not be read: its absence is not proven
        yield from _report("cicd-gate-missing", facts, problems, gaps)
        return
    if not facts.pipelines and facts.root:
        problems.append((facts.root, "no CI pipeline (GitHub Actions or GitLab CI) found: no gate runs", None))
    for p in facts.pipelines:
        present = {g.category for g in p.gates}
        if facts.sca_bots:
            present.add("sca")
        required = ["secret", "sast", "sca"]
        if p.builds_images or any(not d.error for d in facts.dockerfiles):
            required.append("container")
        if facts.iac_count or p.runs_iac:
            required.append("iac")
        if p.deploys:
            required.append("dast")
        for category in required:
            if category not in present:
                problems.append((p.resource, f"no {CATEGORY_NAMES[category]} gate ({CATEGORY_TOOLS[category]})",
                                 Severity.MEDIUM if category == "dast" else None))
    yield from _report("cicd-gate-missing", facts, problems, gaps)


@target_check(source=PIPELINE, id="cicd-gate-non-blocking", layer=11, severity=Severity.HIGH,
              title="Security scan runs but cannot fail the pipeline",
              remediation="Make the scan exit non-zero on findings at the playbook's threshold and let that fail "
                          "the job: drop continue-on-error / allow_failure / `|| true`, and set the tool's fail "
                          "flag (trivy --exit-code 1, grype --fail-on high, semgrep --error, trufflehog --fail).",
              verify="grep -nE 'continue-on-error|allow_failure|\\|\\| true|exit-code' {resource}  # expect none on "
                     "the scan step",
              requires=FILES)
def gate_non_blocking(facts: PipelineFacts) -> Iterator[Result]:
    gaps = _gaps(facts, "ci")
    problems: list[Problem] = []
    # "cannot fail" is judged against every invocation of the category: with a file unread it is not proven
    for p in [] if gaps else facts.pipelines:
        blocking = {g.category for g in p.gates if g.blocking}
        for g in p.gates:
            if not g.blocking and g.category not in blocking:
                problems.append((f"{g.file}:{g.line}",
                                 f"{g.tool} ({CATEGORY_NAMES[g.category]}) in job {g.job} cannot fail: {g.why}",
                                 None))
        if "sca" not in blocking and not any(g.category == "sca" for g in p.gates):
            for bot in facts.sca_bots:
                problems.append((f"{bot}:1", "Dependabot/Renovate opens pull requests but never fails a build; "
                                             "no SCA scan gates the pipeline", None))
    yield from _report("cicd-gate-non-blocking", facts, problems, gaps)


# -- GitHub Actions hardening ---------------------------------------------------------------------------

def _ref_severity(ref: str) -> Severity | None:
    if SHA_RE.match(ref):
        return None
    if ref in ("main", "master", "develop", "dev", "trunk", "latest", "HEAD", "nightly", "edge") or \
            not re.search(r"\d", ref):
        return Severity.HIGH
    return Severity.MEDIUM


@target_check(source=PIPELINE, id="cicd-action-unpinned", layer=11, severity=Severity.HIGH,
              title="Action or reusable workflow referenced by branch or tag, not by commit SHA",
              remediation="Pin every third-party action to a full 40-character commit SHA (keep the tag in a "
                          "comment, let Dependabot update it): uses: actions/checkout@<sha> # v4.2.2.",
              verify="grep -nE 'uses:\\s*[^.][^@]*@' {resource}  # every ref is 40 hex characters",
              requires=FILES)
def action_unpinned(facts: PipelineFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    for wf in _github(facts):
        refs = [(j.uses, j.uses_line) for j in wf.jobs if j.uses] + \
               [(s.uses, s.uses_line) for j in wf.jobs for s in j.steps if s.uses]
        for uses, line in refs:
            assert uses is not None
            if uses.startswith("./") or (uses.startswith("docker://") and "@sha256:" in uses):
                continue
            if uses.startswith("docker://"):
                image = uses[len("docker://"):]
                tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else "latest"
                problems.append((f"{wf.file}:{line}", f"{uses} is not pinned by digest",
                                 Severity.HIGH if tag == "latest" else Severity.MEDIUM))
                continue
            name, _, ref = uses.partition("@")
            if not ref:
                problems.append((f"{wf.file}:{line}", f"{uses} has no ref", Severity.HIGH))
                continue
            sev = _ref_severity(ref)
            if sev is not None:
                kind = "a branch" if sev is Severity.HIGH else "a tag"
                problems.append((f"{wf.file}:{line}", f"{name}@{ref} is pinned to {kind}, not a commit SHA", sev))
    yield from _report("cicd-action-unpinned", facts, problems, _gaps(facts, "github"))


@target_check(source=PIPELINE, id="cicd-pr-target-checkout", layer=11, severity=Severity.CRITICAL,
              title="pull_request_target/workflow_run workflow checks out and runs the pull request's code",
              remediation="Use pull_request (no secrets, read-only token) to build PR code; in pull_request_target "
                          "never check out github.event.pull_request.head.*, or split into an unprivileged build "
                          "and a privileged workflow_run that only reads artifacts.",
              verify="grep -nE 'pull_request_target|head\\.(sha|ref)' {resource}",
              requires=FILES)
def pr_target_checkout(facts: PipelineFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    head = re.compile(r"github\.event\.(?:pull_request\.head\.|workflow_run\.head_)|github\.head_ref|refs/pull/|"
                      r"merge_commit_sha")
    for wf in _github(facts):
        trigger = next((t for t in ("pull_request_target", "workflow_run") if t in wf.triggers), None)
        if trigger is None:
            continue
        for job in wf.jobs:
            for step in job.steps:
                action = (step.uses or "").split("@", 1)[0].lower()
                ref = " ".join(str(step.with_.get(k, "")) for k in ("ref", "repository"))
                if action == "actions/checkout" and head.search(ref):
                    problems.append((f"{wf.file}:{step.uses_line}", f"{trigger} workflow checks out the PR head "
                                     f"({step.with_.get('ref')}) in job {job.id}", None))
                for cmd in step.commands:
                    if re.search(r"\bgh\s+pr\s+checkout\b|\bgit\s+(?:fetch|checkout)\b.*(?:pull/|head\.(?:sha|ref)|"
                                 r"head_ref)", cmd.text):
                        problems.append((f"{wf.file}:{cmd.line}", f"{trigger} workflow checks out the PR head "
                                         f"in job {job.id}: {cmd.text[:80]}", None))
    yield from _report("cicd-pr-target-checkout", facts, problems, _gaps(facts, "github"))


@target_check(source=PIPELINE, id="cicd-script-injection", layer=11, severity=Severity.HIGH,
              title="Attacker-controlled ${{ github.event.* }} value expanded inside a shell script",
              remediation="Pass the value through an environment variable (env: TITLE: ${{ github.event.issue.title "
                          "}}; run: echo \"$TITLE\") instead of expanding it into the script.",
              verify="grep -nE '\\$\\{\\{[^}]*github\\.(event|head_ref)' {resource}  # none inside run:",
              requires=FILES)
def script_injection(facts: PipelineFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    expr = re.compile(r"\$\{\{(.*?)\}\}")
    for wf in _github(facts):
        sev = Severity.CRITICAL if OPEN_TRIGGERS & set(wf.triggers) else None
        for job in wf.jobs:
            for step in job.steps:
                lines = list(step.run_lines)
                action = (step.uses or "").split("@", 1)[0].lower()
                if action == "actions/github-script" and "script" in step.with_:
                    first = step.with_lines.get("script", step.line) + 1
                    lines += [(first + i, t) for i, t in enumerate(str(step.with_["script"]).split("\n"))]
                for number, text in lines:
                    for m in expr.finditer(text):
                        bad = UNTRUSTED.search(m.group(1))
                        if bad:
                            problems.append((f"{wf.file}:{number}", f"{bad.group(0)} is expanded into the script "
                                             f"of job {job.id}", sev))
    yield from _report("cicd-script-injection", facts, problems, _gaps(facts, "github"))


@target_check(source=PIPELINE, id="cicd-token-permissions", layer=11, severity=Severity.MEDIUM,
              title="Workflow's GITHUB_TOKEN not scoped down (write-all, or no permissions block)",
              remediation="Declare permissions: contents: read at the top of the workflow and grant each job only "
                          "the scopes it needs.",
              verify="grep -n 'permissions:' {resource}",
              requires=FILES)
def token_permissions(facts: PipelineFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    for wf in _github(facts):
        if wf.permissions == "write-all":
            problems.append((f"{wf.file}:{wf.permissions_line}", "permissions: write-all", Severity.HIGH))
        for job in wf.jobs:
            if job.permissions == "write-all":
                problems.append((f"{wf.file}:{job.permissions_line}", f"job {job.id} has permissions: write-all",
                                 Severity.HIGH))
        if wf.uses_secrets and not wf.has_permissions and not all(j.has_permissions for j in wf.jobs):
            problems.append((f"{wf.file}:1", "uses secrets but declares no permissions: the token keeps the "
                             "repository's default (possibly read-write)", None))
    yield from _report("cicd-token-permissions", facts, problems, _gaps(facts, "github"))


@target_check(source=PIPELINE, id="cicd-dast-production", layer=11, severity=Severity.HIGH,
              title="DAST aimed at what looks like production",
              remediation="Point ZAP/nuclei at the staging deployment only (the playbook: never production).",
              verify="grep -nE 'zap|nuclei' {resource}  # the target host is a staging host",
              requires=FILES)
def dast_production(facts: PipelineFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    for p in facts.pipelines:
        for g in p.gates:
            if g.category != "dast" or not g.target or "${" in g.target or g.target.startswith("$"):
                continue
            host = urlsplit(g.target if "://" in g.target else f"//{g.target}").hostname or ""
            if host and not TEST_HOST.search(host):
                problems.append((f"{g.file}:{g.line}", f"{g.tool} scans {g.target} (not a staging/test host)", None))
    yield from _report("cicd-dast-production", facts, problems, _gaps(facts, "ci"))


# -- Dockerfiles ----------------------------------------------------------------------------------------

def _final_user(df: Dockerfile, stage: int, depth: int = 0) -> str | None:
    users = [i.args.strip() for i in df.instructions if i.stage == stage and i.cmd == "USER"]
    if users:
        return users[-1]
    image = df.stages[stage][0]
    for index, (_img, alias, _line) in enumerate(df.stages[:stage]):
        if alias and alias.lower() == image.lower() and depth < 20:
            return _final_user(df, index, depth + 1)
    return None


@target_check(source=PIPELINE, id="dockerfile-root-user", layer=11, severity=Severity.HIGH,
              title="Image runs as root (no non-root USER in the final stage)",
              remediation="End the final stage with a non-root user: RUN adduser -D -u 1001 app … USER 1001.",
              verify="docker inspect --format '{{.Config.User}}' <image>  # expect a non-root user",
              requires=FILES)
def root_user(facts: PipelineFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    for df in facts.dockerfiles:
        if df.error:
            continue
        last = len(df.stages) - 1
        image, _alias, line = df.stages[last]
        user = _final_user(df, last)
        if user is None:
            if not re.search(r"nonroot|rootless", image):
                problems.append((f"{df.file}:{line}", f"the final stage ({image}) sets no USER: it runs as root",
                                 None))
        elif user.split()[0].lower() in ROOT_USERS:
            where = next(i.line for i in reversed(df.instructions) if i.cmd == "USER")
            problems.append((f"{df.file}:{where}", f"USER {user}: the image runs as root", None))
    yield from _report("dockerfile-root-user", facts, problems, _gaps(facts, "docker"))


def _pairs(args: str) -> list[tuple[str, str | None]]:
    if "=" not in args.split()[0] if args.split() else True:
        parts = args.split(None, 1)
        return [(parts[0], parts[1] if len(parts) > 1 else None)] if parts else []
    out = []
    for m in re.finditer(r"([\w.-]+)(?:=(\"(?:\\.|[^\"])*\"|'[^']*'|\S*))?", args):
        out.append((m.group(1), m.group(2)))
    return out


@target_check(source=PIPELINE, id="dockerfile-secret-env", layer=11, severity=Severity.CRITICAL,
              title="Secret set in Dockerfile ENV or ARG (baked into the image layers and history)",
              remediation="Remove it and rotate it; pass build secrets with RUN --mount=type=secret and runtime "
                          "secrets from the secret manager.",
              verify="docker history --no-trunc <image> | grep -iE 'secret|token|password|key'  # expect nothing",
              requires=FILES)
def secret_env(facts: PipelineFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    for df in facts.dockerfiles:
        for ins in df.instructions:
            if ins.cmd not in ("ENV", "ARG"):
                continue
            for key, value in _pairs(ins.args):
                if not SECRET_NAME.match(key):
                    continue
                literal = (value or "").strip("\"'")
                if literal and not literal.startswith("$"):
                    problems.append((f"{df.file}:{ins.line}", f"{ins.cmd} {key} has a literal value ({literal})",
                                     None))
                else:
                    problems.append((f"{df.file}:{ins.line}", f"{ins.cmd} {key}: a secret passed as a build "
                                     "argument or environment stays in the image history", Severity.HIGH))
    yield from _report("dockerfile-secret-env", facts, problems, _gaps(facts, "docker"))


def _substitute(image: str, args: dict[str, str]) -> str:
    def value(m: re.Match[str]) -> str:
        return args.get(m.group(1)) or m.group(0)

    return re.sub(r"\$\{?(\w+)\}?", value, image)


@target_check(source=PIPELINE, id="dockerfile-base-unpinned", layer=11, severity=Severity.HIGH,
              title="Base image :latest or untagged (or tagged without a digest)",
              remediation="Pin the base image to a version tag and its digest: FROM python:3.12-slim@sha256:<digest>.",
              verify="grep -n '^FROM' {resource}  # every image has @sha256:",
              requires=FILES)
def base_unpinned(facts: PipelineFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    for df in facts.dockerfiles:
        aliases: set[str] = set()
        args = {k: (v or "").strip("\"'") for i in df.instructions if i.cmd == "ARG" and i.stage < 0
                for k, v in _pairs(i.args)}
        for image, alias, line in df.stages:
            resolved = _substitute(image, args)
            if resolved.lower() in aliases or resolved == "scratch" or "$" in resolved or "@sha256:" in resolved:
                pass
            else:
                tag = resolved.rsplit(":", 1)[1] if ":" in resolved.split("/")[-1] else None
                if tag in (None, "latest"):
                    what = "untagged" if tag is None else ":latest"
                    problems.append((f"{df.file}:{line}", f"FROM {resolved}: {what} (whatever was pushed last)", None))
                else:
                    problems.append((f"{df.file}:{line}", f"FROM {resolved}: tag without a digest", Severity.LOW))
            if alias:
                aliases.add(alias.lower())
    yield from _report("dockerfile-base-unpinned", facts, problems, _gaps(facts, "docker"))


@target_check(source=PIPELINE, id="dockerfile-add-url", layer=11, severity=Severity.MEDIUM,
              title="ADD downloads a remote URL without a checksum",
              remediation="Download with RUN curl … && echo '<sha256>  file' | sha256sum -c, or ADD "
                          "--checksum=sha256:….",
              verify="grep -nE '^ADD\\s+(--\\S+\\s+)*(https?|git)' {resource}",
              requires=FILES)
def add_url(facts: PipelineFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    for df in facts.dockerfiles:
        for ins in df.instructions:
            url = re.search(r"(?:^|\s)((?:https?://|git@)\S+)", ins.args)
            if ins.cmd == "ADD" and url and "--checksum" not in ins.args:
                problems.append((f"{df.file}:{ins.line}", f"ADD {url.group(1)} is fetched without a checksum", None))
    yield from _report("dockerfile-add-url", facts, problems, _gaps(facts, "docker"))
