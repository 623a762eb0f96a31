"""Secret-named variables in live process environments (``/proc/<pid>/environ``), masked at collection.

The playbook's runtime rule: secrets are fetched at run time through IAM-role SDK calls, never injected as
environment variables, which every child process inherits and root (or the same user) reads in
``/proc/<pid>/environ``. The collector runs one read-only shell loop on the host (local or over SSH, through
``sudo -n`` when the scope allows) that prints, per process, only the variables named like a secret (or whose
value is a URL with a password); each value is masked before anything is stored. The loop runs under
``env -i`` so its own children carry no inherited secret.

Evidence: ``HostEvidence.files["/proc/*/environ"]``, text lines ``<pid>\\t<process>\\t<NAME>=<masked>``, then
``#read <n>`` and ``#unreadable <n>`` (processes whose environment could not be read). A saved folder supplies
``proc-environ.txt`` (the same lines, or the ``NAME=value`` lines of
``cat /proc/<PID>/environ | tr "\\0" "\\n"``); without it the check is NOT_ASSESSED.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from outsidein.redact import mask
from outsidein.secrets.rules import placeholder, secret_name

KEY = "/proc/*/environ"
FOLDER_FILE = "proc-environ.txt"
_URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:\s]*:[^/@\s]+@", re.IGNORECASE)
# Not secrets although their names say so (sockets, key ids, agent paths).
_BENIGN = {"SSH_AUTH_SOCK", "GPG_AGENT_INFO", "AWS_ACCESS_KEY_ID", "KEYTIMEOUT", "KRB5CCNAME"}

NAMES = (r"^[A-Za-z_][A-Za-z0-9_.-]*(pass|pwd|secret|token|key|credential|auth)[A-Za-z0-9_.-]*=."
         r"|^[A-Za-z_][A-Za-z0-9_]*=[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:]*:[^/@]+@")
SCRIPT = r"""n=0; u=0
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  c=$(cat "$d/comm" 2>/dev/null) || continue
  if e=$(tr '\000' '\n' < "$d/environ" 2>/dev/null); then
    n=$((n+1))
    printf '%s\n' "$e" | grep -iE "$NAMES" | while IFS= read -r l; do printf '%s\t%s\t%s\n' "$p" "$c" "$l"; done
  elif [ -d "$d" ]; then
    u=$((u+1))
  fi
done
echo "#read $n"
echo "#unreadable $u"
"""


@dataclass(frozen=True)
class EnvSecret:
    pid: int | None
    process: str
    name: str
    masked: str


def argv() -> list[str]:
    return ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"NAMES={NAMES}", "sh", "-c", SCRIPT]


def is_secret(name: str, value: str) -> bool:
    if not value or name in _BENIGN:
        return False
    if _URL_PASSWORD.match(value):
        return True
    return secret_name(name) and not placeholder(value)


def mask_output(text: str) -> str:
    """The collector's (or an auditor's) output, reduced to secret-named variables with masked values."""
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            out.append(line)
            continue
        parts = line.split("\t", 2)
        pid, process, pair = (parts if len(parts) == 3 else ("", "", line))
        name, sep, value = pair.partition("=")
        if sep and is_secret(name.strip(), value):
            out.append(f"{pid}\t{process}\t{name.strip()}={mask(value)}")
    return "\n".join(out) + ("\n" if out else "")


def parse(text: str) -> tuple[list[EnvSecret], int]:
    """The masked variables and how many processes could not be read."""
    found: list[EnvSecret] = []
    unreadable = 0
    for line in text.splitlines():
        if line.startswith("#unreadable "):
            unreadable = int(line.split()[1])
            continue
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t", 2)
        pid, process, pair = (parts if len(parts) == 3 else ("", "", line))
        name, _, value = pair.partition("=")
        found.append(EnvSecret(int(pid) if pid.isdigit() else None, process, name, value))
    return found, unreadable
