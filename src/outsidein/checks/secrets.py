"""Layer 5: secrets management — hardcoded secrets in code and history, .env files, pre-commit scanning,
live process environments, and (AWS) Secrets Manager rotation and credentials in EC2 user
data, Lambda and ECS task environments.

Severities, where the playbook leaves room (its legend: CRITICAL is immediate exploitation risk, HIGH is
significant exposure):

- **Secret in the working tree / HEAD** (``secrets-in-tree``): CRITICAL — anyone who can read the repository
  can use it now. A literal secret on a Dockerfile line (``ENV DB_PASSWORD=…``) is reported here too (rotate
  it); the build design (ENV/ARG instead of BuildKit secrets) is layer 11's ``dockerfile-secret-env``. Files
  that were not scanned (over 5 MB, unreadable) make the result NOT_ASSESSED, naming them, never PASS; known
  binary formats (PNG, JPEG, archives, executables … by their magic bytes) are not scanned and do not count,
  and a text file with stray NUL bytes is scanned with them removed.
- **Secret only in history** (``secrets-in-history``): HIGH — removed from HEAD but public forever in every
  clone; the fix is rotation (and optionally a history rewrite), not deletion. A value still present in the
  tree is reported once, by ``secrets-in-tree``.
- **.env file ever committed** (``secrets-env-file-committed``): HIGH, CRITICAL while still tracked.
  ``.env.example``/``.sample``/``.template``/``.dist`` are templates and do not count.
- **.gitignore without the playbook's non-negotiable patterns** (``secrets-gitignore``): MEDIUM; judged with
  ``git check-ignore --no-index`` on probe paths, so equivalent patterns and negations count.
- **No pre-commit secret scan** (``secrets-precommit-scan``): MEDIUM (pre-commit config, lefthook or husky
  naming gitleaks, trufflehog, detect-secrets, ggshield, kingfisher, talisman, git-secrets or secretlint).
- **Secret-named variables in a live process environment** (``secrets-process-environ``): HIGH — readable
  through ``/proc/<pid>/environ`` and inherited by every child; the playbook's runtime pattern is an SDK call.
  A clean result needs evidence that processes were read (``#read <n>``, n > 0); processes whose environment
  could not be read, an empty saved file, or /proc mounted ``hidepid`` for a collector that is not root make it
  NOT_ASSESSED, never PASS.
- AWS checks: see their docstrings below.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from outsidein.checks.aws_context import environment
from outsidein.checks.registry import HOST, REPOSITORY, region_check, target_check
from outsidein.host.facts import HostFacts
from outsidein.models import Result, Severity, fail, not_assessed, passed
from outsidein.secrets.facts import (
    ENVIRON_KEY,
    GITIGNORE,
    HISTORY,
    TREE,
    EnvironReading,
    EnvSecret,
    RepositoryFacts,
)

if TYPE_CHECKING:
    from outsidein.aws.inventory import AwsInventory, RegionInventory

SHOWN = 5
SKIPPED_SHOWN = 20


def _where(facts: RepositoryFacts, file: str, line: int | None = None, commit: str | None = None) -> str:
    """A file of the repository as ``<repository path>/<file>[:line][@commit]``, like every path:line resource."""
    where = f"{facts.path.rstrip('/')}/{file}" if facts.path else f"{facts.name}:{file}"
    return where + (f":{line}" if line else "") + (f"@{commit[:12]}" if commit else "")


@target_check(
    source=REPOSITORY, id="secrets-in-tree", layer=5, severity=Severity.CRITICAL, requires=(TREE,),
    title="Hardcoded secret in the working tree (HEAD)",
    remediation="Rotate the credential now, remove it from the code, and fetch it at run time from Secrets "
                "Manager through the instance or task role.",
    verify="gitleaks detect --no-git --source {resource} --redact  # expect: no leaks found",
)
def secrets_in_tree(facts: RepositoryFacts) -> Iterator[Result]:
    for hit in sorted(facts.tree, key=lambda h: (h.file, h.line)):
        yield fail("secrets-in-tree", _where(facts, hit.file, hit.line), f"{hit.rule} {hit.masked}",
                   environment=facts.environment,
                   verify=f"gitleaks detect --no-git --source {facts.path}/{hit.file} --redact  # expect no leaks")
    if facts.skipped:  # what was found FAILs above; the files not read are not assessed, never clean
        shown = "; ".join(f"{s.file} ({s.reason})" for s in facts.skipped[:SKIPPED_SHOWN])
        more = f"; and {len(facts.skipped) - SKIPPED_SHOWN} more" if len(facts.skipped) > SKIPPED_SHOWN else ""
        yield not_assessed("secrets-in-tree", facts.name,
                           f"{len(facts.skipped)} file(s) of the tree not scanned: {shown}{more}")
    elif not facts.tree:
        yield passed("secrets-in-tree", facts.name, environment=facts.environment)


@target_check(
    source=REPOSITORY, id="secrets-in-history", layer=5, severity=Severity.HIGH, requires=(TREE, HISTORY),
    title="Secret in git history (removed from HEAD, still public in every clone)",
    remediation="Rotate the credential: deleting it in a later commit does not revoke it. Optionally rewrite "
                "history (git filter-repo) and force-push, then have every clone re-cloned.",
    verify="gitleaks detect --source {resource} --log-opts=--all --redact  # after rotation: the old value fails "
           "to authenticate",
)
def secrets_in_history(facts: RepositoryFacts) -> Iterator[Result]:
    in_tree = {hit.fingerprint for hit in facts.tree}
    seen: set[str] = set()
    for hit in sorted(facts.history, key=lambda h: (h.file, h.line)):
        if hit.fingerprint in in_tree or hit.fingerprint in seen:
            continue
        seen.add(hit.fingerprint)
        yield fail("secrets-in-history", _where(facts, hit.file, hit.line, hit.commit),
                   f"{hit.rule} {hit.masked} added in commit {(hit.commit or '?')[:12]}; no longer in HEAD: rotate it",
                   environment=facts.environment,
                   verify=f"git -C {facts.path} log --all --oneline -S '{hit.masked[:4]}' -- '{hit.file}'  "
                          "# then prove the old credential is revoked")
    if not seen:
        yield passed("secrets-in-history", facts.name, environment=facts.environment)


@target_check(
    source=REPOSITORY, id="secrets-env-file-committed", layer=5, severity=Severity.HIGH, requires=(HISTORY,),
    title=".env file committed to git",
    remediation="Rotate every value the file held, `git rm --cached` it, add `.env` and `.env.*` to "
                ".gitignore; commit a `.env.example` with placeholders instead.",
    verify='git log --all --full-history -- "**/.env" "**/.env.*"  # expect no output',
)
def secrets_env_file_committed(facts: RepositoryFacts) -> Iterator[Result]:
    tracked = set(facts.tracked_env_files)
    paths = sorted(set(facts.env_files_history) | tracked)
    for path in paths:
        commit = facts.env_files_history.get(path)
        still = path in tracked
        detail = (f"still tracked in HEAD (added in {commit[:12]})" if still and commit else
                  "present in the working tree and not ignored" if still else
                  f"added in commit {(commit or '?')[:12]}, deleted since: its values are in history")
        yield fail("secrets-env-file-committed", _where(facts, path), detail, environment=facts.environment,
                   severity=Severity.CRITICAL if still else None)
    if not paths:
        yield passed("secrets-env-file-committed", facts.name, environment=facts.environment)


@target_check(
    source=REPOSITORY, id="secrets-gitignore", layer=5, severity=Severity.MEDIUM, requires=(GITIGNORE,),
    title=".gitignore lacks the non-negotiable secret patterns",
    remediation="Add to .gitignore: .env, .env.*, *.pem, *.key, *.p12, *.pfx, secrets.yaml, secrets.json "
                "(and `!.env.example` if a template is committed).",
    verify="git check-ignore --no-index -v .env .env.production server.pem server.key client.p12 client.pfx "
           "secrets.yaml secrets.json  # expect every path matched",
)
def secrets_gitignore(facts: RepositoryFacts) -> Iterator[Result]:
    uncovered = [pattern for pattern, covered in facts.gitignore.items() if not covered]
    if uncovered:
        where = "" if facts.gitignore_present else " (no .gitignore at the root)"
        yield fail("secrets-gitignore", _where(facts, ".gitignore"), f"not ignored: {', '.join(uncovered)}{where}",
                   environment=facts.environment)
    else:
        yield passed("secrets-gitignore", facts.name, environment=facts.environment)


@target_check(
    source=REPOSITORY, id="secrets-precommit-scan", layer=5, severity=Severity.MEDIUM, requires=(TREE,),
    title="No pre-commit secret scan configured",
    remediation="Add a gitleaks hook to .pre-commit-config.yaml (repo: https://github.com/gitleaks/gitleaks, "
                "id: gitleaks) and run the same scan in CI, blocking.",
    verify="pre-commit run gitleaks --all-files  # expect Passed",
)
def secrets_precommit_scan(facts: RepositoryFacts) -> Iterator[Result]:
    if facts.scanners:
        yield passed("secrets-precommit-scan", facts.name, environment=facts.environment)
        return
    read = f"{', '.join(facts.precommit_files)} name(s) no secret scanner" if facts.precommit_files else \
        "no .pre-commit-config.yaml, lefthook or husky hook"
    yield fail("secrets-precommit-scan", _where(facts, ".pre-commit-config.yaml"), read,
               environment=facts.environment)


@target_check(
    source=HOST, id="secrets-process-environ", layer=5, severity=Severity.HIGH, requires=(ENVIRON_KEY,),
    title="Secrets injected as environment variables of running processes",
    remediation="Fetch secrets at run time with the SDK through the instance or task role (GetSecretValue is "
                "logged in CloudTrail); remove them from unit files, compose files and launch scripts.",
    verify="cat /proc/<PID>/environ | tr '\\0' '\\n' | grep -iE 'password|secret|key|token'  # expect nothing",
)
def secrets_process_environ(facts: HostFacts) -> Iterator[Result]:
    grouped: dict[str, list[EnvSecret]] = {}
    reading = facts.process_environ or EnvironReading()
    for var in reading.secrets:
        grouped.setdefault(var.process or "?", []).append(var)
    for process, found in sorted(grouped.items()):
        names = sorted({v.name for v in found})
        pids = sorted({v.pid for v in found if v.pid is not None})
        shown = sorted({f"{v.name}={v.masked}" for v in found})
        # pids change on every restart: they go in the verify step, not the detail (part of the fingerprint)
        yield fail("secrets-process-environ", f"{facts.name}:{process}",
                   f"{len(names)} variable(s): {', '.join(shown)}"[:800],
                   environment=facts.environment,
                   verify=f"cat /proc/{pids[0] if pids else '<PID>'}/environ | tr '\\0' '\\n' | "
                          "grep -iE 'password|secret|key|token'  # expect nothing")
    if grouped:
        return
    if reading.unreadable:
        yield not_assessed("secrets-process-environ", facts.name,
                           f"{reading.unreadable} process environment(s) could not be read: run as root or allow sudo")
    elif reason := reading.not_read():
        yield not_assessed("secrets-process-environ", facts.name, reason)
    else:
        yield passed("secrets-process-environ", facts.name, environment=facts.environment)


# ------------------------------------------------------------------------------------------------ AWS
#
# - Secrets Manager rotation (HIGH, like the playbook's IAM key rotation): a secret without rotation, or not
#   rotated within its window, FAILs. The window follows the playbook's password table, decided from the
#   secret's name, description and tags: database, Redis, RabbitMQ and Grafana passwords (db, rds, postgres,
#   mysql, aurora, redis, elasticache, rabbit, amqp, mq, grafana, password) 90 days; JWT signing secrets are
#   rotated on compromise only (not judged); anything else is treated as an API key or token: 180 days.
#   A secret never rotated is aged from its creation.
# - Credentials in EC2 user data (CRITICAL): readable by anyone with ec2:DescribeInstanceAttribute and by every
#   process on the instance through the metadata service. User data that cannot be decoded (bad base64, a
#   truncated gzip) is NOT_ASSESSED with the decoding error, never PASS.
# - Secrets in Lambda or ECS task-definition environment variables (HIGH): readable by anyone with
#   lambda:GetFunctionConfiguration or ecs:DescribeTaskDefinition; use Secrets Manager references
#   (ECS ``secrets`` valueFrom, the Lambda extension or an SDK call) instead.


def _aws_env(tags: Any, inv: AwsInventory) -> str | None:
    pairs = {t.get("Key"): t.get("Value") for t in tags} if isinstance(tags, list) else dict(tags or {})
    return environment({str(k): str(v) for k, v in pairs.items()}, inv)


_DB_SECRET = re.compile(r"(?i)db|database|rds|postgres|mysql|maria|aurora|redis|elasticache|rabbit|amqp|\bmq\b|"
                        r"grafana|passw")
_JWT_SECRET = re.compile(r"(?i)jwt|signing")


def rotation_window(secret: dict[str, Any]) -> timedelta | None:
    """90 days (passwords), 180 days (API keys, tokens, anything else) or None (JWT signing: on compromise)."""
    tags = " ".join(f"{t.get('Key')}={t.get('Value')}" for t in secret.get("Tags") or [])
    text = f"{secret.get('Name', '')} {secret.get('Description', '')} {tags}"
    if _JWT_SECRET.search(text):
        return None
    return timedelta(days=90) if _DB_SECRET.search(text) else timedelta(days=180)


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value)) if not isinstance(value, int | float) else \
            datetime.fromtimestamp(value, UTC)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@region_check(
    id="secrets-manager-rotation", layer=5, severity=Severity.HIGH, requires=("secretsmanager.list_secrets",),
    title="Secrets Manager secret not rotated (90 days for passwords, 180 for API keys)",
    remediation="Enable rotation with a rotation Lambda (native for RDS) and a schedule within the window; "
                "commit the rotation function before the secret.",
    verify="aws secretsmanager describe-secret --secret-id {resource} --region {region} "
           "--query '[RotationEnabled,LastRotatedDate]'",
)
def secrets_manager_rotation(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    for secret in region.secrets_manager:
        name = str(secret.get("Name") or secret.get("ARN") or "?")
        env = _aws_env(secret.get("Tags"), inv)
        window = rotation_window(secret)
        if window is None:
            yield passed("secrets-manager-rotation", name, region=region.region, environment=env)
            continue
        last = _date(secret.get("LastRotatedDate")) or _date(secret.get("CreatedDate"))
        age = (inv.collected_at - last).days if last else None
        if not secret.get("RotationEnabled"):
            since = f", unchanged for {age} days" if age is not None else ""
            yield fail("secrets-manager-rotation", name, f"rotation not enabled (window {window.days} days{since})",
                       region=region.region, environment=env)
        elif age is not None and age > window.days:
            yield fail("secrets-manager-rotation", name,
                       f"last rotated more than {window.days} days ago (window {window.days} days)",
                       region=region.region, environment=env)
        else:
            yield passed("secrets-manager-rotation", name, region=region.region, environment=env)


@region_check(
    id="secrets-ec2-user-data", layer=5, severity=Severity.CRITICAL, requires=("ec2.describe_instances",),
    title="Credentials in EC2 user data",
    remediation="Remove the credential from the launch template or instance user data, rotate it, and fetch it "
                "at boot from Secrets Manager through the instance role.",
    verify="aws ec2 describe-instance-attribute --instance-id {resource} --attribute userData --region {region} "
           "--query UserData.Value --output text | base64 -d | grep -iE 'password|secret|key|token'",
)
def secrets_ec2_user_data(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    for instance_id, hits in sorted(region.user_data.items()):
        instance = region.instances[instance_id]
        env = environment(instance.tags, inv)
        undecoded = [str(h["error"]) for h in hits or [] if h.get("error")]
        hits = [h for h in hits if not h.get("error")] if hits is not None else None
        if hits is None:
            reason = region.unread("ec2.describe_instance_attribute", instance_id)
            yield not_assessed("secrets-ec2-user-data", instance_id, reason, region=region.region)
        elif undecoded and not hits:
            yield not_assessed("secrets-ec2-user-data", instance_id, "; ".join(undecoded), region=region.region)
        elif hits:
            shown = ", ".join(f"line {h['line']}: {h['rule']} {h['masked']}" for h in hits[:SHOWN])
            yield fail("secrets-ec2-user-data", instance_id, shown, region=region.region, environment=env)
        else:
            yield passed("secrets-ec2-user-data", instance_id, region=region.region, environment=env)


@region_check(
    id="secrets-lambda-environment", layer=5, severity=Severity.HIGH, requires=("lambda.list_functions",),
    title="Secrets in Lambda environment variables",
    remediation="Store the value in Secrets Manager and read it at run time (SDK call or the Parameters and "
                "Secrets Lambda extension) with the function's role; rotate the exposed value.",
    verify="aws lambda get-function-configuration --function-name {resource} --region {region} "
           "--query Environment.Variables",
)
def secrets_lambda_environment(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    for function in region.lambda_functions:
        name = str(function.get("FunctionName", "?"))
        hits = function.get("OutsideinSecrets") or []
        if hits:
            shown = ", ".join(f"{h['name']}={h['masked']}" for h in hits)
            yield fail("secrets-lambda-environment", name, shown, region=region.region)
        else:
            yield passed("secrets-lambda-environment", name, region=region.region)


@region_check(
    id="secrets-ecs-task-environment", layer=5, severity=Severity.HIGH, requires=("ecs.list_task_definitions",),
    title="Secrets in ECS task definition environment variables",
    remediation="Move the value to Secrets Manager and reference it from the container definition's `secrets` "
                "(valueFrom) instead of `environment`; register a new revision and rotate the value.",
    verify="aws ecs describe-task-definition --task-definition {resource} --region {region} "
           "--query 'taskDefinition.containerDefinitions[].environment'",
)
def secrets_ecs_task_environment(region: RegionInventory, inv: AwsInventory) -> Iterator[Result]:
    for arn, task in sorted(region.task_definitions.items()):
        if task is None:
            reason = region.unread("ecs.describe_task_definition", arn)
            yield not_assessed("secrets-ecs-task-environment", arn, reason, region=region.region)
            continue
        hits = task.get("OutsideinSecrets") or []
        if hits:
            shown = ", ".join(f"{h['container']}: {h['name']}={h['masked']}" for h in hits)
            yield fail("secrets-ecs-task-environment", arn, shown, region=region.region)
        else:
            yield passed("secrets-ecs-task-environment", arn, region=region.region)
