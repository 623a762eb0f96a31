"""Layer 9 on hosts: backup schedules (timers, cron) and scripts, from saved outputs and from the local host."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from outsidein.audit import evaluate
from outsidein.backups.host import analyse_script, parse_timers, passed_hours
from outsidein.evidence import Snapshot
from outsidein.host.collect import collect_hosts
from outsidein.models import Status
from outsidein.scope import HostScope

PLAYBOOK_ROOT = Path("/work/shared/seeds/000_2e7abe09e10511d9.txt")
# The playbook's backup_and_upload.sh: encrypted with AES-256 and PBKDF2, but the gzip'd dump sits in /tmp first.
PLAYBOOK_SCRIPT = """#!/bin/bash
DATE=$(date +%Y%m%d_%H%M%S)
BACKUP_FILE="/tmp/db_backup_${DATE}.sql.gz"
ENCRYPTED_FILE="${BACKUP_FILE}.enc"

# 1. Dump and compress
PGPASSWORD=$(aws secretsmanager get-secret-value --secret-id prod/db \\
  --query SecretString --output text | jq -r .password) \\
  pg_dump -h localhost -U app -d production | gzip > "$BACKUP_FILE"

# 2. Encrypt before upload (AES-256)
openssl enc -aes-256-cbc -pbkdf2 -iter 100000 -salt \\
  -pass env:BACKUP_ENCRYPTION_KEY \\
  -in "$BACKUP_FILE" -out "$ENCRYPTED_FILE"

aws s3 cp "$ENCRYPTED_FILE" s3://your-backup-bucket/postgres/ --sse aws:kms --sse-kms-key-id alias/backup-key
sha256sum "$ENCRYPTED_FILE" | aws s3 cp - s3://your-backup-bucket/postgres/${DATE}.sha256
shred -vfzu "$BACKUP_FILE" "$ENCRYPTED_FILE"
"""
PIPED_WEAK = """#!/bin/sh
set -eu
pg_dump -d production | gzip | openssl enc -aes-128-cbc -salt -pass env:KEY | aws s3 cp - s3://b/postgres/x.enc
"""
PIPED_GOOD = """#!/bin/sh
pg_dump -d production | gzip | openssl enc -aes-256-cbc -pbkdf2 -iter 100000 -salt -pass env:K \\
  | aws s3 cp - s3://b/postgres/$(date +%F).enc
"""
TIMERS = """NEXT                        LEFT     LAST                        PASSED  UNIT              ACTIVATES
Sat 2026-11-28 02:00:00 UTC 20h left Fri 2026-11-27 02:00:00 UTC {passed} pg_backup.timer   pg_backup.service
Sat 2026-11-28 00:00:00 UTC 18h left Fri 2026-11-27 00:00:00 UTC 6h ago  logrotate.timer   logrotate.service

2 timers listed.
"""
NEVER = """NEXT LEFT LAST PASSED UNIT                 ACTIVATES
n/a  n/a  n/a  n/a    mysql-backup.timer   mysql-backup.service

1 timers listed.
"""


def _folder(root: Path, name: str, outputs: dict[str, str], files: dict[str, str] | None = None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for key, text in outputs.items():
        (folder / f"{key}.txt").write_text(text)
    for path, text in (files or {}).items():
        target = folder / "files" / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return folder


def _audit(hosts: list[HostScope]) -> dict[tuple[str, str], set[Status]]:
    report = evaluate(Snapshot(collected_at=datetime.now(UTC), hosts=collect_hosts(hosts)))
    out: dict[tuple[str, str], set[Status]] = {}
    for result in report.results:
        if result.check_id.startswith("backup-"):
            out.setdefault((result.check_id, result.resource), set()).add(result.status)
    return out


def test_saved_outputs_timer_playbook_script_and_cron_weak_script(tmp_path: Path) -> None:
    db1 = _folder(tmp_path, "db-1", {
        "systemctl-list-timers-all": TIMERS.format(passed="5h ago"), "crontab-l": "", "cron-files": "",
        "systemctl-cat-pg_backup.service": "[Service]\nExecStart=/usr/local/bin/backup_and_upload.sh\n",
    }, {"/usr/local/bin/backup_and_upload.sh": PLAYBOOK_SCRIPT})
    db2 = _folder(tmp_path, "db-2", {
        "systemctl-list-timers-all": "NEXT LEFT LAST PASSED UNIT ACTIVATES\n\n0 timers listed.\n",
        "crontab-l": "MAILTO=ops\n0 2 * * * /opt/backup/nightly.sh >> /var/log/backup.log 2>&1\n",
        "cron-files": "==> /etc/crontab <==\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
    }, {"/opt/backup/nightly.sh": PIPED_WEAK})
    db3 = _folder(tmp_path, "db-3", {"systemctl-list-timers-all": NEVER, "crontab-l": "", "cron-files": ""})
    db4 = _folder(tmp_path, "db-4", {"ss-tlnp": ""})  # saved without any backup output
    db5 = _folder(tmp_path, "db-5", {"systemctl-list-timers-all": TIMERS.format(passed="3 days 2h ago"),
                                     "crontab-l": "", "cron-files": "",
                                     "systemctl-cat-pg_backup.service":
                                         "[Service]\nExecStart=/usr/local/bin/good.sh\n"},
                  {"/usr/local/bin/good.sh": PIPED_GOOD})
    db6 = _folder(tmp_path, "db-6", {"systemctl-list-timers-all": "NEXT LEFT LAST PASSED UNIT ACTIVATES\n",
                                     "crontab-l": "", "cron-files": "==> /etc/crontab <==\n# nothing\n"})
    web = _folder(tmp_path, "web-1", {"ss-tlnp": ""})
    hosts = [HostScope(name=n, evidence=f, backups=True) for n, f in
             (("db-1", db1), ("db-2", db2), ("db-3", db3), ("db-4", db4), ("db-5", db5), ("db-6", db6))]
    got = _audit([*hosts, HostScope(name="web-1", evidence=web)])

    # db-1: the playbook's own script: the hidden danger is found on the pg_dump line; its encryption passes.
    assert got[("backup-schedule", "db-1")] == {Status.PASS}
    assert got[("backup-schedule-ran", "db-1/pg_backup.timer")] == {Status.PASS}
    assert got[("backup-script-plaintext-dump", "db-1:/usr/local/bin/backup_and_upload.sh:7")] == {Status.FAIL}
    assert got[("backup-script-encryption", "db-1:/usr/local/bin/backup_and_upload.sh")] == {Status.PASS}
    # db-2: cron runs a script that pipes (no plaintext on disk) into AES-128 without PBKDF2.
    assert got[("backup-schedule", "db-2")] == {Status.PASS}
    assert got[("backup-schedule-ran", "db-2/crontab -l:2")] == {Status.NOT_ASSESSED}
    assert got[("backup-script-encryption", "db-2:/opt/backup/nightly.sh:3")] == {Status.FAIL}
    assert got[("backup-script-plaintext-dump", "db-2:/opt/backup/nightly.sh")] == {Status.PASS}
    # db-3: a backup timer that never ran, and no script to read.
    assert got[("backup-schedule-ran", "db-3/mysql-backup.timer")] == {Status.FAIL}
    assert got[("backup-script-encryption", "db-3")] == {Status.NOT_ASSESSED}
    # db-4: a saved-output folder without the backup outputs: not assessed, never PASS.
    assert got[("backup-schedule", "db-4")] == {Status.NOT_ASSESSED}
    # db-5: a good script, but the timer last ran three days ago.
    assert got[("backup-schedule-ran", "db-5/pg_backup.timer")] == {Status.FAIL}
    assert got[("backup-script-encryption", "db-5:/usr/local/bin/good.sh")] == {Status.PASS}
    assert got[("backup-script-plaintext-dump", "db-5:/usr/local/bin/good.sh")] == {Status.PASS}
    # db-6: schedules read, none is a backup.
    assert got[("backup-schedule", "db-6")] == {Status.FAIL}
    # A host that is not a backup host is one NOT_ASSESSED, not a finding and not a PASS.
    assert got[("backup-schedule", "web-1")] == {Status.NOT_ASSESSED}
    assert not [k for k in got if k[1].startswith("web-1") and k[0] != "backup-schedule"]


def test_local_host_reads_the_scripts_in_scope(tmp_path: Path) -> None:
    script = tmp_path / "backup.sh"
    script.write_text("#!/bin/sh\npg_dump -Fc -f /var/backups/db.dump production\n"
                      "gpg --symmetric --batch --passphrase-file /etc/backup.key /var/backups/db.dump\n")
    cron = tmp_path / "cron.d-backup"
    cron.write_text(f"30 1 * * * postgres {script}\n")
    got = _audit([HostScope(name="local-db", address="local", backups=True, backup_scripts=(str(script),),
                            backup_schedule_files=(str(cron),), process_environ=False)])
    assert got[("backup-script-plaintext-dump", f"local-db:{script}:2")] == {Status.FAIL}
    assert got[("backup-script-encryption", f"local-db:{script}:3")] == {Status.FAIL}  # gpg default cipher


def test_script_analysis_details() -> None:
    issues = analyse_script("/x.sh", PLAYBOOK_SCRIPT)
    assert [(i.kind, i.line) for i in issues] == [("plaintext", 7)]
    assert "pg_dump | gzip" in issues[0].detail and "$BACKUP_FILE" in issues[0].detail
    assert analyse_script("/g.sh", PIPED_GOOD) == []
    none = analyse_script("/n.sh", "mysqldump shop | gzip | aws s3 cp - s3://b/shop.sql.gz\n")
    assert [i.kind for i in none] == ["no-encryption"]
    assert analyse_script("/t.sh", "pg_dump db | gzip > /dev/shm/db.gz\nopenssl enc -aes-256-cbc -pbkdf2 "
                          "-in /dev/shm/db.gz -out /b/db.enc -pass env:K\n") == []  # tmpfs
    weak = {i.detail.split(":")[0] for i in analyse_script("/w.sh", (
        "pg_dump db | openssl enc -aes-256-cbc -salt -pass env:K > a\n"
        "pg_dump db | openssl enc -aes-256-cbc -pbkdf2 -iter 1000 -pass env:K > b\n"
        "pg_dump db | openssl enc -aes-256-cbc -pbkdf2 -pass pass:hunter22 > c\n"
        "pg_dump db | gpg --symmetric --cipher-algo AES256 --batch --passphrase-file k > d\n"
        "pg_dump db | tee /var/tmp/copy.sql | age -r age1xyz > e\n"))}
    assert weak == {"openssl enc without -pbkdf2", "openssl enc -iter 1000",
                    "openssl enc takes the passphrase on the command line (-pass pass", "`pg_dump | tee` writes the "
                    "unencrypted dump to /var/tmp/copy.sql before encryption"}


def test_timer_rows_and_durations() -> None:
    rows = parse_timers(TIMERS.format(passed="1 day 13h ago"))
    assert next((r.unit, r.activates, r.passed) for r in rows) == ("pg_backup.timer", "pg_backup.service",
                                                                   "1 day 13h ago")
    assert passed_hours("1 day 13h ago") == 37.0 and passed_hours("n/a") is None
    assert round(passed_hours("2 weeks 1 day ago") or 0) == 360


LEAKY_SCRIPT = """#!/bin/sh
mysqldump -u root -pMyS3cretDbPw shop > /var/backups/shop.sql
openssl enc -aes-128-cbc -k Hunter2Passphrase -in /var/backups/shop.sql -out /var/backups/shop.enc
PGPASSWORD=PgEnvSecret77 pg_dump -d production > /var/backups/pg.sql
mysqldump --password=DashedSecret88 shop | gzip > /var/backups/b.sql.gz
mysqldump --password SpacedSecret99 shop | gzip > /var/backups/c.sql.gz
MYSQL_PWD=MyPwdEnvSecret1 mysqldump shop > /var/backups/d.sql
pg_dump postgresql://app:UrlSecretPw42@db/app > /var/backups/e.sql
pg_dump -d production | openssl enc -aes-128-cbc -pass pass:InlinePass55 > /var/backups/f.enc
pg_dump -d production | openssl enc -aes-256-cbc -K 00112233445566778899aabbccddeeff -iv 01 > /var/backups/g.enc
pg_dump -d production | gpg --symmetric --passphrase GpgSecret66 > /var/backups/h.gpg
pg_dump -d production | openssl enc -aes-128-cbc -pass env:BACKUP_KEY > /var/backups/i.enc
"""
LEAKED = ("MyS3cretDbPw", "Hunter2Passphrase", "PgEnvSecret77", "DashedSecret88", "SpacedSecret99", "MyPwdEnvSecret1",
          "UrlSecretPw42", "InlinePass55", "00112233445566778899aabbccddeeff", "GpgSecret66")


def test_backup_script_secrets_never_reach_snapshot_findings_or_reports(tmp_path: Path) -> None:
    from outsidein.report.html import render_html
    from outsidein.report.json_report import render_json

    folder = _folder(tmp_path, "db-9", {
        "systemctl-list-timers-all": "NEXT LEFT LAST PASSED UNIT ACTIVATES\n",
        "crontab-l": "0 2 * * * MYSQL_PWD=CronSecret31 mysqldump -pCronGlued32 shop > /var/backups/x.sql\n"
                     "0 3 * * * /opt/backup/leaky.sh\n",
        "cron-files": "",
    }, {"/opt/backup/leaky.sh": LEAKY_SCRIPT})
    snapshot = Snapshot(collected_at=datetime.now(UTC),
                        hosts=collect_hosts([HostScope(name="db-9", evidence=folder, backups=True)]))
    report = evaluate(snapshot)
    details = [f.detail for f in report.findings if f.check_id.startswith("backup-script")]
    assert len(details) >= 10  # the lines are still reported, with their secrets masked
    assert any("-pass env:BACKUP_KEY" in d for d in details)  # a key named by environment variable stays readable
    assert any("…[sha256:" in d and "-pMyS" in d for d in details)
    texts = {"snapshot": json.dumps(snapshot.to_json()), "details": "\n".join(details),
             "json": render_json(report), "html": render_html(report)}
    for secret in (*LEAKED, "CronSecret31", "CronGlued32"):
        for where, text in texts.items():
            assert secret not in text, (secret, where)


def test_script_issue_text_is_masked_even_from_unmasked_evidence() -> None:
    issues = analyse_script("/b.sh", "mysqldump -u root -pMyS3cretDbPw shop > /var/backups/shop.sql\n"
                                     "openssl enc -aes-128-cbc -k Hunter2Passphrase -in a -out b\n")
    assert issues and all("MyS3cretDbPw" not in i.text and "Hunter2Passphrase" not in i.text for i in issues)
    assert {i.kind for i in issues} == {"plaintext", "weak-encryption"}
