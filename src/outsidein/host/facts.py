"""A host's raw evidence parsed into typed facts: rulesets, UFW, listening sockets, boot state, provisioning.

``parse_host`` never raises. What could not be read is a reason in ``HostFacts.missing``, keyed by the
evidence it concerns (a command key such as ``iptables-save``, a file path, or ``probes`` /
``provisioning``); checks that need it are then NOT_ASSESSED with that reason.

A command that is *not installed* on the host (``command not found``) is not missing evidence: no ``nft``
binary means no native nftables rules to read (iptables-nft rules still show in iptables-save), no ``ufw``
means UFW is not in use. Any other failure (sudo refused, a file not provided, an unparsable line) is.
When ``ip6tables-save`` is missing but iptables is the nf_tables backend and ``nft list ruleset`` was read,
the IPv6 rules are taken from the nft output, which shows them too.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from outsidein.evidence import HostEvidence, Record
from outsidein.host import firewall as fw
from outsidein.host.commands import COMMAND_KEYS, HOST_PROVISIONING_FILES, PERSISTENCE_FILES
from outsidein.secrets.facts import ENVIRON_KEY, EnvironReading, parse_environ

IPTABLES, IP6TABLES, NFT = "iptables-save", "ip6tables-save", "nft-list-ruleset"
UFW, SS = "ufw-status-verbose", "ss-tlnp"
BOOT_KEYS = {"ufw": "systemctl-is-enabled-ufw", "nftables": "systemctl-is-enabled-nftables",
             "netfilter-persistent": "systemctl-is-enabled-netfilter-persistent"}
PROBES, PROVISIONING = "probes", "provisioning"
RULES_V4, RULES_V6, NFTABLES_CONF, UFW_CONF = PERSISTENCE_FILES
NOT_INSTALLED = "not installed"
ENABLED_STATES = {"enabled", "static", "generated", "alias"}


@dataclass(frozen=True)
class Socket:
    """One listening TCP socket from ``ss -tlnp``."""

    address: str  # "0.0.0.0", "::", "*", "10.0.0.5" (no brackets, no %interface)
    port: int
    process: str | None
    line: int
    interface: str | None = None  # bound to a device (``0.0.0.0%eth0``)

    @property
    def shown(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}{'%' + self.interface if self.interface else ''}:{self.port}"

    @property
    def families(self) -> tuple[str, ...]:
        if self.address == "*":
            return (fw.IPV4, fw.IPV6)  # a dual-stack IPv6 socket
        return (fw.IPV6,) if ":" in self.address else (fw.IPV4,)

    @property
    def wildcard(self) -> bool:
        return self.address in ("*", "0.0.0.0", "::")

    @property
    def local_only(self) -> bool:
        """Loopback or link-local: not reachable from beyond the host or its link."""
        if self.interface == fw.LOOPBACK:
            return True
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError:
            return False
        return ip.is_loopback or ip.is_link_local

    def destinations(self, family: str) -> fw.IntervalSet:
        if self.wildcard:
            return fw.EXTERNAL[family]
        value = int(ipaddress.ip_address(self.address))
        return ((value, value),)


@dataclass(frozen=True)
class Probe:
    """A TCP connection attempt from the vantage point where outsidein ran."""

    port: int
    address: str
    open: bool
    state: str  # open, refused, filtered

    @property
    def family(self) -> str | None:
        try:
            return fw.IPV4 if ipaddress.ip_address(self.address).version == 4 else fw.IPV6
        except ValueError:
            return None


@dataclass(frozen=True)
class ProvisioningHit:
    path: str
    line: int
    text: str  # the command or module call, not the whole line
    what: str  # what it does to the firewall


@dataclass
class HostFacts:
    name: str
    environment: str | None
    origin: str = "local"
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    iptables: fw.Ruleset | None = None  # IPv4 iptables view (None: not in use or missing)
    ip6tables: fw.Ruleset | None = None
    nft: fw.Ruleset | None = None
    installed: dict[str, bool] = field(default_factory=dict)  # command key -> the tool exists on the host
    ufw: fw.UfwStatus | None = None
    sockets: list[Socket] | None = None
    boot: dict[str, str] = field(default_factory=dict)  # service -> systemctl state, or NOT_INSTALLED
    files: dict[str, str | None] = field(default_factory=dict)  # persistence file -> text (None: absent)
    provisioning_read: list[str] = field(default_factory=list)
    provisioning_errors: dict[str, str] = field(default_factory=dict)
    provisioning_hits: list[ProvisioningHit] = field(default_factory=list)
    probes: dict[int, Probe] = field(default_factory=dict)
    ssh_allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    ipv4: fw.Pipeline | None = None
    ipv6: fw.Pipeline | None = None
    ipv6_missing: str | None = None  # why the IPv6 rules are unknown
    process_environ: EnvironReading | None = None  # masked secret-named variables; processes (not) read
    backups: Any = None  # layer 9: outsidein.backups.host.BackupHostFacts, None when not a backup host

    def pipeline(self, family: str) -> fw.Pipeline | None:
        return self.ipv4 if family == fw.IPV4 else self.ipv6

    def allowed(self, family: str) -> fw.IntervalSet:
        version = 4 if family == fw.IPV4 else 6
        return fw.iset((int(n.network_address), int(n.broadcast_address)) for n in self.ssh_allowed
                       if n.version == version)


# ------------------------------------------------------------------------------------------------ parsing


def _text(evidence: HostEvidence, key: str, missing: dict[str, str]) -> str | None:
    """The command's output, None when missing (reason recorded) or NOT_INSTALLED when the tool is absent."""
    rec = evidence.commands.get(key)
    if rec is None:
        missing[key] = f"{key} was not collected"
        return None
    if rec.error:
        if "command not found" in rec.error.lower():
            return NOT_INSTALLED
        missing[key] = rec.error
        return None
    if not isinstance(rec.data, str):
        missing[key] = f"{key}: the evidence is not text"
        return None
    return rec.data


_SS_LINE = re.compile(r"^(?:(?:tcp|tcp6)\s+)?(\S+)\s+\d+\s+\d+\s+(\S+)\s+(\S+)(?:\s+(.*))?$")


def parse_ss(text: str) -> list[Socket]:
    """Parse ``ss -tlnp``; ParseError names the first line that is not a socket."""
    out: list[Socket] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("State", "Netid", "Recv-Q")):
            continue
        match = _SS_LINE.match(line)
        if not match:
            raise fw.ParseError(f"line {number}: `{line[:120]}` is not an `ss -tlnp` socket line")
        local, users = match.group(2), match.group(4) or ""
        host, _, port_text = local.rpartition(":")
        if not port_text.isdigit() or not host:
            raise fw.ParseError(f"line {number}: cannot read the local address `{local}`")
        interface = None
        if "%" in host:
            host, _, interface = host.partition("%")
            if host.startswith("[") and interface.endswith("]"):
                interface = interface[:-1]
                host += "]"
        host = host.strip("[]")
        if host != "*":
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise fw.ParseError(f"line {number}: `{host}` is not an address") from None
        names = re.findall(r'\("([^"]+)",pid=', users)
        out.append(Socket(host, int(port_text), names[0] if names else None, number, interface))
    return out


def _boot_state(rec: Record | None, key: str, missing: dict[str, str]) -> str | None:
    if rec is None:
        missing[key] = f"{key} was not collected"
        return None
    if rec.error:
        error = rec.error.lower()
        if "command not found" in error:
            missing[key] = f"{rec.error} (no systemd: boot enablement unknown)"
            return None
        if "no such file" in error or "not-found" in error or "does not exist" in error:
            return NOT_INSTALLED
        missing[key] = rec.error
        return None
    state = str(rec.data or "").strip().splitlines()
    if not state:
        missing[key] = f"{key}: empty output"
        return None
    return NOT_INSTALLED if state[0].strip() == "not-found" else state[0].strip()


def _probes(evidence: HostEvidence, facts: HostFacts) -> None:
    for key, rec in evidence.probes.items():
        data: Any = rec.data
        if rec.error or not isinstance(data, dict):
            facts.notes.append(f"probe {key}: {rec.error or 'malformed'}")
            continue
        try:
            port = int(data.get("port") or key.partition("/")[2])
            is_open = bool(data.get("open"))
            state = str(data.get("state") or ("open" if is_open else "filtered"))
            facts.probes[port] = Probe(port, str(data.get("address", "")), is_open, state)
        except (TypeError, ValueError):
            facts.notes.append(f"probe {key}: malformed")
    if not facts.probes:
        facts.missing[PROBES] = "no TCP probe from a vantage point (set probe_address in the scope to observe, " \
                                "not only infer, what is reachable)"


# ---------------------------------------------------------------------------------- provisioning scanning

FIREWALL_UNITS = {"ufw", "nftables", "netfilter-persistent", "iptables", "ip6tables", "firewalld"}
_IPT = {"iptables", "ip6tables", "iptables-legacy", "iptables-nft", "ip6tables-legacy", "ip6tables-nft"}
_WORD = re.compile(r"[^\s\"'`\[\],{}()]+")
_DESCRIPTIVE = re.compile(r"^\s*-?\s*(name|description|msg|comment|debug)\s*:", re.I)
_SEGMENTS = re.compile(r"&&|\|\||[;|]|[\"']\s*,\s*[\"']")  # shell separators; items of a quoted list


def _unit(word: str) -> str:
    return word.removesuffix(".service").split("@")[0]


def _command_hits(segment: str) -> list[tuple[str, str]]:
    """(command text, what it does) for firewall-disabling commands in one shell command."""
    words = _WORD.findall(segment)
    while words and words[0] in ("-", "sudo", "run", "run:", "cmd:", "shell:", "command:", "inline", "="):
        words = words[1:]
    hits: list[tuple[str, str]] = []
    if words[:1] in (["echo"], ["printf"], ["logger"]):
        return hits  # text being printed, not run
    for pos, word in enumerate(words):
        prog = word.rsplit("/", 1)[-1]
        args = words[pos + 1:]
        plain = [a for a in args if not a.startswith("-")]
        text = " ".join(words[pos:pos + 1 + min(len(args), 6)])
        if prog == "ufw" and plain[:1] in (["disable"], ["reset"]):
            hits.append((text, "disables UFW" if plain[0] == "disable" else "resets UFW (disables it, deletes its "
                                                                             "rules)"))
        elif prog in _IPT:
            if any(a in ("-F", "--flush") for a in args):
                hits.append((text, f"flushes the {prog.split('-')[0]} rules"))
            elif any(a in ("-X", "--delete-chain") for a in args):
                hits.append((text, f"deletes {prog.split('-')[0]} chains"))
            for flag in ("-P", "--policy"):
                if flag in args:
                    at = args.index(flag)
                    if [a.upper() for a in args[at + 1:at + 3]] == ["INPUT", "ACCEPT"]:
                        hits.append((text, "sets the INPUT policy to ACCEPT"))
        elif prog == "nft" and len(plain) >= 2 and plain[0] in ("flush", "delete") and \
                plain[1] in ("ruleset", "table"):
            hits.append((text, "flushes the nftables ruleset" if plain[1] == "ruleset" else "removes nftables rules"))
        elif prog == "systemctl" and plain and plain[0] in ("stop", "disable", "mask", "kill"):
            units = sorted({_unit(a) for a in plain[1:]} & FIREWALL_UNITS)
            if units:
                hits.append((text, f"{plain[0]}s {', '.join(units)}"))
        elif prog == "service" and len(plain) >= 2 and _unit(plain[0]) in FIREWALL_UNITS and plain[1] == "stop":
            hits.append((text, f"stops {_unit(plain[0])}"))
        elif prog == "update-rc.d" and len(plain) >= 2 and _unit(plain[0]) in FIREWALL_UNITS and \
                plain[1] in ("disable", "remove"):
            hits.append((text, f"disables {_unit(plain[0])} at boot"))
    return hits


_MODULE = re.compile(r"^(\s*)(-\s+)?((?:community\.general\.|ansible\.builtin\.)?"
                     r"(ufw|systemd|systemd_service|service|iptables)):\s*(.*)$")


def _module_args(lines: list[str], index: int, indent: int, inline: str) -> dict[str, str]:
    args: dict[str, str] = {}
    for key, value in re.findall(r"(\w+)=(\S+)", inline):
        args[key] = value.strip("'\"")
    if inline.strip() and not args:
        return args
    for line in lines[index + 1:]:
        if not line.strip() or line.strip().startswith("#"):
            continue
        if len(line) - len(line.lstrip()) <= indent:
            break
        m = re.match(r"\s*(\w+)\s*:\s*(.*)$", line)
        if m:
            args[m.group(1)] = m.group(2).strip().strip("'\"")
    return args


def _ansible_hit(lines: list[str], index: int) -> tuple[str, str] | None:
    m = _MODULE.match(lines[index])
    if not m:
        return None
    indent = len(m.group(1)) + len(m.group(2) or "")
    module, args = m.group(4), _module_args(lines, index, indent, m.group(5))
    state, falsy = args.get("state", "").lower(), ("false", "no", "0")
    shown = f"{m.group(3)}: " + " ".join(f"{k}={v}" for k, v in args.items())
    if module == "ufw" and state in ("disabled", "reset"):
        return shown, "disables UFW" if state == "disabled" else "resets UFW (disables it, deletes its rules)"
    if module in ("systemd", "systemd_service", "service") and _unit(args.get("name", "")) in FIREWALL_UNITS:
        unit = _unit(args["name"])
        if state == "stopped":
            return shown, f"stops {unit}"
        if args.get("enabled", "").lower() in falsy:
            return shown, f"disables {unit} at boot"
        if args.get("masked", "").lower() in ("true", "yes", "1"):
            return shown, f"masks {unit}"
    if module == "iptables":
        if args.get("flush", "").lower() in ("true", "yes", "1"):
            return shown, "flushes the iptables rules"
        if args.get("chain", "").upper() == "INPUT" and args.get("policy", "").upper() == "ACCEPT":
            return shown, "sets the INPUT policy to ACCEPT"
    return None


def scan_provisioning(path: str, text: str) -> list[ProvisioningHit]:
    """Lines of a cloud-init, Ansible, Packer or shell file that disable or flush the host firewall."""
    hits: list[ProvisioningHit] = []
    lines = text.splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "//")) or _DESCRIPTIVE.match(line):
            continue
        found = _ansible_hit(lines, index)
        if found:
            hits.append(ProvisioningHit(path, index + 1, *found))
            continue
        for segment in _SEGMENTS.split(stripped):
            for command, what in _command_hits(segment):
                hits.append(ProvisioningHit(path, index + 1, command, what))
    return hits


def _provisioning(evidence: HostEvidence, facts: HostFacts) -> None:
    sources: dict[str, Record] = dict(evidence.provisioning)
    for path in HOST_PROVISIONING_FILES:
        rec = evidence.files.get(path)
        if rec is not None and (rec.error or rec.data is not None):
            sources[f"{facts.name}:{path}"] = rec
    for path, rec in sorted(sources.items()):
        if rec.error or not isinstance(rec.data, str):
            facts.provisioning_errors[path] = rec.error or "not text"
            continue
        facts.provisioning_read.append(path)
        facts.provisioning_hits.extend(scan_provisioning(path, rec.data))
    if not facts.provisioning_read:
        why = "; ".join(r if p in r else f"{p}: {r}" for p, r in facts.provisioning_errors.items())
        facts.missing[PROVISIONING] = why or "no provisioning files in scope (cloud-init, Ansible, Packer, shell) " \
                                             "and no cloud-init user-data on the host"


# ------------------------------------------------------------------------------------------- the host


def _ruleset(facts: HostFacts, key: str, text: str | None, family: str | None) -> fw.Ruleset | None:
    facts.installed[key] = text != NOT_INSTALLED
    if text is None or text == NOT_INSTALLED:
        return None
    try:
        rules = fw.parse_iptables_save(text, family) if family else fw.parse_nft(text)
    except fw.ParseError as exc:
        facts.missing[key] = f"{key} output not parsable: {exc}"
        return None
    if rules.legacy_present:
        facts.missing[key] = f"{key} warns that iptables-legacy tables are loaded too, and it does not show them " \
                             f"(collect `{key.replace('-save', '-legacy-save')}` as well)"
        return None
    return rules


def parse_host(evidence: HostEvidence) -> HostFacts:
    """Everything the layer-2 checks read about one host (never raises)."""
    facts = HostFacts(evidence.name, evidence.environment, evidence.origin)
    try:
        from outsidein.backups.host import parse_backup_host

        facts.backups = parse_backup_host(evidence)
    except Exception as exc:  # a backup host whose evidence cannot be parsed is not assessed, never PASS
        facts.missing["backups"] = f"backup evidence could not be parsed ({type(exc).__name__}: {exc})"
    try:
        _process_environ(evidence, facts)
        _parse(evidence, facts)
    except Exception as exc:  # a parser bug must cost one host's assessment, not the audit
        reason = f"evidence could not be parsed ({type(exc).__name__}: {exc})"
        for key in (*COMMAND_KEYS, PROBES, PROVISIONING, ENVIRON_KEY):
            facts.missing.setdefault(key, reason)
        facts.ipv4 = facts.ipv6 = None
    return facts


def _process_environ(evidence: HostEvidence, facts: HostFacts) -> None:
    """Secret-named variables of running processes (layer 5), already masked by the collector."""
    rec = evidence.files.get(ENVIRON_KEY)
    if evidence.error or rec is None or not rec.ok or not isinstance(rec.data, str):
        facts.missing[ENVIRON_KEY] = evidence.error or (rec.error if rec is not None and rec.error else
                                                        f"{ENVIRON_KEY} was not collected")
        return
    facts.process_environ = parse_environ(rec.data)


def _parse(evidence: HostEvidence, facts: HostFacts) -> None:
    missing = facts.missing
    if evidence.error:
        for key in (*sorted(COMMAND_KEYS), *PERSISTENCE_FILES, *HOST_PROVISIONING_FILES, PROBES, PROVISIONING):
            missing[key] = evidence.error
        facts.ipv6_missing = evidence.error
        return
    for cidr in evidence.ssh_allowed_cidrs:
        try:
            facts.ssh_allowed.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            facts.notes.append(f"ssh_allowed_cidrs: {cidr!r} is not a CIDR (ignored)")

    ipt4 = _ruleset(facts, IPTABLES, _text(evidence, IPTABLES, missing), fw.IPV4)
    ipt6 = _ruleset(facts, IP6TABLES, _text(evidence, IP6TABLES, missing), fw.IPV6)
    nft = _ruleset(facts, NFT, _text(evidence, NFT, missing), None)
    facts.iptables, facts.ip6tables, facts.nft = ipt4, ipt6, nft
    if IPTABLES not in missing and NFT not in missing:
        facts.ipv4 = fw.build_pipeline(fw.IPV4, ipt4, nft)
    if NFT in missing:
        facts.ipv6_missing = f"{NFT}: {missing[NFT]}"
    elif IP6TABLES not in missing:
        facts.ipv6 = fw.build_pipeline(fw.IPV6, ipt6, nft)
    elif nft is not None and ipt4 is not None and (ipt4.backend == "nf_tables" or fw.mirrored_tables(ipt4, nft)):
        facts.ipv6 = fw.build_pipeline(fw.IPV6, None, nft)
        facts.notes.append(f"IPv6 rules read from `nft list ruleset` ({IP6TABLES}: {missing[IP6TABLES]})")
    else:
        facts.ipv6_missing = f"{IP6TABLES}: {missing[IP6TABLES]}"

    ufw_text = _text(evidence, UFW, missing)
    facts.installed[UFW] = ufw_text != NOT_INSTALLED
    if ufw_text is not None and ufw_text != NOT_INSTALLED:
        try:
            facts.ufw = fw.parse_ufw_status(ufw_text)
        except fw.ParseError as exc:
            missing[UFW] = f"{UFW} output not parsable: {exc}"

    ss_text = _text(evidence, SS, missing)
    if ss_text == NOT_INSTALLED:
        missing[SS] = "ss is not installed on the host: listening sockets unknown"
    elif ss_text is not None:
        try:
            facts.sockets = parse_ss(ss_text)
        except fw.ParseError as exc:
            missing[SS] = f"{SS} output not parsable: {exc}"

    for service, key in BOOT_KEYS.items():
        state = _boot_state(evidence.commands.get(key), key, missing)
        if state is not None:
            facts.boot[service] = state
    for path in PERSISTENCE_FILES:
        rec = evidence.files.get(path)
        if rec is None:
            missing[path] = f"{path} was not collected"
        elif rec.error:
            missing[path] = rec.error
        else:
            facts.files[path] = rec.data if isinstance(rec.data, str) else None
    _probes(evidence, facts)
    _provisioning(evidence, facts)


def boot_enabled(state: str | None) -> bool:
    return state in ENABLED_STATES


def ufw_conf_enabled(text: str | None) -> bool | None:
    """ENABLED=yes in /etc/ufw/ufw.conf (None when unknown)."""
    if text is None:
        return None
    m = re.search(r"^\s*ENABLED\s*=\s*['\"]?(\w+)", text, re.M)
    return m.group(1).lower() == "yes" if m else None
