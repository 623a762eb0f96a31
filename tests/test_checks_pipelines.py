"""Layer 11 on real files: GitHub Actions workflows, GitLab CI files and Dockerfiles written into a repository,
collected with ``collect_pipelines`` (masked text), parsed from the evidence and evaluated by check id.

Each idiom that makes a gate non-blocking has its own case, and so do blocking look-alikes that must pass.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from outsidein.checks.registry import REGISTRY, all_checks
from outsidein.evidence import SourceEvidence
from outsidein.models import Result, Status
from outsidein.pipelines.collect import collect_pipelines
from outsidein.pipelines.facts import PipelineFacts, parse_pipelines
from outsidein.scope import PipelinesScope, RepositoryScope, Scope

all_checks()
SHA = "11bd71901bbe5b1630ceea73d27597364c9af683"
HARDENED_GH = f"""\
name: ci
on:
  pull_request:
  push:
    branches: [main]
permissions:
  contents: read
jobs:
  security:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@{SHA}
      - uses: gitleaks/gitleaks-action@{SHA}
        env:
          GITHUB_TOKEN: ${{{{ secrets.GITHUB_TOKEN }}}}
      - name: semgrep
        run: semgrep scan --config p/owasp-top-ten --error ./src
      - name: deps
        run: |
          echo "audit || true is not what we do"
          npm audit --audit-level=high
      - name: image
        run: |
          docker build -t app .
          trivy image --severity HIGH,CRITICAL --exit-code 1 app
      - name: iac
        run: checkov -d ./terraform --framework terraform
"""
DOCKERFILE_OK = f"""\
FROM python:3.12-slim@sha256:{'a' * 64} AS build
RUN pip install --prefix=/install app
FROM python:3.12-slim@sha256:{'b' * 64}
COPY --from=build /install /usr/local
RUN useradd -u 1001 app
USER 1001
"""


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def facts_of(root: Path, files: dict[str, str]) -> PipelineFacts:
    write(root, files)
    [evidence] = collect_pipelines(Scope(repositories=(RepositoryScope("repo", root, "prod"),)))
    # the offline path: through JSON like a saved snapshot
    return parse_pipelines(SourceEvidence.from_json(evidence.to_json(), "test"))


def run(check_id: str, facts: PipelineFacts) -> list[Result]:
    return list(REGISTRY[check_id].run(facts))


def fails(check_id: str, facts: PipelineFacts) -> list[Result]:
    return [r for r in run(check_id, facts) if r.status is Status.FAIL]


def hardened(tmp_path: Path, **extra: str) -> dict[str, str]:
    files = {".github/workflows/ci.yml": HARDENED_GH, "Dockerfile": DOCKERFILE_OK, "terraform/main.tf": "",
             **extra}
    return files


def test_hardened_repository_passes_every_check(tmp_path: Path) -> None:
    facts = facts_of(tmp_path, hardened(tmp_path))
    for check in all_checks():
        if check.meta.layer == 11:
            results = run(check.meta.id, facts)
            assert [r.status for r in results] == [Status.PASS], (check.meta.id, results)


def test_missing_gates(tmp_path: Path) -> None:
    wf = """\
    on: push
    permissions: {}
    jobs:
      test:
        runs-on: ubuntu-latest
        steps:
          - run: pytest
      deploy:
        environment: production
        runs-on: ubuntu-latest
        steps:
          - run: terraform apply -auto-approve
    """
    facts = facts_of(tmp_path, {".github/workflows/ci.yml": wf, "Dockerfile": DOCKERFILE_OK})
    details = {r.detail.split(" gate")[0]: r.severity for r in fails("cicd-gate-missing", facts)}
    assert set(details) == {"no secret scan", "no SAST", "no SCA (dependency scan)", "no container image scan",
                            "no IaC scan", "no DAST"}
    assert details["no DAST"] is not None and details["no DAST"].value == "MEDIUM"


def test_no_pipeline_at_all(tmp_path: Path) -> None:
    facts = facts_of(tmp_path, {"README.md": "hi"})
    [result] = fails("cicd-gate-missing", facts)
    assert "no CI pipeline" in result.detail


GH_STEP = """\
on: [push, pull_request]
permissions: read-all
jobs:
  scan:
    runs-on: ubuntu-latest
    {job_extra}
    steps:
      - name: scan
        {step_extra}
        run: |
          {cmd}
"""

NON_BLOCKING_GH = {
    "step continue-on-error": ("", "continue-on-error: true", "trivy fs --exit-code 1 ."),
    "job continue-on-error": ("continue-on-error: true", "", "trivy fs --exit-code 1 ."),
    "continue-on-error expression": ("continue-on-error: ${{ matrix.experimental }}", "", "trivy fs --exit-code 1 ."),
    "or true": ("", "", "npm audit --audit-level=high || true"),
    "or exit 0": ("", "", "pip-audit -r requirements.txt || exit 0"),
    "or colon": ("", "", "osv-scanner -r . || :"),
    "semicolon true": ("", "", "npm audit; true"),
    "set +e": ("", "", "set +e\n          osv-scanner -r ."),
    "pipe without pipefail": ("", "", "semgrep scan --config auto --error . | tee semgrep.txt"),
    "trivy without exit-code": ("", "", "trivy fs --severity HIGH,CRITICAL ."),
    "trivy exit-code 0": ("", "", "trivy fs --exit-code 0 ."),
    "grype without fail-on": ("", "", "grype dir:."),
    "semgrep without error": ("", "", "semgrep scan --config auto ."),
    "bandit exit-zero": ("", "", "bandit -r src --exit-zero"),
    "gitleaks exit-code 0": ("", "", "gitleaks detect --source . --exit-code 0"),
    "trufflehog without fail": ("", "", "trufflehog git file://. --only-verified"),
    "detect-secrets scan": ("", "", "detect-secrets scan > .secrets.baseline"),
    "checkov soft-fail": ("", "", "checkov -d terraform --soft-fail"),
    "tfsec soft-fail": ("", "", "tfsec terraform --soft-fail"),
    "kics ignore-on-exit": ("", "", "kics scan -p terraform --ignore-on-exit results"),
    "snyk monitor": ("", "", "snyk monitor"),
    "sonar without quality gate": ("", "", "sonar-scanner -Dsonar.projectKey=app"),
    "job if false": ("if: false", "", "gitleaks detect --source ."),
    "step if false": ("", "if: ${{ false }}", "gitleaks detect --source ."),
    "job only on schedule": ("if: github.event_name == 'schedule'", "", "gitleaks detect --source ."),
}


@pytest.mark.parametrize("case", sorted(NON_BLOCKING_GH))
def test_non_blocking_github_idioms(tmp_path: Path, case: str) -> None:
    job_extra, step_extra, cmd = NON_BLOCKING_GH[case]
    wf = GH_STEP.format(job_extra=job_extra, step_extra=step_extra, cmd=cmd)
    facts = facts_of(tmp_path, {".github/workflows/scan.yml": wf})
    found = fails("cicd-gate-non-blocking", facts)
    assert len(found) == 1, (case, found, facts.pipelines[0].gates)
    assert found[0].resource.startswith(str(tmp_path / ".github/workflows/scan.yml:"))


BLOCKING_GH = {
    "trivy exit-code 1": ("", "", "trivy fs --exit-code 1 ."),
    "trivy image exit-code 1": ("", "", "trivy image --exit-code 1 --severity CRITICAL app:1"),
    "continue-on-error false": ("continue-on-error: false", "continue-on-error: false", "npm audit"),
    "or true in an unrelated echo": ("", "", 'echo "scan || true"\n          npm audit --audit-level=high'),
    "or true after another command": ("", "", "npm audit\n          rm -f cache || true"),
    "set +e with saved status": ("", "", "set +e\n          osv-scanner -r .\n          rc=$?\n          exit $rc"),
    "pipe with pipefail": ("", "", "set -o pipefail\n          semgrep ci | tee out.txt"),
    "semgrep ci": ("", "", "semgrep ci"),
    "grype fail-on": ("", "", "grype dir:. --fail-on high"),
    "sonar waits for the gate": ("", "", "sonar-scanner -Dsonar.qualitygate.wait=true"),
    "trufflehog fail": ("", "", "trufflehog git file://. --fail"),
    "and echo": ("", "", "npm audit && echo ok"),
}


@pytest.mark.parametrize("case", sorted(BLOCKING_GH))
def test_blocking_look_alikes(tmp_path: Path, case: str) -> None:
    job_extra, step_extra, cmd = BLOCKING_GH[case]
    wf = GH_STEP.format(job_extra=job_extra, step_extra=step_extra, cmd=cmd)
    facts = facts_of(tmp_path, {".github/workflows/scan.yml": wf})
    assert facts.pipelines[0].gates, case
    assert fails("cicd-gate-non-blocking", facts) == [], (case, facts.pipelines[0].gates)


ACTION_STEP = """\
on: pull_request
permissions: read-all
jobs:
  scan:
    runs-on: ubuntu-latest
    steps:
      - uses: {action}@""" + SHA + """
        with:
          {inputs}
"""


@pytest.mark.parametrize(("action", "inputs", "blocking"), [
    ("aquasecurity/trivy-action", "image-ref: app:1", False),
    ("aquasecurity/trivy-action", "image-ref: app:1\n          exit-code: 1", True),
    ("aquasecurity/trivy-action", "scan-type: fs\n          exit-code: '1'", True),
    ("bridgecrewio/checkov-action", "soft_fail: true", False),
    ("bridgecrewio/checkov-action", "directory: terraform", True),
    ("anchore/scan-action", "image: app:1\n          fail-build: false", False),
    ("anchore/scan-action", "image: app:1", True),
    ("zaproxy/action-baseline", "target: https://staging.example.com", False),
    ("zaproxy/action-baseline", "target: https://staging.example.com\n          fail_action: true", True),
    ("actions/dependency-review-action", "warn-only: true", False),
    ("checkmarx/kics-github-action", "ignore_on_exit: results", False),
])
def test_action_inputs(tmp_path: Path, action: str, inputs: str, blocking: bool) -> None:
    facts = facts_of(tmp_path, {".github/workflows/scan.yml": ACTION_STEP.format(action=action, inputs=inputs)})
    [gate] = facts.pipelines[0].gates
    assert gate.blocking is blocking, gate
    assert bool(fails("cicd-gate-non-blocking", facts)) is not blocking


GITLAB = """\
stages: [test]
{job}:
  stage: test
  image: aquasec/trivy:0.50.1
  {extra}
  script:
    - {cmd}
"""


@pytest.mark.parametrize(("extra", "cmd", "blocking"), [
    ("allow_failure: true", "trivy fs --exit-code 1 .", False),
    ("allow_failure:\n    exit_codes: [1]", "trivy fs --exit-code 1 .", False),
    ("when: manual", "trivy fs --exit-code 1 .", False),
    ("when: manual\n  allow_failure: false", "trivy fs --exit-code 1 .", True),
    ("rules:\n    - if: $CI_PIPELINE_SOURCE == \"schedule\"", "trivy fs --exit-code 1 .", False),
    ("only: [schedules]", "trivy fs --exit-code 1 .", False),
    ("allow_failure: false", "trivy fs --exit-code 1 .", True),
    ("", "trivy fs --exit-code 1 . | tee out.txt", True),  # the runner's bash has pipefail
    ("", "checkov -d . --soft-fail", False),
    ("", "npm audit || true", False),
])
def test_gitlab_idioms(tmp_path: Path, extra: str, cmd: str, blocking: bool) -> None:
    facts = facts_of(tmp_path, {".gitlab-ci.yml": GITLAB.format(job="scan", extra=extra, cmd=cmd)})
    [gate] = facts.pipelines[0].gates
    assert gate.blocking is blocking, gate
    found = fails("cicd-gate-non-blocking", facts)
    assert bool(found) is not blocking
    if found:
        assert found[0].resource.endswith(f".gitlab-ci.yml:{7 + extra.count(chr(10))}")


def test_gitlab_local_include_extends_and_templates(tmp_path: Path) -> None:
    main = """\
    include:
      - local: ci/security.yml
      - template: Security/SAST.gitlab-ci.yml
    stages: [test]
    """
    security = """\
    .scan:
      allow_failure: true
    gitleaks:
      extends: .scan
      script:
        - gitleaks detect --source .
    """
    facts = facts_of(tmp_path, {".gitlab-ci.yml": main, "ci/security.yml": security})
    gates = {g.tool: g for g in facts.pipelines[0].gates}
    assert gates["gitleaks"].blocking is False and gates["gitleaks"].file.endswith("ci/security.yml")
    assert gates["gitleaks"].line == 6
    assert gates["GitLab Security/SAST.gitlab-ci.yml"].blocking is False
    resources = {r.resource for r in fails("cicd-gate-non-blocking", facts)}
    assert f"{tmp_path}/ci/security.yml:6" in resources and f"{tmp_path}/.gitlab-ci.yml:3" in resources


def test_unpinned_actions(tmp_path: Path) -> None:
    wf = f"""\
    on: push
    permissions: read-all
    jobs:
      build:
        runs-on: ubuntu-latest
        steps:
          - uses: actions/checkout@v4
          - uses: aquasecurity/trivy-action@master
          - uses: ./.github/actions/local
          - uses: actions/setup-node@{SHA}
          - uses: docker://alpine@sha256:{'c' * 64}
          - uses: docker://alpine:3.19
      reuse:
        uses: org/workflows/.github/workflows/deploy.yml@main
    """
    facts = facts_of(tmp_path, {".github/workflows/b.yml": wf})
    found = {r.resource.rsplit(":", 1)[1]: r.severity.value if r.severity else "HIGH"
             for r in fails("cicd-action-unpinned", facts)}
    assert found == {"7": "MEDIUM", "8": "HIGH", "12": "MEDIUM", "14": "HIGH"}


PRT = """\
on: pull_request_target
permissions: read-all
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@""" + SHA + """
        with:
          ref: {ref}
      - run: make test
"""


def test_pull_request_target_checkout(tmp_path: Path) -> None:
    head = "${{ github.event.pull_request.head.sha }}"
    bad = facts_of(tmp_path / "a", {".github/workflows/p.yml": PRT.format(ref=head)})
    [found] = fails("cicd-pr-target-checkout", bad)
    assert found.resource.endswith("p.yml:7")
    good = facts_of(tmp_path / "b", {".github/workflows/p.yml": PRT.format(ref="${{ github.sha }}")})
    assert fails("cicd-pr-target-checkout", good) == []


def test_script_injection(tmp_path: Path) -> None:
    wf = """\
    on: issues
    permissions: read-all
    jobs:
      triage:
        runs-on: ubuntu-latest
        steps:
          - run: |
              echo "triaging"
              echo "${{ github.event.issue.title }}"
          - env:
              TITLE: ${{ github.event.issue.title }}
            run: echo "$TITLE ${{ github.sha }}"
    """
    facts = facts_of(tmp_path, {".github/workflows/t.yml": wf})
    [found] = fails("cicd-script-injection", facts)
    assert found.resource.endswith("t.yml:9") and found.severity is not None and found.severity.value == "CRITICAL"


def test_token_permissions(tmp_path: Path) -> None:
    wf = """\
    on: push
    {perms}
    jobs:
      release:
        runs-on: ubuntu-latest
        steps:
          - run: ./release.sh
            env:
              TOKEN: ${{{{ secrets.NPM_TOKEN }}}}
    """
    none = facts_of(tmp_path / "a", {".github/workflows/r.yml": wf.format(perms="")})
    [found] = fails("cicd-token-permissions", none)
    assert "declares no permissions" in found.detail
    allw = facts_of(tmp_path / "b", {".github/workflows/r.yml": wf.format(perms="permissions: write-all")})
    [found] = fails("cicd-token-permissions", allw)
    assert found.severity is not None and found.severity.value == "HIGH" and found.resource.endswith("r.yml:2")
    ok = facts_of(tmp_path / "c", {".github/workflows/r.yml": wf.format(perms="permissions:\n  contents: read")})
    assert fails("cicd-token-permissions", ok) == []


@pytest.mark.parametrize(("target", "bad"), [
    ("https://www.shop.com", True), ("https://staging.shop.com", False), ("http://localhost:8080", False),
    ("$TARGET_URL", False),
])
def test_dast_production(tmp_path: Path, target: str, bad: bool) -> None:
    cmd = f"docker run -t ghcr.io/zaproxy/zaproxy:stable zap-full-scan.py -t {target} -r report.html"
    facts = facts_of(tmp_path, {".github/workflows/d.yml": GH_STEP.format(job_extra="", step_extra="", cmd=cmd)})
    assert bool(fails("cicd-dast-production", facts)) is bad


def test_dockerfile_checks(tmp_path: Path) -> None:
    bad = """\
    FROM node AS build
    ARG NPM_TOKEN
    RUN npm ci
    FROM nginx:latest
    ENV API_KEY=sk_live_abcdefghijklmnop1234 LOG_LEVEL=info
    ADD https://example.com/tool.tar.gz /opt/
    COPY --from=build /app /usr/share/nginx/html
    """
    facts = facts_of(tmp_path, {"Dockerfile": bad})
    path = f"{tmp_path}/Dockerfile"
    assert [r.resource for r in fails("dockerfile-root-user", facts)] == [f"{path}:4"]
    secrets = fails("dockerfile-secret-env", facts)
    assert {r.resource for r in secrets} == {f"{path}:2", f"{path}:5"}
    literal = next(r for r in secrets if r.resource.endswith(":5"))
    assert "sk_live_abcdefghijklmnop1234" not in literal.detail and "sha256:" in literal.detail
    assert {r.resource for r in fails("dockerfile-base-unpinned", facts)} == {f"{path}:1", f"{path}:4"}
    assert [r.resource for r in fails("dockerfile-add-url", facts)] == [f"{path}:6"]


def test_dockerfile_user_root_and_inherited_stage(tmp_path: Path) -> None:
    root = facts_of(tmp_path / "a", {"Dockerfile": "FROM alpine:3.19\nUSER 1001\nRUN x\nUSER root\n"})
    assert [r.resource.rsplit(":", 1)[1] for r in fails("dockerfile-root-user", root)] == ["4"]
    inherited = facts_of(tmp_path / "b", {"Dockerfile": "FROM alpine:3.19 AS base\nUSER 1001\nFROM base\nRUN x\n"})
    assert fails("dockerfile-root-user", inherited) == []


def test_pipelines_scope_and_unreadable(tmp_path: Path) -> None:
    write(tmp_path, {"ci/.gitlab-ci.yml": GITLAB.format(job="scan", extra="", cmd="trivy fs --exit-code 1 .")})
    scope = Scope(pipelines=(PipelinesScope("ci", (tmp_path / "ci", tmp_path / "missing.yml"), "staging"),))
    [evidence] = collect_pipelines(scope)
    facts = parse_pipelines(evidence)
    assert facts.unreadable == {f"{tmp_path}/missing.yml": "no such file"}
    assert facts.pipelines[0].gates[0].blocking


def test_broken_yaml_is_not_assessed(tmp_path: Path) -> None:
    facts = facts_of(tmp_path, {".github/workflows/x.yml": "on: push\njobs: [\n"})
    results = run("cicd-gate-missing", facts)
    assert any(r.status is Status.NOT_ASSESSED for r in results)
    assert not any(r.status is Status.PASS for r in results)


INJECTABLE = """\
on: pull_request_target
permissions:
  contents: read
jobs:
  greet:
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ github.event.pull_request.title }}"
"""


def _with_record(facts_root: Path, path: str, record: dict[str, str]) -> PipelineFacts:
    [evidence] = collect_pipelines(Scope(repositories=(RepositoryScope("repo", facts_root, "prod"),)))
    raw = evidence.to_json()
    raw["data"]["data"]["files"][path] = record
    return parse_pipelines(SourceEvidence.from_json(raw, "test"))


def test_unreadable_or_broken_workflow_is_never_pass(tmp_path: Path) -> None:
    files = hardened(tmp_path, **{".github/workflows/t.yml": INJECTABLE})
    facts = facts_of(tmp_path, files)
    assert fails("cicd-script-injection", facts)
    t_yml = str(tmp_path / ".github/workflows/t.yml")
    unreadable = _with_record(tmp_path, t_yml, {"kind": "github", "error": "permission denied"})
    broken_dir = tmp_path / "broken"
    broken = facts_of(broken_dir, hardened(broken_dir, **{".github/workflows/t.yml": "on: push\njobs: [\n"}))
    for variant, name in ((unreadable, "t.yml"), (broken, "t.yml")):
        for check in all_checks():
            if check.meta.layer != 11 or check.meta.id.startswith("dockerfile-"):
                continue
            results = run(check.meta.id, variant)
            assert not any(r.status is Status.PASS for r in results), (check.meta.id, results)
            gaps = [r for r in results if r.status is Status.NOT_ASSESSED]
            assert gaps and all(name in r.resource and name in (r.reason or "") for r in gaps), check.meta.id
        assert run("dockerfile-root-user", variant)[0].status is Status.PASS  # reads no workflow
    assert "permission denied" in (run("cicd-script-injection", unreadable)[0].reason or "")
    # a problem proven by the files that were read still fails beside the gap
    also_bad = _with_record(tmp_path, str(tmp_path / ".github/workflows/zz.yml"),
                            {"kind": "github", "error": "permission denied"})
    statuses = {r.status for r in run("cicd-script-injection", also_bad)}
    assert statuses == {Status.FAIL, Status.NOT_ASSESSED}


def test_yaml_error_names_path_line_and_column(tmp_path: Path) -> None:
    facts = facts_of(tmp_path, {".github/workflows/x.yml": "on: push\njobs:\n  a:\n    b: c\n   \tc: @d\n"})
    [result] = [r for r in run("cicd-action-unpinned", facts) if r.status is Status.NOT_ASSESSED]
    assert result.reason is not None and f"{tmp_path}/.github/workflows/x.yml:5:4: YAML syntax error" in \
        result.reason, result.reason
    gl = facts_of(tmp_path / "g", {".gitlab-ci.yml": "stages: [a\nscan:\n  script: x\n"})
    [wf] = gl.workflows
    assert wf.error is not None and wf.error.startswith(f"{tmp_path}/g/.gitlab-ci.yml:2:") and "YAML" in wf.error


def test_collector_cap_is_recorded_and_never_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import outsidein.pipelines.collect as collect_module

    monkeypatch.setattr(collect_module, "MAX_FILES", 1)  # the walk's cap is MAX_FILES * 10 files
    files = hardened(tmp_path, **{f"docs/{i:02}.md": "" for i in range(12)})
    facts = facts_of(tmp_path, files)
    assert facts.truncated and "cap" in facts.truncated
    for check in all_checks():
        if check.meta.layer == 11:
            results = run(check.meta.id, facts)
            assert not any(r.status is Status.PASS for r in results), (check.meta.id, results)
            assert any(r.status is Status.NOT_ASSESSED and "cap" in (r.reason or "") for r in results)
