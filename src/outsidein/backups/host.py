"""Backup schedules and scripts on a host: what is read (collection) and what it says (parsing).

Collected only for hosts whose scope says they run backups (``backups = true``, ``backup_scripts`` or
``backup_schedule_files``). Saved-output folders use the same names (see docs/evidence.md):

* ``systemctl-list-timers-all.txt``: ``systemctl list-timers --all --no-pager``
* ``crontab-l.txt``: ``sudo crontab -l`` (the backup user's crontab; "no crontab for …" is an empty one)
* ``cron-files.txt``: ``sudo tail -n +1 /etc/crontab /etc/cron.d/* /var/spool/cron/crontabs/*``
* ``systemctl-cat-<unit>.txt``: ``systemctl cat <unit>`` for the service a backup timer activates
* ``files/<absolute path>``: the backup scripts and schedule files

Parsing never raises. The hidden danger the playbook names is the plaintext dump on disk between ``pg_dump``
and ``openssl enc``: a dump command whose output reaches a file (``>``, ``tee``, ``-f``/``--file``) before
any encryption in its pipeline is reported with its line; writing to a tmpfs (``/dev/shm``, ``/run``) is not.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from outsidein.evidence import HostEvidence, Record
from outsidein.host.commands import HOST_PROVISIONING_FILES, PERSISTENCE_FILES, HostCommand
from outsidein.redact import mask, redact_text
from outsidein.secrets import environ

if TYPE_CHECKING:
    from outsidein.host.collect import HostCollector
    from outsidein.scope import HostScope

TIMERS, CRONTAB, CRON_FILES = "systemctl-list-timers-all", "crontab-l", "cron-files"
UNIT_PREFIX = "systemctl-cat-"
CRON_PATHS = "/etc/crontab /etc/cron.d/* /var/spool/cron/crontabs/* /var/spool/cron/* /etc/cron.hourly/* " \
             "/etc/cron.daily/*"
RUN_PARTS = re.compile(r"^/etc/cron\.(hourly|daily|weekly|monthly)/")
BACKUP_COMMANDS: tuple[HostCommand, ...] = (
    HostCommand(TIMERS, ("systemctl", "list-timers", "--all", "--no-pager")),
    HostCommand(CRONTAB, ("crontab", "-l"), sudo=True, ok_exit_codes=(0, 1)),
    HostCommand(CRON_FILES, ("sh", "-c", f"for f in {CRON_PATHS}; do [ -f \"$f\" ] && set -- \"$@\" \"$f\"; done; "
                                          "[ $# -gt 0 ] && tail -n +1 -- \"$@\"; true"), sudo=True),
)
BACKUP_KEYS = frozenset(c.key for c in BACKUP_COMMANDS)
# What makes a schedule line or a timer a backup one.
BACKUP_WORDS = re.compile(r"backup|pg_dump|pg_basebackup|mysqldump|mariadb-dump|mongodump|wal-g|pgbackrest|barman|"
                          r"restic|borg|xtrabackup", re.I)
DUMP_TOOLS = {"pg_dump", "pg_dumpall", "mysqldump", "mariadb-dump", "mongodump", "pg_basebackup", "xtrabackup",
              "mariabackup", "redis-cli"}
ENCRYPTORS = {"openssl", "gpg", "gpg2", "age", "ccrypt", "gocryptfs"}
TMPFS = ("/dev/shm/", "/run/")
SYSTEM_BIN = ("/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/usr/lib/", "/dev/", "/proc/", "/var/log/", "/tmp/")
MAX_SCRIPTS = 32
MIN_PBKDF2_ITERATIONS = 10_000  # openssl enc's own default with -pbkdf2
DAILY_HOURS = 26.0  # a backup timer must have run within this (the playbook's daily full, plus slack)


# ------------------------------------------------------------------------------------------------ collection


_MYSQL_TOOLS = re.compile(r"\b(?:mysql|mysqldump|mysqlpump|mysqladmin|mysqlimport|mysqlcheck|mariadb|mariadb-dump|"
                          r"mariadb-admin|mariadb-import|mariadb-check|xtrabackup|mariabackup|innobackupex)\b")
# -p<value> glued (mysql, mariadb and Percona tools); openssl's -pbkdf2 and -pass are options, not values.
_GLUED_P = re.compile(r"(?<![\w-])(?P<key>-p)(?P<quote>[\"']?)(?!(?:bkdf2|ass(?:in|out)?)\b)(?P<value>[^\s\"']+)"
                      r"(?P=quote)")
_OPTION_VALUES = (
    re.compile(r"(?P<key>--password[= ]\s*)(?P<quote>[\"']?)(?P<value>[^\s\"'-][^\s\"']*)(?P=quote)"),
    re.compile(r"(?P<key>--passphrase[= ]\s*)(?P<quote>[\"']?)(?P<value>[^\s\"'-][^\s\"']*)(?P=quote)"),
    re.compile(r"(?P<key>\bpass:)(?P<quote>)(?P<value>[^\s\"']+)"),
    re.compile(r"(?P<key>\b(?:PGPASSWORD|MYSQL_PWD)=)(?P<quote>[\"']?)(?P<value>[^\s\"';&|]+)(?P=quote)"),
    re.compile(r"(?P<key>\b[a-z][\w+.-]*://[^\s:/@]+:)(?P<quote>)(?P<value>[^\s@/]+)(?=@)", re.I),
)
# openssl enc -k <passphrase> and -K <hex key>: only within an openssl command (curl -k takes no value).
_OPENSSL_COMMAND = re.compile(r"\bopenssl\b[^|;&\n]*")
_OPENSSL_KEY = re.compile(r"(?P<key>(?<!\S)-[kK]\s+)(?P<quote>[\"']?)(?P<value>[^\s\"']+)(?P=quote)")


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("value")
    # A shell reference ($VAR, ${VAR}, $(…)) names where the secret comes from, not the secret; a value masked
    # already (redact_text ran first) keeps its hash.
    if value.startswith("$") or "…[sha256:" in value:
        return match.group(0)
    quote = match.group("quote") or ""
    return f"{match.group('key')}{quote}{mask(value)}{quote}"


def mask_command_secrets(text: str) -> str:
    """Passwords and keys given to a command as option values, assignments or in a URL, masked in place:
    ``-p<pw>`` (mysql), ``--password[= ]<pw>``, ``--passphrase <pw>``, ``-pass pass:<pw>``, openssl ``-k <pw>``
    and ``-K <key>``, ``PGPASSWORD=``/``MYSQL_PWD=`` and ``scheme://user:<pw>@``. The line keeps its shape."""
    for pattern in _OPTION_VALUES:
        text = pattern.sub(_mask_value, text)
    text = _OPENSSL_COMMAND.sub(lambda m: _OPENSSL_KEY.sub(_mask_value, m.group(0)), text)
    return "\n".join(_GLUED_P.sub(_mask_value, line) if _MYSQL_TOOLS.search(line) else line
                      for line in text.split("\n"))


# ``$(`` hidden from outsidein.redact as a ``${…}`` reference (which it leaves alone): ``PGPASSWORD=$(aws …)``
# names where the secret comes from, and masking ``$(aws`` would cut the pipeline the script analysis reads.
_SUBSTITUTION, _SUBSTITUTION_MARK = "$(", "${OUTSIDEIN_SUBSTITUTION_0f3a}"


def scrub(text: str) -> str:
    """Every secret-looking value masked: the generic rules (outsidein.redact), then command options."""
    hidden = text.replace(_SUBSTITUTION, _SUBSTITUTION_MARK)
    return mask_command_secrets(redact_text(hidden).replace(_SUBSTITUTION_MARK, _SUBSTITUTION))


def collect_backup_evidence(collector: HostCollector, evidence: HostEvidence) -> None:
    """Schedules, the units backup timers start, and every backup script they or the scope name."""
    for command in BACKUP_COMMANDS:
        record = collector._command(command)
        if command.key == CRONTAB and not record.ok and "no crontab for" in (record.error or ""):
            record = Record(data="")
        elif record.ok and isinstance(record.data, str):
            record = Record(data=scrub(record.data))
        evidence.commands[command.key] = record
    for unit in backup_units(evidence.commands.get(TIMERS)):
        record = collector._command(HostCommand(UNIT_PREFIX + unit, ("systemctl", "cat", "--no-pager", unit)))
        evidence.commands[UNIT_PREFIX + unit] = Record(data=scrub(record.data)) if record.ok else record
    scope = collector.scope
    for path in scope.backup_schedule_files:
        evidence.files[path] = _scrubbed(collector._file(path))
    for path in script_paths(evidence, scope):
        evidence.files[path] = _scrubbed(collector._file(path))


def _scrubbed(record: Record) -> Record:
    return Record(data=scrub(record.data)) if record.ok and isinstance(record.data, str) else record


def load_backup_folder(scope: HostScope, evidence: HostEvidence) -> None:
    """The same evidence from a folder of saved outputs; what is not there is a reason, never an absence."""
    folder = scope.evidence
    assert folder is not None

    def saved(key: str) -> Record:
        for candidate in (folder / f"{key}.txt", folder / key):
            if candidate.is_file():
                return Record(data=scrub(candidate.read_text(encoding="utf-8", errors="replace")))
        return Record(error=f"not provided: no {key}.txt in {folder}")

    for command in BACKUP_COMMANDS:
        evidence.commands[command.key] = saved(command.key)
    for unit in backup_units(evidence.commands.get(TIMERS)):
        evidence.commands[UNIT_PREFIX + unit] = saved(UNIT_PREFIX + unit)
    files_root = folder / "files"
    for path in (*scope.backup_schedule_files, *script_paths(evidence, scope)):
        copy = files_root / path.lstrip("/")
        evidence.files[path] = (Record(data=scrub(copy.read_text(encoding="utf-8", errors="replace")))
                                if copy.is_file() else Record(error=f"not provided: no files{path} in {folder}"))


def script_paths(evidence: HostEvidence, scope: HostScope) -> list[str]:
    """The scope's scripts, then the ones the backup schedule lines and units run (bounded)."""
    paths = list(scope.backup_scripts)
    for schedule in schedules(evidence, scope.backup_schedule_files):
        paths += schedule.scripts
    return list(dict.fromkeys(paths))[:MAX_SCRIPTS]


# ------------------------------------------------------------------------------------------------ schedules


@dataclass(frozen=True)
class Schedule:
    """One backup schedule: a systemd timer or a cron line."""

    kind: str  # "timer" | "cron"
    where: str  # the timer unit, or "file:line"
    text: str  # the cron line, or the timer's row
    commands: tuple[str, ...] = ()  # what it runs: the cron command, the unit's ExecStart lines
    scripts: tuple[str, ...] = ()  # absolute paths of scripts it runs
    last_run_hours: float | None = None  # timers: hours since the last trigger (None: never, or cron)
    never_ran: bool = False  # timers whose LAST is n/a


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(years?|y|months?|weeks?|w|days?|d|h|hours?|min|minutes?|ms|us|s)\b")
_UNIT_HOURS = {"y": 8766.0, "year": 8766.0, "years": 8766.0, "month": 730.5, "months": 730.5, "w": 168.0,
               "week": 168.0, "weeks": 168.0, "d": 24.0, "day": 24.0, "days": 24.0, "h": 1.0, "hour": 1.0,
               "hours": 1.0, "min": 1 / 60, "minute": 1 / 60, "minutes": 1 / 60, "s": 1 / 3600, "ms": 0.0, "us": 0.0}


def passed_hours(text: str) -> float | None:
    """``1 day 2h ago`` -> 26.0; ``n/a`` or ``-`` -> None."""
    parts = _DURATION.findall(text)
    if not parts or "ago" not in text:
        return None
    return sum(float(n) * _UNIT_HOURS[unit] for n, unit in parts)


@dataclass(frozen=True)
class TimerRow:
    unit: str
    activates: str
    last: str
    passed: str
    text: str


_PASSED = re.compile(r"((?:\d+(?:\.\d+)?\s*[a-z]+\s+)+ago|n/a|-)\s*$")


def parse_timers(text: str) -> list[TimerRow]:
    """``systemctl list-timers --all`` rows: the unit is the ``*.timer`` word, PASSED the words before it."""
    lines = text.splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.startswith("NEXT") and "UNIT" in line), None)
    if header_at is None:
        return []
    rows = []
    for line in lines[header_at + 1:]:
        words = line.split()
        at = next((i for i, word in enumerate(words) if word.endswith(".timer")), None)
        if at is None:
            continue
        unit, activates = words[at], words[at + 1] if at + 1 < len(words) else ""
        before = line[:line.rfind(unit)].rstrip()
        match = _PASSED.search(before)
        passed = match.group(1) if match else ""
        last = "n/a" if passed in ("n/a", "-", "") else before[:match.start() if match else None].strip()
        rows.append(TimerRow(unit=unit, activates=activates, last=last, passed=passed, text=line.strip()))
    return rows


def backup_units(record: Record | None) -> list[str]:
    """The services backup timers activate (to read their ExecStart)."""
    if record is None or not record.ok or not isinstance(record.data, str):
        return []
    return [row.activates for row in parse_timers(record.data)
            if row.activates and BACKUP_WORDS.search(row.unit + " " + row.activates)]


_REDIRECTS = (">", ">>", "1>", "1>>", "2>", "2>>", "&>", "&>>", "<")


def command_scripts(command: str) -> list[str]:
    """Absolute paths a command runs (not redirect targets, not system binaries or logs)."""
    try:
        tokens = shlex.split(command, comments=True)
    except ValueError:
        tokens = command.split()
    paths = []
    for i, token in enumerate(tokens):
        if token.startswith("/") and (i == 0 or tokens[i - 1] not in _REDIRECTS) \
                and not token.startswith(SYSTEM_BIN) and not any(token.startswith(r) for r in (">", "<")):
            paths.append(token.rstrip(";&"))
    return paths


_CRON_ENV = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=")


def _cron_lines(source: str, text: str, system: bool) -> list[Schedule]:
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or _CRON_ENV.match(stripped):
            continue
        fields = stripped.split()
        if fields[0].startswith("@"):
            command_fields = fields[2:] if system else fields[1:]
        else:
            command_fields = fields[6:] if system else fields[5:]
        command = " ".join(command_fields)
        if command and BACKUP_WORDS.search(command):
            out.append(Schedule("cron", f"{source}:{number}", stripped, (command,), tuple(command_scripts(command))))
    return out


def _split_tail(text: str) -> list[tuple[str, str]]:
    """``tail -n +1 a b`` output: (file, text) per ``==> file <==`` header."""
    parts: list[tuple[str, str]] = []
    current: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        match = re.match(r"^==> (.+) <==$", line)
        if match:
            if current is not None:
                parts.append((current, "\n".join(body)))
            current, body = match.group(1), []
        elif current is not None:
            body.append(line)
    if current is not None:
        parts.append((current, "\n".join(body)))
    return parts


def _exec_lines(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        match = re.match(r"^\s*Exec(?:Start|StartPre|StartPost)\s*=\s*[-@:+!]*(.+)$", line)
        if match:
            out.append(match.group(1).strip())
    return out


def schedules(evidence: HostEvidence, schedule_files: tuple[str, ...] = ()) -> list[Schedule]:
    """Every backup timer and cron line the evidence shows."""
    found: list[Schedule] = []
    timers = evidence.commands.get(TIMERS)
    if timers is not None and timers.ok and isinstance(timers.data, str):
        for row in parse_timers(timers.data):
            if not BACKUP_WORDS.search(row.unit + " " + row.activates):
                continue
            unit = evidence.commands.get(UNIT_PREFIX + row.activates)
            commands = tuple(_exec_lines(unit.data)) if unit is not None and unit.ok and isinstance(unit.data, str) \
                else ()
            scripts = tuple(p for c in commands for p in command_scripts(c))
            never = row.last in ("n/a", "-", "") or row.passed in ("n/a", "-", "")
            found.append(Schedule("timer", row.unit, row.text, commands, scripts,
                                  None if never else passed_hours(row.passed), never))
    crontab = evidence.commands.get(CRONTAB)
    if crontab is not None and crontab.ok and isinstance(crontab.data, str):
        found += _cron_lines("crontab -l", crontab.data, system=False)
    files = evidence.commands.get(CRON_FILES)
    if files is not None and files.ok and isinstance(files.data, str):
        for path, text in _split_tail(files.data):
            period = RUN_PARTS.match(path)
            if period:  # a script run-parts starts: the file is the schedule and the command
                if BACKUP_WORDS.search(path) or BACKUP_WORDS.search(text):
                    found.append(Schedule("cron", path, f"run-parts /etc/cron.{period.group(1)}", (text,)))
                continue
            found += _cron_lines(path, text, system=not path.startswith("/var/spool/"))
    for path in schedule_files:
        record = evidence.files.get(path)
        if record is None or not record.ok or not isinstance(record.data, str):
            continue
        if path.endswith((".service", ".timer")):
            commands = tuple(c for c in _exec_lines(record.data) if BACKUP_WORDS.search(c) or path)
            found.append(Schedule("timer", path, path, commands, tuple(p for c in commands
                                                                        for p in command_scripts(c))))
        else:
            found += _cron_lines(path, record.data, system=path.startswith("/etc/"))
    return found


# ------------------------------------------------------------------------------------------------ scripts


@dataclass(frozen=True)
class ScriptIssue:
    """A line of a backup script (or schedule command) that breaks the playbook's encrypted workflow."""

    path: str
    line: int
    kind: str  # "plaintext" | "no-encryption" | "weak-encryption"
    text: str
    detail: str


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with backslash continuations joined and whole-line comments dropped: (first line number, text)."""
    out: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not buffer:
            start = number
            if line.lstrip().startswith("#"):
                continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        if buffer.strip():
            out.append((start, buffer.strip()))
        buffer = ""
    if buffer.strip():
        out.append((start, buffer.strip()))
    return out


def _strip_substitutions(line: str) -> str:
    """``$(…)`` and backticks replaced by a placeholder: their pipes are not the line's pipeline."""
    out, depth, i = [], 0, 0
    while i < len(line):
        if line.startswith("$(", i):
            depth += 1
            i += 2
            if depth == 1:
                out.append("SUBST")
            continue
        if depth and line[i] == "(":
            depth += 1
        elif depth and line[i] == ")":
            depth -= 1
            i += 1
            continue
        if not depth:
            out.append(line[i])
        i += 1
    return re.sub(r"`[^`]*`", "SUBST", "".join(out))


def _tokens(segment: str) -> list[str]:
    try:
        return shlex.split(segment, comments=True)
    except ValueError:
        return segment.split()


def _program(tokens: list[str]) -> str | None:
    """The command a segment runs (after VAR=value assignments, sudo, env, nice, ionice, time)."""
    for token in tokens:
        if "=" in token and not token.startswith("-") and _CRON_ENV.match(token):
            continue
        name = token.rsplit("/", 1)[-1]
        if name in ("sudo", "env", "nice", "ionice", "time", "exec", "nohup", "timeout", "SUBST"):
            continue
        return name
    return None


def _redirect_target(tokens: list[str]) -> str | None:
    for i, token in enumerate(tokens):
        if token in (">", ">>", "1>", "1>>", "&>", "&>>") and i + 1 < len(tokens):
            return tokens[i + 1]
        match = re.match(r"^(?:1|&)?>>?(\S+)$", token)
        if match and not token.startswith("2>"):
            return match.group(1)
    return None


def _dump_file_option(tokens: list[str]) -> str | None:
    for i, token in enumerate(tokens):
        if token in ("-f", "--file", "--result-file", "-r", "--out", "-o", "-D", "--pgdata") and i + 1 < len(tokens):
            return tokens[i + 1]
        for prefix in ("--file=", "--result-file=", "--out=", "--pgdata="):
            if token.startswith(prefix):
                return token[len(prefix):]
    return None


def _on_disk(path: str) -> bool:
    return path not in ("-", "/dev/null", "/dev/stdout") and not path.startswith(TMPFS)


def _is_encryption(tokens: list[str]) -> bool:
    program = _program(tokens)
    if program == "openssl":
        rest = tokens[tokens.index(next(t for t in tokens if t.rsplit("/", 1)[-1] == "openssl")) + 1:]
        return bool(rest) and (rest[0] == "enc" or rest[0].startswith(("aes", "-aes"))) and "-d" not in rest
    if program in ("gpg", "gpg2"):
        return any(t in ("-c", "--symmetric", "-e", "--encrypt") or re.match(r"^-[a-zA-Z]*[ce][a-zA-Z]*$", t)
                   for t in tokens) and "-d" not in tokens and "--decrypt" not in tokens
    return program in ("age", "ccrypt")


def encryption_weakness(tokens: list[str]) -> str | None:
    """Why an encryption command is weaker than AES-256 with PBKDF2, or None."""
    program = _program(tokens)
    joined = " ".join(tokens).lower()
    if program == "openssl":
        if "pass:" in joined:
            return "openssl enc takes the passphrase on the command line (-pass pass:…): it shows in ps and the script"
        cipher = next((t.lower() for t in tokens if re.match(r"^-(aes|des|bf|rc|cast|camellia|aria|sm4|chacha|seed|"
                                                             r"idea)", t.lower())), None)
        if cipher is None and len(tokens) > 1 and tokens[1].lower().startswith("aes"):
            cipher = "-" + tokens[1].lower()
        if cipher is None:
            return "openssl enc without an explicit -aes-256-* cipher"
        if not re.match(r"^-aes-?256", cipher):
            return f"openssl enc {cipher}: weaker than AES-256"
        if "-nosalt" in tokens:
            return "openssl enc -nosalt: no salt"
        iters = next((tokens[i + 1] for i, t in enumerate(tokens) if t == "-iter" and i + 1 < len(tokens)), None)
        if "-pbkdf2" not in tokens and iters is None:
            return "openssl enc without -pbkdf2: the key comes from one EVP_BytesToKey round"
        if iters is not None and iters.isdigit() and int(iters) < MIN_PBKDF2_ITERATIONS:
            return f"openssl enc -iter {iters}: fewer than {MIN_PBKDF2_ITERATIONS} PBKDF2 iterations"
        return None
    if program in ("gpg", "gpg2"):
        symmetric = any(t in ("-c", "--symmetric") or re.match(r"^-[a-zA-Z]*c[a-zA-Z]*$", t) for t in tokens)
        if not symmetric:
            return None  # public-key encryption: the recipient's key decides, not a passphrase
        algo = next((tokens[i + 1] for i, t in enumerate(tokens) if t == "--cipher-algo" and i + 1 < len(tokens)),
                    next((t.split("=", 1)[1] for t in tokens if t.startswith("--cipher-algo=")), None))
        if algo is None:
            return "gpg --symmetric without --cipher-algo AES256 (the default cipher is AES-128)"
        if algo.upper() not in ("AES256",):
            return f"gpg --cipher-algo {algo}: weaker than AES-256"
        if "--passphrase" in joined and "--passphrase-file" not in joined and "--passphrase-fd" not in joined:
            return "gpg --passphrase on the command line: it shows in ps and the script"
    return None


def _shown(line: str) -> str:
    """A script line as a finding may quote it: secrets masked first, then cut to 200 characters."""
    return scrub(line)[:200]


def analyse_script(path: str, text: str) -> list[ScriptIssue]:
    """Plaintext dumps on disk, and encryption that is missing or weak, with the line that shows it."""
    issues: list[ScriptIssue] = []
    dumps: list[tuple[int, str]] = []
    encrypts = False
    for number, line in _logical_lines(text):
        bare = _strip_substitutions(line)
        for statement in re.split(r"\s*(?:;|&&|\|\|)\s*", bare):
            segments = [_tokens(s) for s in re.split(r"(?<!\|)\|(?!\|)", statement)]
            programs = [_program(tokens) for tokens in segments]
            dump_at = next((i for i, p in enumerate(programs) if p in DUMP_TOOLS), None)
            for tokens in segments:
                if _is_encryption(tokens):
                    encrypts = True
                    weak = encryption_weakness(tokens)
                    if weak:
                        issues.append(ScriptIssue(path, number, "weak-encryption", _shown(line), weak))
            if dump_at is None:
                continue
            dumps.append((number, line))
            dump_file = _dump_file_option(segments[dump_at])
            if dump_file and _on_disk(dump_file):
                issues.append(ScriptIssue(path, number, "plaintext", _shown(line),
                                          f"{programs[dump_at]} writes its output to {dump_file} unencrypted"))
                continue
            for i in range(dump_at, len(segments)):
                if _is_encryption(segments[i]):
                    break
                target = _redirect_target(segments[i])
                if programs[i] == "tee":
                    target = next((t for t in segments[i][1:] if not t.startswith("-")), target)
                if target and _on_disk(target):
                    through = " | ".join(p or "?" for p in programs[dump_at:i + 1])
                    issues.append(ScriptIssue(path, number, "plaintext", _shown(line),
                                              f"`{through}` writes the unencrypted dump to {target} before "
                                              "encryption"))
                    break
    if dumps and not encrypts:
        number, line = dumps[0]
        issues.append(ScriptIssue(path, number, "no-encryption", _shown(line),
                                  "the dump is never encrypted (no openssl enc, gpg or age in the script)"))
    return issues


# A scheduler that is not there is no schedule, not missing evidence.
NO_SCHEDULER = re.compile(r"command not found|not been booted with systemd|no crontab for", re.I)
OTHER_LAYER_FILES = frozenset((*PERSISTENCE_FILES, *HOST_PROVISIONING_FILES, environ.KEY))


def is_schedule_file(path: str) -> bool:
    return path.endswith((".timer", ".service")) or path.startswith(("/etc/cron.d/", "/var/spool/cron/")) or \
        ("cron" in path.rsplit("/", 1)[-1] and not RUN_PARTS.match(path))


@dataclass
class BackupHostFacts:
    """One backup host's schedules and scripts, parsed."""

    schedules: list[Schedule] = field(default_factory=list)
    scripts: dict[str, str] = field(default_factory=dict)  # path -> text (absent files are left out)
    absent_scripts: list[str] = field(default_factory=list)
    issues: list[ScriptIssue] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)  # "schedule" / "scripts" -> why unknown


def parse_backup_host(evidence: HostEvidence) -> BackupHostFacts | None:
    """None when the host was not collected as a backup host (no schedule evidence at all, host reached)."""
    if evidence.error:  # an unreachable host keeps no commands: whether it runs backups is unknown too
        return BackupHostFacts(missing={"schedule": evidence.error, "scripts": evidence.error})
    if not any(k in evidence.commands for k in BACKUP_KEYS):
        return None
    facts = BackupHostFacts()
    unread = [f"{key}: {evidence.commands[key].error}" for key in sorted(BACKUP_KEYS)
              if key in evidence.commands and not evidence.commands[key].ok
              and not NO_SCHEDULER.search(evidence.commands[key].error or "")]
    schedule_files = tuple(p for p in evidence.files if is_schedule_file(p))
    facts.schedules = schedules(evidence, schedule_files)
    if unread and not facts.schedules:
        facts.missing["schedule"] = "; ".join(unread)
    script_records = {path: rec for path, rec in evidence.files.items()
                      if path not in schedule_files and path not in OTHER_LAYER_FILES}
    errors = []
    for path, record in sorted(script_records.items()):
        if not record.ok:
            errors.append(f"{path}: {record.error}")
        elif record.data is None:
            facts.absent_scripts.append(path)
        elif isinstance(record.data, str):
            facts.scripts[path] = record.data
    for schedule in facts.schedules:
        for number, command in enumerate(schedule.commands, start=1):
            facts.issues += analyse_script(f"{schedule.where} (command {number})" if schedule.kind == "timer"
                                           else schedule.where, command)
    for path, text in facts.scripts.items():
        facts.issues += analyse_script(path, text)
    if errors and not facts.scripts:
        facts.missing["scripts"] = "; ".join(errors)
    elif not facts.scripts and not any(s.commands for s in facts.schedules):
        facts.missing["scripts"] = "no backup script found: name it in the host's backup_scripts, or the schedule " \
                                   "must run it by absolute path"
    return facts
