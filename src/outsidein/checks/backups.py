"""Layer 9: database backups. "A backup that has never been restored is not a backup."

The account checks read ``BackupTarget`` (``outsidein.backups.facts``): the backup buckets of the ``[backups]``
section (named, or found by name or tag), the RDS instances, and the restore-drill log. The host checks read the
schedules and scripts of hosts in scope with ``backups = true`` (``outsidein.backups.host``).

Severities: the playbook's control summary where it has a row, else decided here:

- Backup encryption, AES-256 before upload (CRITICAL, playbook): ``backup-script-encryption`` — a dump never
  encrypted, or encrypted weaker than AES-256 with PBKDF2 (``openssl enc`` without ``-pbkdf2``/``-iter``, another
  cipher, ``-nosalt``, fewer than 10,000 iterations, a passphrase on the command line; ``gpg --symmetric`` without
  ``--cipher-algo AES256``).
- S3 public access block, all 4 (CRITICAL, playbook). A public bucket policy or ACL on a backup bucket is the
  playbook's "plaintext copy of your entire production database, sitting on the internet": CRITICAL too.
- S3 SSE-KMS with a customer-managed key (HIGH, playbook). SSE-S3 or the AWS-managed ``aws/s3`` key fail.
- Backup frequency, daily full (HIGH, playbook): no backup schedule on a backup host, a backup timer that never
  ran or last ran more than 26 hours ago, and a newest backup object older than ``max_age_hours`` (26).
- Restore test, monthly drill (HIGH, playbook): no successful ``outsidein drill restore`` in the drill log within
  ``drill_max_age_days`` (30).
- Backup retention, 30 days hot and 1 year archive (MEDIUM, playbook): the lifecycle (Glacier transition, expiry
  no earlier than ``archive_days``), and RDS automated-backup retention under ``retention_days`` (30). RDS with
  automated backups off (retention 0) is no backup at all: HIGH.
- Decided here: the plaintext dump on disk before encryption, the playbook's "what's not on the checklist"
  (HIGH: a snapshot of that disk undoes every other control); versioning (HIGH: one delete or a ransomware
  overwrite destroys the backups); Object Lock, access logging and a published ``.sha256`` checksum (MEDIUM).
- Cron keeps no run record: whether a cron schedule ran is NOT_ASSESSED on the host, and is shown by the newest
  object's age in the bucket.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from outsidein.aws.policy import PolicyParseError, public_grants
from outsidein.backups.facts import AWS_KEY, BUCKETS_KEY, DRILLS_KEY, BackupBucket, BackupTarget
from outsidein.backups.host import DAILY_HOURS, DUMP_TOOLS
from outsidein.checks.registry import BACKUPS, HOST, target_check
from outsidein.evidence import GLOBAL
from outsidein.host.facts import HostFacts
from outsidein.models import Result, Severity, fail, not_assessed, passed

PAB_KEYS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
PUBLIC_GRANTEES = ("http://acs.amazonaws.com/groups/global/AllUsers",
                   "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
PUBLIC_ACTIONS = ("s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:DeleteObject")
GLACIER = ("GLACIER", "DEEP_ARCHIVE", "GLACIER_IR")
HOT_DAYS = 30


def _buckets(check_id: str, target: BackupTarget) -> Iterator[tuple[BackupBucket, Result | None]]:
    """Each backup bucket, or the NOT_ASSESSED result a bucket named in scope but absent gets."""
    for bucket in target.buckets:
        if not bucket.exists:
            yield bucket, not_assessed(check_id, bucket.name, "named in [backups] buckets but not in the account's "
                                       "bucket list (see backup-object-age)", region=GLOBAL)
        else:
            yield bucket, None


def _ok(check_id: str, bucket: BackupBucket, target: BackupTarget) -> Result:
    return passed(check_id, bucket.name, region=GLOBAL, environment=target.environment)


def _fail(check_id: str, bucket: BackupBucket, target: BackupTarget, detail: str,
          severity: Severity | None = None) -> Result:
    return fail(check_id, bucket.name, detail, region=GLOBAL, environment=target.environment, severity=severity)


def _each_bucket(check_id: str, target: BackupTarget, call: str,
                 problem: Callable[[dict[str, Any]], str | None]) -> Iterator[Result]:
    """One verdict per backup bucket from one read: FAIL with ``problem(data)``'s text, PASS when it has none,
    NOT_ASSESSED when the read (or the bucket) is missing."""
    for bucket, absent in _buckets(check_id, target):
        if absent:
            yield absent
            continue
        data, error = bucket.data(call)
        if error:
            yield not_assessed(check_id, bucket.name, error, region=GLOBAL)
        elif detail := problem(data or {}):
            yield _fail(check_id, bucket, target, detail)
        else:
            yield _ok(check_id, bucket, target)


# ------------------------------------------------------------------------------------------------ buckets


@target_check(
    source=BACKUPS, id="backup-bucket-public-access-block", layer=9, severity=Severity.CRITICAL,
    title="Backup bucket does not have all four S3 Block Public Access settings on",
    remediation="aws s3api put-public-access-block --bucket <bucket> --public-access-block-configuration "
                "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
    verify="aws s3api get-public-access-block --bucket {resource}  # expect all four true",
    requires=(BUCKETS_KEY,),
)
def bucket_public_access_block(target: BackupTarget) -> Iterator[Result]:
    check_id = "backup-bucket-public-access-block"
    account = target.account_pab or {}
    for bucket, absent in _buckets(check_id, target):
        if absent:
            yield absent
            continue
        base = bucket.base
        if base is None or base.pab_error:
            yield not_assessed(check_id, bucket.name, (base.pab_error if base else None)
                               or "s3.get_public_access_block not collected", region=GLOBAL)
            continue
        pab = base.public_access_block or {}
        off = [k for k in PAB_KEYS if not (pab.get(k) or account.get(k))]
        if off:
            yield _fail(check_id, bucket, target, "off: " + ", ".join(off))
        else:
            yield _ok(check_id, bucket, target)


@target_check(
    source=BACKUPS, id="backup-bucket-public-policy", layer=9, severity=Severity.CRITICAL,
    title="Backup bucket policy or ACL grants public access",
    remediation="Remove the public statement (Principal \"*\" without a restricting condition) and any "
                "AllUsers/AuthenticatedUsers ACL grant; allow only the backup writer and the restore role.",
    verify="aws s3api get-bucket-policy-status --bucket {resource} --query PolicyStatus.IsPublic  # expect false",
    requires=(BUCKETS_KEY,),
)
def bucket_public_policy(target: BackupTarget) -> Iterator[Result]:
    check_id = "backup-bucket-public-policy"
    account = target.account_pab or {}
    for bucket, absent in _buckets(check_id, target):
        if absent:
            yield absent
            continue
        base = bucket.base
        if base is None or base.policy_error or base.acl_error:
            reason = (base.policy_error or base.acl_error) if base else "s3.get_bucket_policy not collected"
            yield not_assessed(check_id, bucket.name, reason or "unreadable", region=GLOBAL)
            continue
        pab = base.public_access_block or {}
        problems: list[str] = []
        try:
            grants = [g for action in PUBLIC_ACTIONS for g in public_grants(base.policy, action)]
        except PolicyParseError as exc:
            yield not_assessed(check_id, bucket.name, f"unreadable bucket policy: {exc}", region=GLOBAL)
            continue
        if grants and not (pab.get("RestrictPublicBuckets") or account.get("RestrictPublicBuckets")):
            problems += sorted({g.detail for g in grants})
        if not (pab.get("IgnorePublicAcls") or account.get("IgnorePublicAcls")):
            problems += sorted({f"ACL grants {permission} to {grantee.rsplit('/', 1)[-1]}"
                                for grantee, permission in base.acl_grants if grantee in PUBLIC_GRANTEES})
        yield _fail(check_id, bucket, target, "; ".join(problems)) if problems else _ok(check_id, bucket, target)


@target_check(
    source=BACKUPS, id="backup-bucket-sse-kms", layer=9, severity=Severity.HIGH,
    title="Backup bucket default encryption is not SSE-KMS with a customer-managed key",
    remediation="aws s3api put-bucket-encryption --bucket <bucket> --server-side-encryption-configuration "
                "'{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":{\"SSEAlgorithm\":\"aws:kms\","
                "\"KMSMasterKeyID\":\"alias/backup-key\"},\"BucketKeyEnabled\":true}]}' (a key you manage, not aws/s3)",
    verify="aws s3api get-bucket-encryption --bucket {resource}  # expect aws:kms and a customer-managed key",
    requires=(BUCKETS_KEY,),
)
def bucket_sse_kms(target: BackupTarget) -> Iterator[Result]:
    check_id = "backup-bucket-sse-kms"
    for bucket, absent in _buckets(check_id, target):
        if absent:
            yield absent
            continue
        data, error = bucket.data("s3.get_bucket_encryption")
        if error:
            yield not_assessed(check_id, bucket.name, error, region=GLOBAL)
            continue
        rules = ((data or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules", [])
        defaults = [r.get("ApplyServerSideEncryptionByDefault") or {} for r in rules]
        kms = [d for d in defaults if str(d.get("SSEAlgorithm", "")).startswith("aws:kms")]
        if not kms:
            algos = ", ".join(sorted({str(d.get("SSEAlgorithm")) for d in defaults})) or "none"
            yield _fail(check_id, bucket, target, f"default encryption {algos}, not SSE-KMS")
            continue
        key_id = str(kms[0].get("KMSMasterKeyID") or "")
        if not key_id or key_id.endswith("alias/aws/s3"):
            yield _fail(check_id, bucket, target, "SSE-KMS with the AWS-managed key aws/s3, not a customer-managed key")
            continue
        record = bucket.kms.get(key_id)
        if record is None or not record.ok:
            yield not_assessed(check_id, bucket.name, (record.error if record else None)
                               or f"kms.describe_key not collected for {key_id}", region=GLOBAL)
            continue
        meta = (record.data or {}).get("KeyMetadata") or {}
        if meta.get("KeyManager") != "CUSTOMER":
            yield _fail(check_id, bucket, target, f"SSE-KMS key {key_id} is {meta.get('KeyManager', 'not')} managed, "
                        "not customer-managed")
        elif meta.get("KeyState", "Enabled") != "Enabled":
            yield _fail(check_id, bucket, target, f"SSE-KMS key {key_id} is {meta.get('KeyState')}")
        else:
            yield _ok(check_id, bucket, target)


@target_check(
    source=BACKUPS, id="backup-bucket-versioning", layer=9, severity=Severity.HIGH,
    title="Backup bucket versioning is off (one delete or overwrite destroys a backup)",
    remediation="aws s3api put-bucket-versioning --bucket <bucket> --versioning-configuration Status=Enabled",
    verify="aws s3api get-bucket-versioning --bucket {resource}  # expect \"Status\": \"Enabled\"",
    requires=(BUCKETS_KEY,),
)
def bucket_versioning(target: BackupTarget) -> Iterator[Result]:
    def problem(data: dict[str, Any]) -> str | None:
        status = data.get("Status")
        return None if status == "Enabled" else f"versioning {status or 'never enabled'}"

    yield from _each_bucket("backup-bucket-versioning", target, "s3.get_bucket_versioning", problem)


@target_check(
    source=BACKUPS, id="backup-bucket-object-lock", layer=9, severity=Severity.MEDIUM,
    title="Backup bucket has no Object Lock (WORM) retention",
    remediation="Create the backup bucket with --object-lock-enabled-for-bucket and set a default retention "
                "(COMPLIANCE or GOVERNANCE, at least the hot retention): aws s3api put-object-lock-configuration",
    verify="aws s3api get-object-lock-configuration --bucket {resource}  # expect Enabled with a DefaultRetention",
    requires=(BUCKETS_KEY,),
)
def bucket_object_lock(target: BackupTarget) -> Iterator[Result]:
    def problem(data: dict[str, Any]) -> str | None:
        config = data.get("ObjectLockConfiguration") or {}
        if config.get("ObjectLockEnabled") != "Enabled":
            return "Object Lock not enabled"
        if not (config.get("Rule") or {}).get("DefaultRetention"):
            return "Object Lock enabled without a default retention"
        return None

    yield from _each_bucket("backup-bucket-object-lock", target, "s3.get_object_lock_configuration", problem)


def _rule_covers(rule: dict[str, object], prefixes: tuple[str, ...]) -> bool:
    flt = rule.get("Filter") if isinstance(rule.get("Filter"), dict) else {}
    assert isinstance(flt, dict)
    prefix = str(flt.get("Prefix") or (flt.get("And") or {}).get("Prefix") or rule.get("Prefix") or "")
    return not prefix or not prefixes or all(p.startswith(prefix) for p in prefixes)


@target_check(
    source=BACKUPS, id="backup-bucket-lifecycle", layer=9, severity=Severity.MEDIUM,
    title="Backup bucket lifecycle does not keep 30 days hot then archive to Glacier for a year",
    remediation="aws s3api put-bucket-lifecycle-configuration --bucket <bucket> with an enabled rule on the backup "
                "prefix: Transitions [{Days: 30, StorageClass: GLACIER}], Expiration {Days: 365}",
    verify="aws s3api get-bucket-lifecycle-configuration --bucket {resource}  # expect GLACIER at 30 days, "
           "expiry at 365",
    requires=(BUCKETS_KEY,),
)
def bucket_lifecycle(target: BackupTarget) -> Iterator[Result]:
    archive_days = int(target.plan.get("archive_days") or 365)

    def problem(data: dict[str, Any]) -> str | None:
        rules = [r for r in data.get("Rules", []) if r.get("Status") == "Enabled" and _rule_covers(r, target.prefixes)]
        transitions = [t for r in rules for t in r.get("Transitions", []) if t.get("StorageClass") in GLACIER]
        expiries = [int(r["Expiration"]["Days"]) for r in rules if (r.get("Expiration") or {}).get("Days")]
        problems = []
        if not rules:
            problems.append("no enabled lifecycle rule covers the backups")
        elif not transitions:
            problems.append("no transition to Glacier")
        elif min(int(t.get("Days", 0)) for t in transitions) < HOT_DAYS:
            problems.append(f"archived after {min(int(t.get('Days', 0)) for t in transitions)} days: fewer than "
                            f"{HOT_DAYS} days hot")
        if rules and not expiries:
            problems.append(f"no expiry (playbook: expire at {archive_days} days)")
        elif expiries and min(expiries) < archive_days:
            problems.append(f"expires after {min(expiries)} days, before the {archive_days}-day archive")
        return "; ".join(problems) or None

    yield from _each_bucket("backup-bucket-lifecycle", target, "s3.get_bucket_lifecycle_configuration", problem)


@target_check(
    source=BACKUPS, id="backup-bucket-access-logging", layer=9, severity=Severity.MEDIUM,
    title="Backup bucket has no server access logging (who read the backups is unknown)",
    remediation="aws s3api put-bucket-logging --bucket <bucket> --bucket-logging-status "
                "'{\"LoggingEnabled\":{\"TargetBucket\":\"<log-bucket>\",\"TargetPrefix\":\"backups/\"}}'; add "
                "CloudTrail S3 data events for the bucket",
    verify="aws s3api get-bucket-logging --bucket {resource}  # expect LoggingEnabled",
    requires=(BUCKETS_KEY,),
)
def bucket_access_logging(target: BackupTarget) -> Iterator[Result]:
    yield from _each_bucket("backup-bucket-access-logging", target, "s3.get_bucket_logging",
                            lambda data: None if data.get("LoggingEnabled") else "server access logging off")


def _objects(bucket: BackupBucket) -> tuple[list[dict[str, object]], list[str], str | None]:
    data, error = bucket.data("s3.list_objects_v2")
    contents = [o for o in (data or {}).get("Contents", []) if isinstance(o, dict)]
    keys = [str(o.get("Key", "")) for o in contents]
    backups = [o for o in contents if not str(o.get("Key", "")).endswith((".sha256", "/"))]
    return backups, keys, error


def _newest(backups: list[dict[str, object]]) -> tuple[dict[str, object], datetime | None]:
    def when(o: dict[str, object]) -> datetime | None:
        try:
            return datetime.fromisoformat(str(o.get("LastModified")).replace("Z", "+00:00"))
        except ValueError:
            return None

    newest = max(backups, key=lambda o: (when(o) or datetime.min.replace(tzinfo=UTC), str(o["Key"])))
    return newest, when(newest)


@target_check(
    source=BACKUPS, id="backup-object-age", layer=9, severity=Severity.HIGH,
    title="Newest backup object is older than the schedule allows (daily full: 26 hours)",
    remediation="Find why the backup job stopped (systemctl status pg_backup.timer; crontab -l; the job's log), "
                "fix it, and run it once by hand.",
    verify="aws s3 ls s3://{resource}/ --recursive | sort | tail -10  # expect an object from the last day",
    requires=(BUCKETS_KEY,),
)
def backup_object_age(target: BackupTarget) -> Iterator[Result]:
    check_id = "backup-object-age"
    limit = float(target.plan.get("max_age_hours") or DAILY_HOURS)
    where = ", ".join(target.prefixes) or "the bucket"
    for bucket in target.buckets:
        if not bucket.exists:
            yield _fail(check_id, bucket, target, "named in [backups] buckets but does not exist in the account")
            continue
        backups, _, error = _objects(bucket)
        if error:
            yield not_assessed(check_id, bucket.name, error, region=GLOBAL)
            continue
        if not backups:
            yield _fail(check_id, bucket, target, f"no backup object under {where}")
            continue
        newest, when = _newest(backups)
        if when is None:
            yield not_assessed(check_id, bucket.name, f"{newest['Key']}: no readable LastModified", region=GLOBAL)
            continue
        age = (target.collected_at - when) / timedelta(hours=1)
        if age > limit:
            yield _fail(check_id, bucket, target,
                        f"newest backup {newest['Key']} is {age:.0f} h old (limit {limit:g} h)")
        else:
            yield _ok(check_id, bucket, target)


@target_check(
    source=BACKUPS, id="backup-checksum-published", layer=9, severity=Severity.MEDIUM,
    title="Newest backup object has no published SHA-256 checksum next to it",
    remediation="Publish the checksum with the upload: sha256sum \"$ENCRYPTED_FILE\" | aws s3 cp - "
                "s3://<bucket>/<prefix>/${DATE}.sha256",
    verify="aws s3 ls s3://{resource}/ --recursive | grep sha256 | sort | tail -3",
    requires=(BUCKETS_KEY,),
)
def backup_checksum_published(target: BackupTarget) -> Iterator[Result]:
    from outsidein.backups.drill import checksum_for

    check_id = "backup-checksum-published"
    for bucket, absent in _buckets(check_id, target):
        if absent:
            yield absent
            continue
        backups, keys, error = _objects(bucket)
        if error:
            yield not_assessed(check_id, bucket.name, error, region=GLOBAL)
        elif not backups:
            yield not_assessed(check_id, bucket.name, "no backup object to check (see backup-object-age)",
                               region=GLOBAL)
        else:
            newest, _ = _newest(backups)
            if checksum_for(str(newest["Key"]), keys) is None:
                yield _fail(check_id, bucket, target, f"no .sha256 published for {newest['Key']}")
            else:
                yield _ok(check_id, bucket, target)


# ------------------------------------------------------------------------------------------------ RDS


@target_check(
    source=BACKUPS, id="backup-rds-retention", layer=9, severity=Severity.MEDIUM,
    title="RDS automated backups are off or kept for fewer days than the playbook's 30",
    remediation="aws rds modify-db-instance --db-instance-identifier <db> --backup-retention-period 30 "
                "--apply-immediately (and keep a yearly archive: snapshots copied by AWS Backup)",
    verify="aws rds describe-db-instances --db-instance-identifier {resource} --region {region} "
           "--query 'DBInstances[0].BackupRetentionPeriod'  # expect >= 30",
    requires=(AWS_KEY,),
)
def rds_retention(target: BackupTarget) -> Iterator[Result]:
    check_id = "backup-rds-retention"
    want = int(target.plan.get("retention_days") or 30)
    for key, reason in sorted(target.missing.items()):
        if key.startswith("rds@"):
            yield not_assessed(check_id, key[4:], reason, region=key[4:])
    for region, db in target.databases:
        env = db.tags.get("Environment") or target.environment
        days = db.backup_retention_days or 0
        if days == 0:
            yield fail(check_id, db.id, "automated backups off (BackupRetentionPeriod 0)", region=region,
                       environment=env, severity=Severity.HIGH)
        elif days < want:
            yield fail(check_id, db.id, f"automated backups kept {days} days, fewer than {want}", region=region,
                       environment=env)
        else:
            yield passed(check_id, db.id, region=region, environment=env)


# ------------------------------------------------------------------------------------------------ drill


@target_check(
    source=BACKUPS, id="backup-restore-drill", layer=9, severity=Severity.HIGH,
    title="No successful restore drill within the last 30 days",
    remediation="Run the monthly drill into a scratch database: outsidein drill restore -c outsidein.toml "
                "(it verifies the checksum, decrypts, restores and counts rows, and logs the drill)",
    verify="outsidein drill restore -c outsidein.toml  # expect result success",
    requires=(DRILLS_KEY,),
)
def restore_drill(target: BackupTarget) -> Iterator[Result]:
    check_id = "backup-restore-drill"
    days = int(target.plan.get("drill_max_age_days") or 30)
    resource = str(target.plan.get("drill_source") or "restore drill")
    since = target.collected_at - timedelta(days=days)

    def when(record: dict[str, object]) -> datetime | None:
        """The record's time; a time without a zone is UTC (as the drill writes it); None when unparsable."""
        try:
            at = datetime.fromisoformat(str(record.get("at")))
        except ValueError:
            return None
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at

    timed: list[tuple[datetime, dict[str, object]]] = []
    unparsable: list[str] = []
    for i, record in enumerate(target.drills):
        at = when(record)
        if at is None:  # ignored: a record whose time cannot be read proves no drill date
            where = target.drill_where[i] if i < len(target.drill_where) else f"drill record {i + 1}"
            unparsable.append(f"{where}: time {str(record.get('at'))[:40]!r} is not an ISO 8601 date")
        else:
            timed.append((at, record))
    recent = [(t, d) for t, d in timed if t > since]
    good = [d for t, d in recent if d.get("result") == "success"]
    if good:
        yield passed(check_id, resource, environment=target.environment)
        return
    if not target.drills:
        detail = "no restore drill recorded"
    elif not timed:
        yield not_assessed(check_id, resource, "no drill record has a readable time: " + "; ".join(unparsable[:3]))
        return
    elif recent:
        last = max(recent, key=lambda item: item[0])[1]
        detail = f"{len(recent)} drill(s) in the last {days} days, none succeeded (last: {last.get('reason')})"
    else:
        last_at = max(t for t, _ in timed).astimezone(UTC).date().isoformat()
        detail = f"no drill in the last {days} days (last: {last_at})"
    yield fail(check_id, resource, detail, environment=target.environment)


# ------------------------------------------------------------------------------------------------ hosts


def _host(facts: HostFacts, check_id: str) -> Result | None:
    """NOT_ASSESSED for a host that is not a backup host in scope, or whose backup evidence is unreadable."""
    if facts.backups is None:
        reason = facts.missing.get("backups") or "not a backup host in scope (set backups = true, backup_scripts " \
                                                 "or backup_schedule_files on the host)"
        return not_assessed(check_id, facts.name, reason)
    return None


@target_check(
    source=HOST, id="backup-schedule", layer=9, severity=Severity.HIGH,
    title="Backup host has no backup schedule (systemd timer or cron line)",
    remediation="Schedule the daily full backup: a systemd timer (OnCalendar=daily, Persistent=true) or a cron "
                "line running the backup script",
    verify="sudo systemctl list-timers --all | grep -i backup; sudo crontab -l | grep backup; "
           "grep -r backup /etc/crontab /etc/cron.d",
)
def host_schedule(facts: HostFacts) -> Iterator[Result]:
    check_id = "backup-schedule"
    skip = _host(facts, check_id)
    if skip:  # one NOT_ASSESSED per host that is not a backup host: layer 9 never reads PASS for it
        yield skip
        return
    backups = facts.backups
    if backups.schedules:
        yield passed(check_id, facts.name, environment=facts.environment)
    elif "schedule" in backups.missing:
        yield not_assessed(check_id, facts.name, backups.missing["schedule"])
    else:
        yield fail(check_id, facts.name, "no backup timer or cron line", environment=facts.environment)


@target_check(
    source=HOST, id="backup-schedule-ran", layer=9, severity=Severity.HIGH,
    title="Backup timer never ran, or last ran more than 26 hours ago",
    remediation="systemctl status <timer> and journalctl -u <service>: fix the failing job, then "
                "systemctl start <service> once",
    verify="sudo systemctl list-timers --all | grep -i backup  # expect LAST within the day",
)
def host_schedule_ran(facts: HostFacts) -> Iterator[Result]:
    check_id = "backup-schedule-ran"
    if facts.backups is None:
        return
    for schedule in facts.backups.schedules:
        resource = f"{facts.name}/{schedule.where}"
        if schedule.kind == "cron":
            yield not_assessed(check_id, resource, "cron keeps no run record here: the newest object in the backup "
                               "bucket shows whether it ran (backup-object-age)")
        elif schedule.never_ran:
            yield fail(check_id, resource, "the timer never ran (LAST n/a)", environment=facts.environment)
        elif schedule.last_run_hours is None:
            yield not_assessed(check_id, resource, "the timer's last run is not shown")
        elif schedule.last_run_hours > DAILY_HOURS:
            yield fail(check_id, resource, f"last ran {schedule.last_run_hours:.0f} h ago (limit {DAILY_HOURS:g} h)",
                       environment=facts.environment)
        else:
            yield passed(check_id, resource, environment=facts.environment)


@target_check(
    source=HOST, id="backup-script-plaintext-dump", layer=9, severity=Severity.HIGH,
    title="Backup writes the unencrypted dump to disk before encrypting it",
    remediation="Pipe the dump straight into encryption so plaintext never touches disk: pg_dump … | gzip | "
                "openssl enc -aes-256-cbc -pbkdf2 -iter 100000 -salt -pass env:BACKUP_ENCRYPTION_KEY -out "
                "\"$ENCRYPTED_FILE\" (or write to a tmpfs such as /dev/shm)",
    verify="grep -nE 'pg_dump|mysqldump' {resource}  # expect every dump piped into openssl enc, no > before it",
)
def host_plaintext_dump(facts: HostFacts) -> Iterator[Result]:
    yield from _script_results(facts, "backup-script-plaintext-dump", ("plaintext",))


@target_check(
    source=HOST, id="backup-script-encryption", layer=9, severity=Severity.CRITICAL,
    title="Backup is not encrypted, or encrypted weaker than AES-256 with PBKDF2, before upload",
    remediation="Encrypt before upload: openssl enc -aes-256-cbc -pbkdf2 -iter 100000 -salt -pass "
                "env:BACKUP_ENCRYPTION_KEY (or gpg --symmetric --cipher-algo AES256 with --passphrase-file)",
    verify="grep -nE 'openssl enc|gpg' {resource}  # expect -aes-256-* with -pbkdf2 -iter, or --cipher-algo AES256",
)
def host_script_encryption(facts: HostFacts) -> Iterator[Result]:
    yield from _script_results(facts, "backup-script-encryption", ("no-encryption", "weak-encryption"))


def _script_results(facts: HostFacts, check_id: str, kinds: tuple[str, ...]) -> Iterator[Result]:
    backups = facts.backups
    if backups is None:
        return
    if "scripts" in backups.missing:
        yield not_assessed(check_id, facts.name, backups.missing["scripts"])
        return
    dumps = re.compile(r"\b(?:" + "|".join(map(re.escape, DUMP_TOOLS)) + r")\b")
    sources = {*backups.scripts, *(s.where for s in backups.schedules if any(dumps.search(c) for c in s.commands))}
    flagged: set[str] = set()
    for issue in backups.issues:
        if issue.kind in kinds:
            source = issue.path.split(" (command")[0]
            flagged.add(source)
            verify = f"sed -n '{issue.line}p' {source}" if source.startswith("/") and ":" not in source else None
            yield fail(check_id, f"{facts.name}:{issue.path}:{issue.line}", f"{issue.detail}: {issue.text}",
                       environment=facts.environment, verify=verify)
    for source in sorted(sources - flagged):
        yield passed(check_id, f"{facts.name}:{source}", environment=facts.environment)
