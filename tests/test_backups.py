"""Layer 9: backup buckets on the real moto server, RDS retention, and restore drills into a real PostgreSQL."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from outsidein.audit import AuditReport, evaluate
from outsidein.aws.collect import AwsCollector
from outsidein.backups.collect import collect_backups
from outsidein.backups.drill import BackupObject, DrillRefused, check_target, encrypt, run_drill
from outsidein.cli import main
from outsidein.evidence import Snapshot
from outsidein.models import Status
from outsidein.scope import BackupsScope, DrillScope, load_scope
from tests.conftest import REGION, Emulator
from tests.servers import Postgres, postgres_server

KEY = "correct horse battery staple"
ITER = 1000  # the drill reads the count from the scope; small keeps the tests quick
GOOD, WEAK, TAGGED, OTHER = "acme-prod-backups", "legacy-backup-dumps", "acme-db-dumps", "acme-static-assets"


def _statuses(report: AuditReport) -> dict[tuple[str, str], set[Status]]:
    out: dict[tuple[str, str], set[Status]] = {}
    for result in report.results:
        if result.check_id.startswith("backup-"):
            out.setdefault((result.check_id, result.resource), set()).add(result.status)
    return out


def _seed(aws: Emulator) -> None:
    s3, kms, rds = aws.client("s3"), aws.client("kms"), aws.client("rds")
    key = kms.create_key(Description="backup key")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/backup-key", TargetKeyId=key)
    s3.create_bucket(Bucket="acme-logs")
    s3.create_bucket(Bucket=GOOD, ObjectLockEnabledForBucket=True)
    s3.put_public_access_block(Bucket=GOOD, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=GOOD, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/backup-key"}}]})
    s3.put_bucket_versioning(Bucket=GOOD, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=GOOD, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}})
    s3.put_bucket_lifecycle_configuration(Bucket=GOOD, LifecycleConfiguration={"Rules": [
        {"ID": "archive", "Status": "Enabled", "Filter": {"Prefix": "postgres/"},
         "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}], "Expiration": {"Days": 365}}]})
    s3.put_bucket_acl(Bucket="acme-logs", GrantWrite="uri=http://acs.amazonaws.com/groups/s3/LogDelivery",
                      GrantReadACP="uri=http://acs.amazonaws.com/groups/s3/LogDelivery")
    s3.put_bucket_logging(Bucket=GOOD, BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": "acme-logs",
                                                                                "TargetPrefix": "backups/"}})
    blob = encrypt(gzip.compress(b"-- empty dump\n"), KEY.encode(), ITER)
    s3.put_object(Bucket=GOOD, Key="postgres/db_backup_20261128_020000.sql.gz.enc", Body=blob)
    s3.put_object(Bucket=GOOD, Key="postgres/20261128_020000.sha256", Body=hashlib.sha256(blob).hexdigest().encode())
    # the weak one: found by its name; public, SSE-S3 at best, nothing else, and no object
    s3.create_bucket(Bucket=WEAK)
    s3.put_bucket_policy(Bucket=WEAK, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{WEAK}/*"}]}))
    # found by its tag; encrypted with the AWS-managed key; an object without a checksum
    s3.create_bucket(Bucket=TAGGED)
    s3.put_bucket_tagging(Bucket=TAGGED, Tagging={"TagSet": [{"Key": "Purpose", "Value": "db-backups"}]})
    s3.put_bucket_encryption(Bucket=TAGGED, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/aws/s3"}}]})
    s3.put_bucket_lifecycle_configuration(Bucket=TAGGED, LifecycleConfiguration={"Rules": [
        {"ID": "short", "Status": "Enabled", "Filter": {"Prefix": ""},
         "Transitions": [{"Days": 7, "StorageClass": "GLACIER"}], "Expiration": {"Days": 90}}]})
    s3.put_object(Bucket=TAGGED, Key="postgres/nightly.sql.gz.enc", Body=b"x")
    s3.create_bucket(Bucket=OTHER)
    for name, days in (("orders-db", 30), ("legacy-db", 0), ("reports-db", 7)):
        rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres",
                               MasterUsername="admin", MasterUserPassword="emulator-only", AllocatedStorage=20,
                               BackupRetentionPeriod=days)


def _snapshot(aws: Emulator, scope: BackupsScope) -> Snapshot:
    evidence = AwsCollector(aws.scope(), session=aws.session(), backups=scope).collect()
    return Snapshot(collected_at=evidence.collected_at, aws=evidence, backups=collect_backups(scope))


def test_backup_buckets_rds_and_drill_log(aws: Emulator, tmp_path: Path) -> None:
    _seed(aws)
    log = tmp_path / "drills.jsonl"
    log.write_text(json.dumps({"at": (datetime.now(UTC) - timedelta(days=3)).isoformat(), "result": "success",
                               "source": "s3://x/y"}) + "\n")
    scope = BackupsScope(prefixes=("postgres/",), drill_log=log)
    snapshot = _snapshot(aws, scope)
    got = _statuses(evaluate(snapshot))
    assert {r for c, r in got if c == "backup-bucket-versioning"} == {GOOD, WEAK, TAGGED}  # OTHER is not one
    for check in ("backup-bucket-public-access-block", "backup-bucket-public-policy", "backup-bucket-sse-kms",
                  "backup-bucket-versioning", "backup-bucket-object-lock", "backup-bucket-lifecycle",
                  "backup-bucket-access-logging", "backup-object-age", "backup-checksum-published"):
        assert got[(check, GOOD)] == {Status.PASS}, check
    for check in ("backup-bucket-public-access-block", "backup-bucket-public-policy", "backup-bucket-sse-kms",
                  "backup-bucket-versioning", "backup-bucket-object-lock", "backup-bucket-lifecycle",
                  "backup-bucket-access-logging", "backup-object-age"):
        assert got[(check, WEAK)] == {Status.FAIL}, check
    assert got[("backup-checksum-published", WEAK)] == {Status.NOT_ASSESSED}  # nothing to check
    assert got[("backup-bucket-sse-kms", TAGGED)] == {Status.FAIL}  # aws/s3 is AWS-managed
    assert got[("backup-bucket-lifecycle", TAGGED)] == {Status.FAIL}
    assert got[("backup-checksum-published", TAGGED)] == {Status.FAIL}
    assert got[("backup-rds-retention", "orders-db")] == {Status.PASS}
    assert got[("backup-rds-retention", "legacy-db")] == {Status.FAIL}
    assert got[("backup-rds-retention", "reports-db")] == {Status.FAIL}
    assert got[("backup-restore-drill", "restore drill")] == {Status.PASS}
    report = evaluate(snapshot)
    severity = {(f.check_id, f.resource): f.severity.value for f in report.findings}
    assert severity[("backup-rds-retention", "legacy-db")] == "HIGH"
    assert severity[("backup-rds-retention", "reports-db")] == "MEDIUM"
    assert severity[("backup-bucket-public-access-block", WEAK)] == "CRITICAL"
    assert severity[("backup-bucket-sse-kms", WEAK)] == "HIGH"
    layer9 = next(ls for ls in report.layers if ls.layer.number == 9)
    assert layer9.status == "FAIL"

    # Two days later, without a new backup: the newest object is too old; the drill is still recent enough.
    later = replace(snapshot, collected_at=snapshot.collected_at + timedelta(days=2))
    again = _statuses(evaluate(later))
    assert again[("backup-object-age", GOOD)] == {Status.FAIL}
    # A drill log with only an old or a failed drill, or none, is a finding.
    log.write_text(json.dumps({"at": "2020-01-01T00:00:00+00:00", "result": "success"}) + "\n" +
                   json.dumps({"at": datetime.now(UTC).isoformat(), "result": "failed", "reason": "wrong key"}) + "\n")
    failed = _statuses(evaluate(replace(snapshot, backups=collect_backups(scope))))
    assert failed[("backup-restore-drill", "restore drill")] == {Status.FAIL}
    log.write_text("{not json\n")
    broken = _statuses(evaluate(replace(snapshot, backups=collect_backups(scope))))
    assert broken[("backup-restore-drill", "backups")] == {Status.NOT_ASSESSED}


def test_snapshot_round_trip_and_no_aws_is_not_assessed(aws: Emulator, tmp_path: Path) -> None:
    _seed(aws)
    scope = BackupsScope(buckets=(GOOD, "named-but-gone"), discover=False, drill_log=tmp_path / "none.jsonl")
    snapshot = _snapshot(aws, scope)
    path = tmp_path / "snap.json"
    snapshot.save(path)
    live, offline = evaluate(snapshot), evaluate(Snapshot.load(path))
    assert [f.fingerprint for f in live.findings] == [f.fingerprint for f in offline.findings]
    got = _statuses(offline)
    assert {r for c, r in got if c == "backup-bucket-versioning"} == {GOOD, "named-but-gone"}
    assert got[("backup-object-age", "named-but-gone")] == {Status.FAIL}
    assert got[("backup-restore-drill", "restore drill")] == {Status.FAIL}  # no drill recorded
    alone = _statuses(evaluate(Snapshot(collected_at=datetime.now(UTC), backups=collect_backups(scope))))
    assert alone[("backup-bucket-versioning", "backups")] == {Status.NOT_ASSESSED}
    assert alone[("backup-rds-retention", "backups")] == {Status.NOT_ASSESSED}


def _drill_results(scope: BackupsScope) -> list[tuple[Status, str]]:
    report = evaluate(Snapshot(collected_at=datetime.now(UTC), backups=collect_backups(scope)))
    return [(r.status, r.detail or r.reason) for r in report.results if r.check_id == "backup-restore-drill"]


def test_drill_log_times_without_a_zone_are_utc_and_unparsable_ones_are_ignored(tmp_path: Path) -> None:
    log = tmp_path / "drills.jsonl"
    scope = BackupsScope(drill_log=log)
    naive = (datetime.now(UTC) - timedelta(days=2)).replace(tzinfo=None).isoformat(timespec="seconds")
    log.write_text(json.dumps({"at": naive, "result": "success"}) + "\n")
    assert [s for s, _ in _drill_results(scope)] == [Status.PASS]  # no crash comparing naive and aware times
    old_naive = (datetime.now(UTC) - timedelta(days=90)).replace(tzinfo=None).isoformat()
    log.write_text(json.dumps({"at": old_naive, "result": "success"}) + "\n")
    assert [s for s, _ in _drill_results(scope)] == [Status.FAIL]
    # An unparsable time is ignored: the valid record still decides.
    log.write_text(json.dumps({"at": "last tuesday", "result": "success"}) + "\n" +
                   json.dumps({"at": naive, "result": "failed", "reason": "wrong key"}) + "\n")
    assert [s for s, _ in _drill_results(scope)] == [Status.FAIL]
    # No valid record left: NOT_ASSESSED, naming the log line.
    log.write_text("\n" + json.dumps({"at": "last tuesday", "result": "success"}) + "\n")
    (status, detail), = _drill_results(scope)
    assert status == Status.NOT_ASSESSED and f"{log}:2" in detail and "last tuesday" in detail


# ------------------------------------------------------------------------------------------------ drills


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    with postgres_server(tmp_path_factory.mktemp("pg")) as server:
        server.admin(f"CREATE DATABASE restore_test OWNER {server.user}")
        server.psql("CREATE TABLE customers (id int PRIMARY KEY, name text);"
                    "CREATE TABLE orders (id int PRIMARY KEY, customer int REFERENCES customers, total numeric);"
                    "INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 100) g;"
                    "INSERT INTO orders SELECT g, 1 + g % 100, g * 1.5 FROM generate_series(1, 1000) g;")
        yield server


def _playbook_object(pg: Postgres, out: Path) -> bytes:
    """The playbook's own pipeline, with the real tools: pg_dump | gzip | openssl enc -aes-256-cbc -pbkdf2."""
    env = {**os.environ, "PGPASSWORD": pg.password, "BACKUP_ENCRYPTION_KEY": KEY}
    subprocess.run(f"pg_dump '{pg.dsn(password=False)}' | gzip | openssl enc -aes-256-cbc -pbkdf2 -iter {ITER} "
                   f"-salt -pass env:BACKUP_ENCRYPTION_KEY -out {out}", shell=True, check=True, env=env, timeout=60)
    return out.read_bytes()


def _scope_file(tmp_path: Path, aws: Emulator, pg: Postgres, source: str) -> Path:
    target = pg.dsn().replace("dbname=appdb", "dbname=restore_test")
    path = tmp_path / "outsidein.toml"
    path.write_text(f"""
[aws]
regions = ["{REGION}"]
endpoint_url = "{aws.endpoint_url}"
max_attempts = 2

[backups]
buckets = ["{GOOD}"]
prefixes = ["postgres/"]

[backups.drill]
source = "{source}"
target = "{target}"
key_env = "BACKUP_ENCRYPTION_KEY"
scratch_databases = ["restore_test"]
sources = ["host=localhost port={pg.port} dbname=appdb"]
iterations = {ITER}
expect = {{orders = 1000}}
expect_min = {{customers = 100}}
""")
    return path


def _log(config: Path) -> list[dict[str, object]]:
    log = config.parent / ".outsidein" / "drills.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def creds(monkeypatch: pytest.MonkeyPatch) -> None:
    from outsidein.demo.emulator import DUMMY_CREDENTIALS

    for key, value in DUMMY_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_drill_from_s3_then_wrong_key_corrupt_and_mismatch(aws: Emulator, pg: Postgres, tmp_path: Path,
                                                           creds: None, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=GOOD)
    blob = _playbook_object(pg, tmp_path / "db.enc")
    s3.put_object(Bucket=GOOD, Key="postgres/db_backup_20261128_020000.sql.gz.enc", Body=blob)
    s3.put_object(Bucket=GOOD, Key="postgres/20261128_020000.sha256",
                  Body=f"{hashlib.sha256(blob).hexdigest()}  /tmp/db_backup_20261128_020000.sql.gz.enc\n".encode())
    config = _scope_file(tmp_path, aws, pg, f"s3://{GOOD}/postgres/")
    monkeypatch.setenv("BACKUP_ENCRYPTION_KEY", KEY)

    assert main(["drill", "restore", "-c", str(config)]) == 0
    (ok,) = _log(config)
    assert ok["result"] == "success" and ok["checksum"] == "verified" and ok["tables"] == {"orders": 1000,
                                                                                          "customers": 100}
    assert str(ok["source"]).endswith("db_backup_20261128_020000.sql.gz.enc") and "restore_test" in str(ok["target"])
    assert float(str(ok["mb_per_s"])) > 0 and pg.password not in json.dumps(ok)
    # The audit reads the log: the drill check passes.
    scope = load_scope(config)
    assert scope.backups is not None
    got = _statuses(evaluate(Snapshot(collected_at=datetime.now(UTC), backups=collect_backups(scope.backups))))
    assert got[("backup-restore-drill", f"s3://{GOOD}/postgres/")] == {Status.PASS}

    # Wrong key: exit 2 with the reason, recorded as failed.
    monkeypatch.setenv("BACKUP_ENCRYPTION_KEY", "not the key")
    assert main(["drill", "restore", "-c", str(config)]) == 2
    assert "wrong key" in capsys.readouterr().err
    # Corrupt object (checksum republished so only decryption can notice): failed.
    monkeypatch.setenv("BACKUP_ENCRYPTION_KEY", KEY)
    corrupt = bytearray(blob)
    corrupt[len(corrupt) // 2] ^= 0xFF
    s3.put_object(Bucket=GOOD, Key="postgres/db_backup_20261128_030000.sql.gz.enc", Body=bytes(corrupt))
    s3.put_object(Bucket=GOOD, Key="postgres/20261128_030000.sha256", Body=hashlib.sha256(corrupt).hexdigest().encode())
    assert main(["drill", "restore", "-c", str(config), "--source",
                 f"s3://{GOOD}/postgres/db_backup_20261128_030000.sql.gz.enc"]) == 2
    # Checksum mismatch: a good object, a wrong published checksum. Nothing is committed: the earlier restore stays.
    pg.psql("SELECT 1")
    s3.put_object(Bucket=GOOD, Key="postgres/db_backup_20261128_040000.sql.gz.enc", Body=blob)
    s3.put_object(Bucket=GOOD, Key="postgres/20261128_040000.sha256", Body=b"0" * 64)
    assert main(["drill", "restore", "-c", str(config), "--source",
                 f"s3://{GOOD}/postgres/db_backup_20261128_040000.sql.gz.enc"]) == 2
    assert "checksum mismatch" in capsys.readouterr().err
    records = _log(config)
    assert [r["result"] for r in records] == ["success", "failed", "failed", "failed"]
    assert "wrong key" in str(records[1]["reason"])
    assert "corrupt" in str(records[2]["reason"]) or "padding" in str(records[2]["reason"])
    assert records[3]["checksum"] == "mismatch"
    restored = subprocess.run(["psql", pg.dsn(password=False).replace("dbname=appdb", "dbname=restore_test"), "-X",
                               "-A", "-t", "-c", "SELECT count(*) FROM orders"], capture_output=True, text=True,
                              env={**os.environ, "PGPASSWORD": pg.password}, check=True).stdout.strip()
    assert restored == "1000"  # the failed drills rolled back; the reset never committed


def test_drill_guard_refuses_non_scratch_and_source_targets(aws: Emulator, pg: Postgres, tmp_path: Path,
                                                           creds: None, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = _playbook_object(pg, tmp_path / "db_backup_1.sql.gz.enc")
    (tmp_path / "db_backup_1.sql.gz.enc.sha256").write_text(hashlib.sha256(blob).hexdigest())
    config = _scope_file(tmp_path, aws, pg, str(tmp_path / "db_backup_1.sql.gz.enc"))
    monkeypatch.setenv("BACKUP_ENCRYPTION_KEY", KEY)
    assert main(["drill", "restore", "-c", str(config), "--target", pg.dsn()]) == 2  # appdb is not scratch
    assert _log(config) == []  # a refused drill never ran
    drill = DrillScope(scratch_databases=("restore_test", "appdb"), sources=(f"host=127.0.0.1 port={pg.port} "
                                                                             "dbname=appdb",))
    with pytest.raises(DrillRefused, match="source database"):
        check_target(pg.dsn(), drill)  # localhost and 127.0.0.1 are one host
    with pytest.raises(DrillRefused, match="not marked scratch"):
        check_target("postgresql://app@db.internal/production", drill)
    monkeypatch.delenv("BACKUP_ENCRYPTION_KEY")
    assert main(["drill", "restore", "-c", str(config)]) == 2  # no key in the environment
    monkeypatch.setenv("BACKUP_ENCRYPTION_KEY", KEY)
    assert main(["drill", "restore", "-c", str(config)]) == 0  # a file source, the real openssl format
    assert [r["result"] for r in _log(config)] == ["success"]


def _fake_psql(tmp_path: Path, body: str) -> str:
    path = tmp_path / "psql"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def _object(plain: bytes) -> BackupObject:
    data = encrypt(gzip.compress(plain), KEY.encode(), ITER)
    return BackupObject("dump.sql.gz.enc", len(data), lambda: iter([data]), hashlib.sha256(data).hexdigest())


def test_drill_reason_keeps_only_psql_error_line_and_psql_is_bounded(tmp_path: Path) -> None:
    import time

    drill = DrillScope(scratch_databases=("scratch",), iterations=ITER, max_seconds=1.5)
    target = "host=localhost dbname=scratch user=drill"
    env_file = tmp_path / "pgoptions"
    talker = _fake_psql(tmp_path, f"""cat >/dev/null
printf '%s\\n' "$PGOPTIONS" > {env_file}
cat >&2 <<'EOF'
psql:<stdin>:12: ERROR:  invalid input syntax for type integer: "alice@example.com"
LINE 1: INSERT INTO customers VALUES ('alice@example.com', 'Alice Secretrow');
DETAIL:  Key (email)=(alice@example.com) already exists.
CONTEXT:  COPY customers, line 1: "1	alice@example.com	Alice Secretrow"
EOF
exit 3
""")
    record = run_drill(_object(b"COPY customers FROM stdin;\n"), target, drill, KEY.encode(), psql=talker)
    assert record.result == "failed"
    assert record.reason.startswith("psql failed: psql:<stdin>:12: ERROR:  invalid input syntax for type integer")
    assert "alice@example.com" not in record.reason and "Secretrow" not in record.reason
    assert "DETAIL" not in record.reason and "CONTEXT" not in record.reason and len(record.reason) < 260
    assert "statement_timeout=1500" in env_file.read_text()  # the server bounds each statement too
    # A psql that stops reading its input blocks the drill's writes: the watchdog ends it at max_seconds.
    stuck = _fake_psql(tmp_path, "exec sleep 60\n")
    started = time.monotonic()
    record = run_drill(_object(os.urandom(4 << 20)), target, drill, KEY.encode(), psql=stuck)
    assert time.monotonic() - started < 15
    assert record.result == "failed" and "bound of 1.5 s" in record.reason
