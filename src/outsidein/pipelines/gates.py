"""The gate matrix: which scanner a step runs, its category, and whether it can fail the pipeline.

Categories (the playbook's section 11): ``secret`` (gitleaks, trufflehog, detect-secrets), ``sast`` (semgrep,
CodeQL, bandit, SonarQube), ``sca`` (snyk, trivy fs, grype dir, pip-audit, npm/yarn/pnpm audit, osv-scanner,
safety, govulncheck, dependency-review; Dependabot/Renovate configuration counts as present but never blocks),
``container`` (trivy image, grype image, snyk container, docker scout), ``iac`` (checkov, tfsec, kics, trivy
config, terrascan, snyk iac) and ``dast`` (ZAP, nuclei).

A gate cannot fail the pipeline when (each idiom is one reason string):

* the step or job has ``continue-on-error: true`` or an expression that may be true; GitLab
  ``allow_failure: true`` or ``allow_failure: exit_codes``; ``when: manual`` without ``allow_failure: false``;
* it never runs on a change: ``if: false``, only on ``schedule``/``workflow_dispatch``, GitLab ``when: never``,
  ``only: schedules`` or rules that only match scheduled pipelines;
* the command swallows its status: ``|| true``, ``|| :``, ``|| exit 0``, ``|| echo``, ``; true`` at the end,
  ``set +e`` before it (unless the block later ``exit``\\ s with a saved status), or a pipe into another command
  without ``pipefail`` (GitHub's default shell is ``bash -e``; ``shell: bash`` and GitLab add pipefail);
* the tool exits 0 on findings unless told otherwise: trivy without ``--exit-code 1`` (action input
  ``exit-code``, env ``TRIVY_EXIT_CODE``), grype without ``--fail-on`` (``fail-build: false`` in
  anchore/scan-action), semgrep without ``--error`` (``semgrep ci`` blocks), bandit ``--exit-zero``, gitleaks
  ``--exit-code 0``, trufflehog without ``--fail``, ``detect-secrets scan``, checkov/tfsec ``--soft-fail``
  (``soft_fail: true``), kics ``--ignore-on-exit``, ``snyk monitor``, sonar without
  ``sonar.qualitygate.wait=true`` (or the quality-gate action), docker scout without ``--exit-code``,
  dependency-check without a CVSS fail threshold, ZAP actions without ``fail_action: true``,
  dependency-review ``warn-only: true``, tfsec-sarif-action;
* GitLab's security templates (``Security/SAST.gitlab-ci.yml`` ...): their analyzers report and exit 0; only a
  merge-request approval policy (not visible in the file) blocks.

Assumptions: CodeQL's analyze action counts as blocking (code-scanning merge protection lives in the
repository settings, not in the file); nuclei and ZAP scripts block unless an idiom above says otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from outsidein.pipelines.facts import Command, Gate, Job, Pipeline, Step, Workflow

CATEGORIES = ("secret", "sast", "sca", "container", "iac", "dast")
CATEGORY_NAMES = {"secret": "secret scan", "sast": "SAST", "sca": "SCA (dependency scan)",
                  "container": "container image scan", "iac": "IaC scan", "dast": "DAST"}
CATEGORY_TOOLS = {"secret": "gitleaks, trufflehog, detect-secrets", "sast": "semgrep, CodeQL, SonarQube, bandit",
                  "sca": "npm audit, pip-audit, trivy fs, osv-scanner, snyk test",
                  "container": "trivy image --exit-code 1, grype --fail-on", "iac": "checkov, tfsec, kics",
                  "dast": "OWASP ZAP against staging"}


@dataclass(frozen=True)
class CmdTool:
    tool: str
    pattern: re.Pattern[str]
    category: str


def _c(tool: str, pattern: str, category: str) -> CmdTool:
    return CmdTool(tool, re.compile(pattern), category)


# order matters: the first match of a command wins
CMD_TOOLS = (
    _c("gitleaks", r"\bgitleaks\b", "secret"),
    _c("trufflehog", r"\btrufflehog\b", "secret"),
    _c("detect-secrets", r"\bdetect-secrets(?:-hook)?\b", "secret"),
    _c("semgrep", r"\bsemgrep\b", "sast"),
    _c("bandit", r"\bbandit\b", "sast"),
    _c("codeql", r"\bcodeql\s+database\s+analyze\b", "sast"),
    _c("sonar", r"\bsonar-scanner\b|\bsonar:sonar\b|\bgradlew?\s.*\bsonar(?:qube)?\b", "sast"),
    _c("snyk container", r"\bsnyk\s+container\b", "container"),
    _c("snyk iac", r"\bsnyk\s+iac\b", "iac"),
    _c("snyk", r"\bsnyk\s+(?:test|monitor)\b", "sca"),
    _c("trivy config", r"\btrivy\s+(?:\S+\s+)*?(?:config|conf)\b", "iac"),
    _c("trivy fs", r"\btrivy\s+(?:\S+\s+)*?(?:fs|filesystem|repo|repository|rootfs|sbom)\b", "sca"),
    _c("trivy image", r"\btrivy\s+(?:\S+\s+)*?image\b", "container"),
    _c("grype dir", r"\bgrype\s+(?:\S+\s+)*?(?:dir:|file:|sbom:|\.(?:\s|$))", "sca"),
    _c("grype image", r"\bgrype\b", "container"),
    _c("docker scout", r"\bdocker\s+scout\s+(?:cves|quickview|recommendations)\b", "container"),
    _c("pip-audit", r"\bpip-audit\b", "sca"),
    _c("npm audit", r"\b(?:npm|yarn|pnpm)\s+(?:\S+\s+)*?audit\b", "sca"),
    _c("osv-scanner", r"\bosv-scanner\b", "sca"),
    _c("safety", r"\bsafety\s+(?:check|scan)\b", "sca"),
    _c("govulncheck", r"\bgovulncheck\b", "sca"),
    _c("dependency-check", r"\bdependency-check\b", "sca"),
    _c("checkov", r"\bcheckov\b", "iac"),
    _c("tfsec", r"\btfsec\b", "iac"),
    _c("kics", r"\bkics\s+scan\b", "iac"),
    _c("terrascan", r"\bterrascan\s+scan\b", "iac"),
    _c("zap", r"\bzap-(?:baseline|full-scan|api-scan)(?:\.py)?\b|\bzap\.sh\b", "dast"),
    _c("nuclei", r"\bnuclei\b", "dast"),
)

# action (owner/repo[/path], lower-case prefix) -> (tool, category); trivy-action's category is its scan-type
ACTIONS = {
    "gitleaks/gitleaks-action": ("gitleaks", "secret"),
    "trufflesecurity/trufflehog": ("trufflehog", "secret"),
    "github/codeql-action/analyze": ("codeql", "sast"),
    "returntocorp/semgrep-action": ("semgrep", "sast"),
    "semgrep/semgrep-action": ("semgrep", "sast"),
    "sonarsource/sonarqube-scan-action": ("sonar", "sast"),
    "sonarsource/sonarcloud-github-action": ("sonar", "sast"),
    "snyk/actions": ("snyk", "sca"),
    "actions/dependency-review-action": ("dependency-review", "sca"),
    "google/osv-scanner-action": ("osv-scanner", "sca"),
    "pypa/gh-action-pip-audit": ("pip-audit", "sca"),
    "aquasecurity/trivy-action": ("trivy", "container"),
    "anchore/scan-action": ("grype", "container"),
    "bridgecrewio/checkov-action": ("checkov", "iac"),
    "aquasecurity/tfsec-action": ("tfsec", "iac"),
    "aquasecurity/tfsec-sarif-action": ("tfsec", "iac"),
    "checkmarx/kics-github-action": ("kics", "iac"),
    "zaproxy/action-baseline": ("zap", "dast"),
    "zaproxy/action-full-scan": ("zap", "dast"),
    "zaproxy/action-api-scan": ("zap", "dast"),
    "projectdiscovery/nuclei-action": ("nuclei", "dast"),
}

GITLAB_TEMPLATES = {"sast-iac": "iac", "sast": "sast", "secret-detection": "secret",
                    "dependency-scanning": "sca", "container-scanning": "container", "dast": "dast"}

BUILD_RE = re.compile(r"\b(?:docker|podman)\s+(?:buildx\s+)?build\b|\bbuildah\s+bud\b|\bkaniko\b|/kaniko/executor|"
                      r"\bko\s+build\b|\bjib\b")
DEPLOY_RE = re.compile(r"\bkubectl\s+(?:apply|set\s+image|rollout)\b|\bhelm\s+(?:upgrade|install)\b|"
                       r"\bterraform\s+apply\b|\baws\s+ecs\s+update-service\b|\b(?:serverless|sls|vercel|fly|"
                       r"cdk|pulumi\s+up|eb)\s+deploy\b|\bpulumi\s+up\b|\bdeploy\b")
IAC_RUN_RE = re.compile(r"\bterraform\s+(?:plan|apply|init)\b|\bhelm\s+(?:upgrade|install|template)\b|"
                        r"\bkubectl\s+apply\b|\bcdk\s+deploy\b|\bpulumi\s+up\b")
_QUOTED = re.compile(r"'[^']*'|\"(?:\\.|[^\"\\])*\"")
_SWALLOW = re.compile(r"\|\|\s*(?:true\b|:(?:\s|$)|exit\s+0\b|echo\b)|;\s*(?:true|:|exit\s+0)\s*$")
_PIPE = re.compile(r"(?<!\|)\|(?![|&])")
NEVER = ("false", "${{ false }}", "${{false}}")


def unquoted(text: str) -> str:
    return _QUOTED.sub('""', text)


def truthy(value: Any) -> str | None:
    """``continue-on-error``/``allow_failure`` as a reason, or None when it is false."""
    if value is True or (isinstance(value, str) and value.strip().lower() == "true"):
        return "true"
    if isinstance(value, str) and "${{" in value:
        return f"the expression {value.strip()} (may be true)"
    return None


def _flag(text: str, *names: str) -> str | None:
    """The value of ``--name value``/``--name=value`` (first of ``names`` present), quotes removed."""
    for name in names:
        m = re.search(rf"(?:^|\s){re.escape(name)}(?:=|\s+)[\"']?([^\s\"']+)", text)
        if m:
            return m.group(1)
    return None


def _env_value(env: dict[str, Any], name: str) -> str | None:
    value = env.get(name)
    return None if value is None else str(value)


def command_tool_reason(tool: str, text: str, env: dict[str, Any]) -> str | None:
    """Why this tool's invocation exits 0 on findings, or None when it fails on them."""
    if tool.startswith("trivy"):
        code = _flag(text, "--exit-code") or _env_value(env, "TRIVY_EXIT_CODE")
        if code is None or code.strip() == "0":
            return "trivy exits 0 on findings without --exit-code 1"
    elif tool.startswith("grype"):
        if not (_flag(text, "--fail-on", "-f") or env.get("GRYPE_FAIL_ON_SEVERITY")):
            return "grype exits 0 on findings without --fail-on <severity>"
    elif tool == "semgrep":
        if not re.search(r"\bsemgrep\s+ci\b", text) and not re.search(r"(?:^|\s)--error\b", text):
            return "semgrep exits 0 on findings without --error"
    elif tool == "bandit":
        if re.search(r"(?:^|\s)--exit-zero\b", text):
            return "bandit --exit-zero"
    elif tool == "gitleaks":
        if (_flag(text, "--exit-code") or "1") == "0":
            return "gitleaks --exit-code 0"
    elif tool == "trufflehog":
        if not re.search(r"(?:^|\s)--fail\b", text):
            return "trufflehog exits 0 on findings without --fail"
    elif tool == "detect-secrets":
        if re.search(r"\bdetect-secrets\s+scan\b", text) and "detect-secrets-hook" not in text:
            return ("detect-secrets scan writes a baseline and exits 0 "
                    "(use detect-secrets-hook or audit --fail-on-unaudited)")
    elif tool in ("checkov", "tfsec"):
        if re.search(r"(?:^|\s)(?:--soft-fail(?:-on)?|-s)\b", text):
            return f"{tool} --soft-fail"
    elif tool == "kics":
        if (_flag(text, "--ignore-on-exit") or "none") in ("all", "results"):
            return "kics --ignore-on-exit"
    elif tool == "snyk":
        if re.search(r"\bsnyk\s+monitor\b", text):
            return "snyk monitor uploads a snapshot and never fails (use snyk test)"
    elif tool == "sonar":
        if not re.search(r"sonar\.qualitygate\.wait=true", text):
            return "the sonar scan does not wait for the quality gate (-Dsonar.qualitygate.wait=true)"
    elif tool == "docker scout":
        if not re.search(r"(?:^|\s)(?:--exit-code|-e)\b", text):
            return "docker scout exits 0 on findings without --exit-code"
    elif tool == "dependency-check" and not re.search(r"failBuildOnCVSS|--failOnCVSS", text):
        return "dependency-check without a CVSS fail threshold (--failOnCVSS 7)"
    return None


def command_reason(cmd: Command, start: int, github_default_shell: bool) -> str | None:
    """Why a shell command's exit status cannot fail the step (``start``: where the tool appears)."""
    bare = unquoted(cmd.text)
    tail = unquoted(cmd.text[start:])
    m = _SWALLOW.search(tail)
    if m:
        return f"`{m.group(0).strip()}` swallows its exit status"
    if cmd.errexit_off and not cmd.exit_after:
        return "`set +e` is in effect and the status is never checked"
    if github_default_shell and _PIPE.search(tail) and not cmd.pipefail and \
            not re.search(r"set\s+-\w*o\s*pipefail", bare):
        return "its exit status is lost in a pipe (the default shell has no pipefail)"
    return None


def action_reason(tool: str, uses: str, step: Step, job: Job) -> str | None:
    w = {k.lower(): v for k, v in step.with_.items()}

    def on(key: str) -> bool:
        return str(w.get(key, "")).strip().lower() == "true"

    action = uses.lower()
    if action.startswith("aquasecurity/trivy-action"):
        code = str(w.get("exit-code", step.env.get("TRIVY_EXIT_CODE", "0"))).strip()
        if code in ("0", ""):
            return "trivy-action's exit-code input defaults to 0 (set exit-code: 1)"
    elif action.startswith("anchore/scan-action"):
        if str(w.get("fail-build", "true")).strip().lower() == "false":
            return "anchore/scan-action fail-build: false"
    elif action.startswith(("bridgecrewio/checkov-action", "aquasecurity/tfsec-action")):
        if on("soft_fail"):
            return f"{tool} soft_fail: true"
    elif action.startswith("aquasecurity/tfsec-sarif-action"):
        return "tfsec-sarif-action only uploads SARIF and never fails"
    elif action.startswith("checkmarx/kics-github-action"):
        if str(w.get("ignore_on_exit", "")).strip().lower() in ("all", "results"):
            return "kics ignore_on_exit"
    elif action.startswith("zaproxy/action-"):
        if not on("fail_action"):
            return "the ZAP action does not fail without fail_action: true"
    elif action.startswith("actions/dependency-review-action"):
        if on("warn-only"):
            return "dependency-review warn-only: true"
    elif action.startswith("snyk/actions"):
        if "monitor" in str(w.get("command", "")):
            return "snyk monitor uploads a snapshot and never fails (use snyk test)"
    elif action.startswith(("sonarsource/sonarqube-scan-action", "sonarsource/sonarcloud-github-action")):
        waits = "sonar.qualitygate.wait=true" in str(w.get("args", ""))
        if not waits and not any((s.uses or "").lower().startswith("sonarsource/sonarqube-quality-gate-action")
                                 for s in job.steps):
            return "the sonar scan does not wait for the quality gate (add sonarqube-quality-gate-action)"
    return None


def _action_category(action: str, tool: str, category: str, step: Step) -> tuple[str, str]:
    if action.startswith("aquasecurity/trivy-action"):
        scan = str(step.with_.get("scan-type", "image")).lower()
        return {"fs": ("trivy fs", "sca"), "repo": ("trivy fs", "sca"), "rootfs": ("trivy fs", "sca"),
                "sbom": ("trivy fs", "sca"), "config": ("trivy config", "iac")}.get(scan, ("trivy image", "container"))
    if action.startswith("anchore/scan-action") and ("path" in step.with_ or "sbom" in step.with_):
        return "grype dir", "sca"
    if action.startswith("snyk/actions"):
        if "/docker" in action:
            return "snyk container", "container"
        if "/iac" in action:
            return "snyk iac", "iac"
    return tool, category


def _schedule_only(wf: Workflow) -> bool:
    return bool(wf.triggers) and set(wf.triggers) <= {"schedule", "workflow_dispatch", "repository_dispatch"}


def _never(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() in NEVER)


def _scheduled_if(value: Any) -> bool:
    return isinstance(value, str) and bool(re.search(r"github\.event_name\s*==\s*'schedule'", value)) and \
        "||" not in value


def github_wrapper_reason(wf: Workflow, job: Job, step: Step) -> str | None:
    if _schedule_only(wf):
        return f"the workflow only runs on {', '.join(sorted(wf.triggers))}, never on a change"
    for what, value in (("job", job.if_), ("step", step.if_)):
        if _never(value):
            return f"the {what} has `if: {value}` and never runs"
        if _scheduled_if(value):
            return f"the {what} only runs on schedule"
    reason = truthy(step.continue_on_error)
    if reason:
        return f"the step has continue-on-error: {reason}"
    reason = truthy(job.continue_on_error)
    if reason:
        return f"the job has continue-on-error: {reason}"
    return None


def gitlab_wrapper_reason(job: Job) -> str | None:
    af = job.allow_failure
    if isinstance(af, dict) and "exit_codes" in af:
        return f"allow_failure: exit_codes {af['exit_codes']} (the job passes on those exit codes)"
    if truthy(af):
        return "allow_failure: true"
    if job.when == "never":
        return "when: never (the job never runs)"
    if job.when == "manual" and af is not False:
        return "when: manual (manual jobs may be skipped; allow_failure defaults to true)"
    if job.rules:
        whens = [r.get("when", "on_success") if isinstance(r, dict) else "on_success" for r in job.rules]
        if all(w in ("manual", "never") for w in whens) and af is not False and "manual" in whens:
            return "its rules only add it as when: manual"
        ifs = [str(r.get("if", "")) for r in job.rules if isinstance(r, dict) and r.get("when") != "never"]
        if ifs and all(re.search(r"CI_PIPELINE_SOURCE\s*==\s*[\"']schedule[\"']", i) for i in ifs):
            return "its rules only run it in scheduled pipelines"
        for rule in job.rules:
            if isinstance(rule, dict) and truthy(rule.get("allow_failure")):
                return "a rule sets allow_failure: true"
    only = job.only
    if only is not None:
        refs = only if isinstance(only, list) else only.get("refs", []) if isinstance(only, dict) else [only]
        if refs and all(str(r) in ("schedules", "web", "triggers", "api") for r in refs):
            return f"only: {refs} (never runs on a change)"
    return None


DAST_TARGET = re.compile(r"(?:^|\s)(?:-t|-u|-target|--target|-url)\s+[\"']?(\S+?)[\"']?(?:\s|$)")


def _dast_target(text: str) -> str | None:
    m = DAST_TARGET.search(text)
    return m.group(1) if m else None


def find_gates(pipeline: Pipeline) -> None:
    """Fill ``pipeline.gates`` and what the pipeline does (builds images, deploys, runs IaC)."""
    for wf in pipeline.workflows:
        if wf.error and not wf.jobs:
            continue
        for job in wf.jobs:
            if job.environment or re.search(r"deploy|release|publish", job.id, re.I):
                pipeline.deploys = True
            if job.uses and "deploy" in job.uses.lower():
                pipeline.deploys = True
            for step in job.steps:
                _step_gates(pipeline, wf, job, step)
        if wf.system == "gitlab":
            for name, line in wf.templates:
                key = re.sub(r"\.gitlab-ci\.yml$", "", name.rsplit("/", 1)[-1]).lower()
                category = GITLAB_TEMPLATES.get(key)
                if category:
                    pipeline.gates.append(Gate(category, f"GitLab {name}", wf.file, line, name, False,
                                               "GitLab's security analyzers report and exit 0; only a merge-"
                                               "request approval policy blocks"))


def _step_gates(pipeline: Pipeline, wf: Workflow, job: Job, step: Step) -> None:
    github = wf.system == "github"
    env = {**wf.env, **job.env, **step.env}
    wrapper = github_wrapper_reason(wf, job, step) if github else gitlab_wrapper_reason(job)
    uses = step.uses or ""
    action = uses.split("@", 1)[0].lower()
    if action.startswith("docker/build-push-action"):
        pipeline.builds_images = True
    for prefix, (tool, category) in ACTIONS.items():
        if action.startswith(prefix):
            tool, category = _action_category(action, tool, category, step)
            reason = wrapper or action_reason(tool, action, step, job)
            target = None
            if category == "dast":
                target = str(step.with_.get("target") or step.with_.get("urls") or "") or None
            pipeline.gates.append(Gate(category, tool, step.file, step.uses_line or step.line, job.id,
                                       reason is None, reason or "", target))
            break
    for cmd in step.commands:
        bare = unquoted(cmd.text)
        if BUILD_RE.search(bare):
            pipeline.builds_images = True
        if DEPLOY_RE.search(bare):
            pipeline.deploys = True
        if IAC_RUN_RE.search(bare):
            pipeline.runs_iac = True
        if re.match(r"(?:echo|printf)\b", bare.strip()):
            continue
        for ct in CMD_TOOLS:
            m = ct.pattern.search(bare)
            if not m:
                continue
            reason = wrapper or command_tool_reason(ct.tool, cmd.text, env) or \
                command_reason(cmd, cmd.text.find(m.group(0)) if m.group(0) in cmd.text else 0,
                               github and step.shell is None)
            at = cmd.text.find(m.group(0))
            target = _dast_target(cmd.text[at + len(m.group(0)):] if at >= 0 else cmd.text) \
                if ct.category == "dast" else None
            pipeline.gates.append(Gate(ct.category, ct.tool, step.file, cmd.line, job.id, reason is None,
                                       reason or "", target))
            break
    if not github and job.image and re.search(r"kaniko|docker:.*dind|buildah", job.image):
        pipeline.builds_images = True
