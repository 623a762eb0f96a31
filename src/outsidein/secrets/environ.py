"""Secret-named variables in live process environments (``/proc/<pid>/environ``), masked at collection.

The playbook's runtime rule: secrets are fetched at run time through IAM-role SDK calls, never injected as
environment variables, which every child process inherits and root (or the same user) reads in
``/proc/<pid>/environ``. The collector runs one read-only shell loop on the host (local or over SSH, through
``sudo -n`` when the scope allows) that prints, per process, only the variables named like a secret (or whose
value is a URL with a password); each value is masked before anything is stored. The loop runs under
``env -i`` so its own children carry no inherited secret.

Evidence: ``HostEvidence.files["/proc/*/environ"]``, text lines ``<pid>\\t<process>\\t<NAME>=<masked>``, then
``#read <n>`` and ``#unreadable <n>`` (processes whose environment could not be read), and ``#hidepid <options>``
when /proc hides other users' processes from a collector that is not root. A saved folder supplies
``proc-environ.txt`` (the same lines, or the ``NAME=value`` lines of
``cat /proc/<PID>/environ | tr "\\0" "\\n"``); without it the check is NOT_ASSESSED.
"""

from __future__ import annotations

import re

from outsidein.redact import mask
from outsidein.secrets.facts import ENVIRON_KEY
from outsidein.secrets.rules import placeholder, secret_name

KEY = ENVIRON_KEY  # the evidence key; its parser is secrets.facts.parse_environ (pure)
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
if [ "$(id -u)" != 0 ] && h=$(grep -oE '^[^ ]+ /proc proc [^ ]*hidepid=([12]|invisible|noaccess)' /proc/mounts); then
  echo "#hidepid ${h##* }"
fi
"""


def argv() -> list[str]:
    return ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", f"NAMES={NAMES}", "sh", "-c", SCRIPT]


def is_secret(name: str, value: str) -> bool:
    if not value or name in _BENIGN:
        return False
    if _URL_PASSWORD.match(value):
        return True
    return secret_name(name) and not placeholder(value)


def mask_output(text: str) -> str:
    """The collector's (or an auditor's) output, reduced to secret-named variables with masked values.

    An auditor's raw ``cat /proc/<PID>/environ | tr "\\0" "\\n"`` dump has no ``#read`` line: it is one process
    read (``#read 1`` is added) when it holds at least one ``NAME=value`` line. Anything else without a
    ``#read <n>`` line (an empty file) reads nothing, and the check is NOT_ASSESSED.
    """
    out: list[str] = []
    raw_pairs = counted = False
    for line in text.splitlines():
        if line.startswith("#"):
            out.append(line)
            counted = counted or line.startswith("#read ")
            continue
        parts = line.split("\t", 2)
        pid, process, pair = (parts if len(parts) == 3 else ("", "", line))
        name, sep, value = pair.partition("=")
        raw_pairs = raw_pairs or (len(parts) != 3 and bool(sep) and bool(name.strip()))
        if sep and is_secret(name.strip(), value):
            out.append(f"{pid}\t{process}\t{name.strip()}={mask(value)}")
    if raw_pairs and not counted:
        out.append("#read 1")
    return "\n".join(out) + ("\n" if out else "")
