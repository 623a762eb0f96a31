"""Layer 9: database backups — buckets, schedules, scripts, and a restore drill that really restores.

* ``aws``: which buckets are backup buckets, and the extra S3/KMS reads made for them (collection).
* ``host``: backup timers, cron lines and scripts read from hosts in scope, parsed for the playbook's dangers.
* ``drill``: ``outsidein drill restore``: stream an encrypted backup into a scratch PostgreSQL and count rows.
* ``collect`` / ``facts``: the drill log as evidence, joined with the AWS inventory into one target.
"""
