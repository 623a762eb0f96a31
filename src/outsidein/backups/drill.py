"""The restore drill: a backup really restores, or the drill says why not.

The object is the playbook's ``pg_dump | gzip | openssl enc -aes-256-cbc -pbkdf2 -iter 100000 -salt``: OpenSSL's
enc format, ``Salted__`` + an 8-byte salt, then AES-256-CBC with PKCS#7 padding, key and IV from
PBKDF2-HMAC-SHA256(passphrase, salt, iterations) (32 + 16 bytes). It is read as a stream (S3 ``GetObject`` or a
file), hashed (SHA-256, against the ``.sha256`` published next to it), decrypted, gunzipped and piped into
``psql --single-transaction`` on the scratch target. No plaintext ever touches a disk, and nothing is committed
unless the whole stream decrypted, decompressed, checksummed and loaded: a wrong key, a corrupt or truncated
object and a checksum mismatch end the drill with psql killed, so the transaction rolls back.

The guard (``check_target``), before a byte is read: the target's database must be listed in the scope's
``[backups.drill] scratch_databases``, and must not be the database of any ``sources`` DSN (same host, port and
database name; ``localhost``, ``127.0.0.1``, ``::1`` and a Unix socket are the same host). The drill first drops
the schemas the target's user owns (``public`` included) and recreates ``public``, inside the same transaction.

Every drill that ran is appended to the drill log (JSON lines; ``.outsidein/drills.jsonl`` next to the scope
file): when, which object, which target (no password), how long, MB/s, the result and the reason. A refused drill
(guard, no key in the environment, no such object) never ran and is not logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from outsidein.scope import AwsScope, DrillScope

CHUNK = 1 << 20
MAGIC = b"Salted__"
LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
RESET_SQL = (
    "DO $outsidein$ DECLARE s text; BEGIN FOR s IN SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
    "AND nspname <> 'information_schema' AND pg_has_role(nspowner, 'MEMBER') LOOP "
    "EXECUTE format('DROP SCHEMA %I CASCADE', s); END LOOP; END $outsidein$;\n"
    "CREATE SCHEMA IF NOT EXISTS public;\n"
)


class DrillRefused(Exception):
    """The drill did not start: the guard refused the target, or the key or the object is not there."""


class DrillFailed(Exception):
    """The drill ran and the backup did not restore: wrong key, corrupt object, checksum mismatch, bad rows."""


@dataclass
class DrillRecord:
    """One drill, as the drill log keeps it."""

    at: str  # UTC start, ISO 8601
    source: str
    target: str  # host:port/database, never a password
    result: str  # "success" | "failed"
    reason: str = ""
    duration_s: float = 0.0
    bytes: int = 0  # of the encrypted object read
    sql_bytes: int = 0  # of SQL piped into psql
    mb_per_s: float = 0.0  # object MB (10^6 bytes) restored per second
    checksum: str = ""  # "verified" | "mismatch" | "missing" | ""
    tables: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------------ the guard


def _conninfo(dsn: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    try:
        return {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    except Exception as exc:
        raise DrillRefused(f"target is not a PostgreSQL DSN: {type(exc).__name__}") from None


def _identity(info: dict[str, str]) -> tuple[str, str, str]:
    host = info.get("host", os.environ.get("PGHOST", ""))
    host = "local" if host.lower() in LOCAL_HOSTS or host.startswith("/") else host.lower()
    return host, info.get("port", os.environ.get("PGPORT", "5432")), info.get("dbname", "")


def describe_target(dsn: str) -> str:
    host, port, db = _identity(_conninfo(dsn))
    return f"{host}:{port}/{db}"


def check_target(dsn: str | None, drill: DrillScope) -> dict[str, str]:
    """The target's connection parameters, or DrillRefused: only a database the scope marks scratch, never a source."""
    if not dsn:
        raise DrillRefused("no scratch target: give --target DSN or [backups.drill] target")
    info = _conninfo(dsn)
    host, port, db = _identity(info)
    if not db:
        raise DrillRefused("the target DSN names no database (dbname)")
    if db not in drill.scratch_databases:
        raise DrillRefused(f"target database {db!r} is not marked scratch in the scope "
                           "([backups.drill] scratch_databases): the drill only writes to a scratch database")
    for source in drill.sources:
        if _identity(_conninfo(source)) == (host, port, db):
            raise DrillRefused(f"target {host}:{port}/{db} is a source database ([backups.drill] sources): refused")
    return info


# ------------------------------------------------------------------------------------------------ the object


@dataclass
class BackupObject:
    """An encrypted backup to restore: its chunks, size, name and the checksum published next to it."""

    name: str
    size: int | None
    chunks: Callable[[], Iterator[bytes]]
    checksum: str | None  # hex SHA-256 from the .sha256 beside it, None when none is published
    checksum_name: str | None = None


_HEX = re.compile(r"\b([0-9a-fA-F]{64})\b")


def parse_checksum(text: str) -> str | None:
    """``sha256sum`` output (``<hex>  <file>``) or a bare hex digest."""
    match = _HEX.search(text)
    return match.group(1).lower() if match else None


def checksum_for(key: str, candidates: list[str]) -> str | None:
    """The ``.sha256`` published for ``key``: ``<key>.sha256``, else one in the same folder whose stem is in the
    object's name (the playbook publishes ``postgres/${DATE}.sha256`` for ``db_backup_${DATE}.sql.gz.enc``)."""
    if key + ".sha256" in candidates:
        return key + ".sha256"
    folder, _, base = key.rpartition("/")
    best = None
    for cand in candidates:
        cfolder, _, cbase = cand.rpartition("/")
        stem = cbase[: -len(".sha256")]
        if cfolder == folder and cand.endswith(".sha256") and stem and stem in base and \
                (best is None or len(stem) > len(best.rpartition("/")[2])):
            best = cand
    return best


def _s3_client(aws: AwsScope | None) -> Any:
    from outsidein.aws.collect import AwsCollector

    collector = AwsCollector(aws or AwsScope(), max_workers=2)
    return collector.client("s3", collector.regions[0])


def open_object(source: str, aws: AwsScope | None = None, client: Any = None) -> BackupObject:
    """``s3://bucket/key``, ``s3://bucket/prefix/`` (the newest object under it) or a file path."""
    if source.startswith("s3://"):
        return _open_s3(source, client or _s3_client(aws))
    path = Path(source).expanduser()
    if not path.is_file():
        raise DrillRefused(f"{path}: no such backup file")
    siblings = [str(p) for p in path.parent.iterdir() if p.name.endswith(".sha256")]
    found = checksum_for(str(path), siblings)

    def chunks() -> Iterator[bytes]:
        with path.open("rb") as handle:
            while block := handle.read(CHUNK):
                yield block

    checksum = parse_checksum(Path(found).read_text(encoding="utf-8", errors="replace")) if found else None
    return BackupObject(str(path), path.stat().st_size, chunks, checksum, found)


def _open_s3(source: str, client: Any) -> BackupObject:
    import botocore.exceptions

    bucket, _, key = source[len("s3://"):].partition("/")
    folder = key.rpartition("/")[0] + "/" if "/" in key else ""
    try:
        listing: list[dict[str, Any]] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key if key.endswith("/")
                                                                      or not key else folder):
            listing += page.get("Contents", [])
        keys = [str(o["Key"]) for o in listing]
        if not key or key.endswith("/"):
            backups = [o for o in listing if not str(o["Key"]).endswith((".sha256", "/"))]
            if not backups:
                raise DrillRefused(f"{source}: no backup object under this prefix")
            key = str(max(backups, key=lambda o: (o["LastModified"], o["Key"]))["Key"])
        elif key not in keys:
            raise DrillRefused(f"{source}: no such object")
        size = next((int(o.get("Size", 0)) for o in listing if o["Key"] == key), None)
        found = checksum_for(key, keys)
        checksum = None
        if found:
            body = client.get_object(Bucket=bucket, Key=found)["Body"].read(4096)
            checksum = parse_checksum(body.decode("utf-8", errors="replace"))
    except botocore.exceptions.BotoCoreError as exc:
        raise DrillRefused(f"{source}: cannot read: {exc}") from None
    except botocore.exceptions.ClientError as exc:
        raise DrillRefused(f"{source}: cannot read: {exc.response.get('Error', {}).get('Code', exc)}") from None

    def chunks() -> Iterator[bytes]:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    return BackupObject(f"s3://{bucket}/{key}", size, chunks, checksum, f"s3://{bucket}/{found}" if found else None)


# ------------------------------------------------------------------------------------------------ the stream


def derive(passphrase: bytes, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """OpenSSL ``enc -pbkdf2``: PBKDF2-HMAC-SHA256 -> 32-byte key and 16-byte IV."""
    material = PBKDF2HMAC(algorithm=hashes.SHA256(), length=48, salt=salt, iterations=iterations).derive(passphrase)
    return material[:32], material[32:]


def encrypt(plaintext: bytes, passphrase: bytes, iterations: int = 100_000, salt: bytes | None = None) -> bytes:
    """What ``openssl enc -aes-256-cbc -pbkdf2 -iter N -salt`` writes (for tests and the benchmark's object)."""
    salt = salt or os.urandom(8)
    key, iv = derive(passphrase, salt, iterations)
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return MAGIC + salt + enc.update(padder.update(plaintext) + padder.finalize()) + enc.finalize()


def decrypt_stream(chunks: Iterator[bytes], passphrase: bytes, iterations: int) -> Iterator[bytes]:
    """AES-256-CBC of OpenSSL's enc format, streamed; PKCS#7 padding is checked at the end."""
    header = b""
    for block in chunks:
        header += block
        if len(header) >= 16:
            break
    if len(header) < 16 or not header.startswith(MAGIC):
        raise DrillFailed("not an openssl enc object (no Salted__ header): corrupt, or not encrypted with -salt")
    key, iv = derive(passphrase, header[8:16], iterations)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    rest = header[16:]
    if rest:
        yield unpadder.update(decryptor.update(rest))
    for block in chunks:
        yield unpadder.update(decryptor.update(block))
    try:
        tail = decryptor.finalize()
        yield unpadder.update(tail) + unpadder.finalize()
    except ValueError:
        raise DrillFailed("decryption failed at the end (bad padding): wrong key, or a truncated or corrupt "
                          "object") from None


def gunzip_stream(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """gzip members, streamed (concatenated members too); a damaged stream is a DrillFailed."""
    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
    seen = False
    try:
        for block in chunks:
            while block:
                seen = True
                out = decomp.decompress(block)
                if out:
                    yield out
                if decomp.eof:
                    block = decomp.unused_data
                    decomp = zlib.decompressobj(16 + zlib.MAX_WBITS)
                else:
                    block = b""
        tail = decomp.flush()
        if tail:
            yield tail
    except zlib.error as exc:
        raise DrillFailed(f"the decrypted stream is not gzip ({exc}): wrong key, or a corrupt object") from None
    if not seen:
        raise DrillFailed("the decrypted stream is empty")


# ------------------------------------------------------------------------------------------------ the drill


def _psql_env(info: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The conninfo without its password (which goes in PGPASSWORD, never on a command line)."""
    from psycopg.conninfo import make_conninfo

    password = info.pop("password", None)
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if password:
        env["PGPASSWORD"] = password
    return make_conninfo(**info), env


PSQL_ERROR_MAX = 200
_PSQL_PROBLEM = re.compile(r"\b(?:ERROR|FATAL|PANIC):|\berror:")
# Values psql quotes in an error line (``invalid input syntax for type integer: "…"``, ``value "…" is out of
# range``, any '…' literal); identifiers such as ``relation "customers"`` stay.
_PSQL_VALUES = (re.compile(r"'(?:[^']|'')*'"), re.compile(r'(:\s*)"(?:[^"]|"")*"\s*$'),
                re.compile(r'(\bvalues?\s+)"(?:[^"]|"")*"', re.I))


def psql_error(stderr: str, code: int | None) -> str:
    """What a failed psql says, safe for the drill log: its first ``ERROR:`` line (else its first error line),
    without the DETAIL, CONTEXT and HINT lines (which quote rows of the restored data) or the values it quotes,
    and at most 200 characters."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    first = next((line for line in lines if "ERROR:" in line), None) or \
        next((line for line in lines if _PSQL_PROBLEM.search(line)), None)
    if first is None:
        return f"psql exited {code}"
    first = _PSQL_VALUES[0].sub("'…'", first)
    first = _PSQL_VALUES[1].sub(lambda m: m.group(1) + '"…"', first)
    first = _PSQL_VALUES[2].sub(lambda m: m.group(1) + '"…"', first)
    return first if len(first) <= PSQL_ERROR_MAX else first[:PSQL_ERROR_MAX - 1] + "…"


def _count_rows(info: dict[str, str], password: str | None, drill: DrillScope) -> tuple[dict[str, int], list[str]]:
    import psycopg
    from psycopg import sql

    tables = sorted({*drill.expect, *drill.expect_min})
    counts: dict[str, int] = {}
    problems: list[str] = []
    params = dict(info)
    if password:
        params["password"] = password
    with psycopg.connect(**params, connect_timeout=10, autocommit=True) as conn:  # type: ignore[arg-type]
        for table in tables:
            name = sql.Identifier(*table.split(".", 1))
            try:
                row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(name)).fetchone()
            except psycopg.Error as exc:
                problems.append(f"table {table}: {str(exc).strip().splitlines()[0]}")
                continue
            counts[table] = int(row[0]) if row else 0
    for table, want in sorted(drill.expect.items()):
        if table in counts and counts[table] != want:
            problems.append(f"table {table}: {counts[table]} rows, expected {want}")
    for table, least in sorted(drill.expect_min.items()):
        if table in counts and counts[table] < least:
            problems.append(f"table {table}: {counts[table]} rows, expected at least {least}")
    return counts, problems


def run_drill(obj: BackupObject, target: str, drill: DrillScope, passphrase: bytes,
              psql: str = "psql") -> DrillRecord:
    """Restore ``obj`` into the scratch ``target`` (the guard runs first); returns the record, success or not."""
    info = check_target(target, drill)
    password = info.get("password")
    started_at = datetime.now(UTC)
    record = DrillRecord(at=started_at.isoformat(timespec="seconds"), source=obj.name, target=describe_target(target),
                         result="failed")
    started = time.perf_counter()
    conninfo, env = _psql_env(dict(info))
    # The server ends any statement that outlives the drill; the watchdog ends psql itself (a write to its stdin
    # blocks while it is stuck, so the time checks between chunks alone cannot).
    timeout_ms = max(1, int(drill.max_seconds * 1000))
    env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} -c statement_timeout={timeout_ms}".strip()
    proc = subprocess.Popen([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", conninfo,
                             "-f", "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env)
    assert proc.stdin is not None and proc.stderr is not None
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read() if proc.stderr else b""), daemon=True)
    reader.start()
    expired = threading.Event()

    def expire() -> None:
        if proc.poll() is None:
            expired.set()
            proc.kill()

    watchdog = threading.Timer(drill.max_seconds, expire)
    watchdog.daemon = True
    watchdog.start()
    bound = f"the drill ran past its bound of {drill.max_seconds:g} s"
    digest = hashlib.sha256()

    def counted() -> Iterator[bytes]:
        for block in obj.chunks():
            digest.update(block)
            record.bytes += len(block)
            if time.perf_counter() - started > drill.max_seconds:
                raise DrillFailed(bound)
            yield block

    def psql_said() -> str:
        reader.join(timeout=5)
        if expired.is_set():
            return bound
        return psql_error(b"".join(errors).decode("utf-8", errors="replace"), proc.returncode)

    try:
        try:
            proc.stdin.write(RESET_SQL.encode())
            for block in gunzip_stream(decrypt_stream(counted(), passphrase, drill.iterations)):
                proc.stdin.write(block)
                record.sql_bytes += len(block)
        except BrokenPipeError:
            proc.wait(timeout=30)
            raise DrillFailed(f"psql stopped: {psql_said()}") from None
        actual = digest.hexdigest()
        if obj.checksum is None:
            record.checksum = "missing"
            raise DrillFailed(f"no checksum published next to {obj.name} (.sha256): the object cannot be verified")
        if actual != obj.checksum:
            record.checksum = "mismatch"
            raise DrillFailed(f"checksum mismatch: {obj.checksum_name} says {obj.checksum[:16]}…, the object is "
                              f"{actual[:16]}…")
        record.checksum = "verified"
        proc.stdin.close()  # end of input: psql commits
        code = proc.wait(timeout=max(1.0, drill.max_seconds - (time.perf_counter() - started)))
        if code != 0:
            raise DrillFailed(f"psql failed: {psql_said()}")
        record.tables, problems = _count_rows(info, password, drill)
        if problems:
            raise DrillFailed("restored, but " + "; ".join(problems))
        record.result = "success"
    except DrillFailed as exc:
        record.reason = str(exc)
    except Exception as exc:  # an unexpected error is a failed drill with its reason, never a success
        record.reason = f"{type(exc).__name__}: {exc}"
    finally:
        watchdog.cancel()
        if proc.poll() is None and record.result != "success":
            proc.kill()  # the transaction is never committed
        proc.wait()
        if proc.stdin and not proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        reader.join(timeout=5)
    record.duration_s = round(time.perf_counter() - started, 3)
    record.mb_per_s = round(record.bytes / 1e6 / record.duration_s, 2) if record.duration_s else 0.0
    return record


def append_log(log: Path, record: DrillRecord) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record.to_json(), sort_keys=True) + "\n")


def read_log(log: Path) -> list[dict[str, Any]]:
    """Every record of the drill log (a missing log is no drill yet); a bad line raises ValueError."""
    return [record for _, record in read_log_lines(log)]


def read_log_lines(log: Path) -> list[tuple[int, dict[str, Any]]]:
    """``read_log`` with each record's line number (1-based), to name the line a bad record is on."""
    if not log.exists():
        return []
    records = []
    for number, line in enumerate(log.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{log}:{number}: not JSON ({exc.msg})") from None
        if isinstance(value, dict):
            records.append((number, value))
    return records
