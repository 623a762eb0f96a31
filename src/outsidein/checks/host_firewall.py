"""Layer 2: the host firewall (UFW, iptables, nftables). If a security group is one push away from wide open,
does the host still drop the packet?

Every check reads ``HostFacts`` (``outsidein.host.facts``) and asks the rule evaluator
(``outsidein.host.firewall``) what happens to a *new* inbound packet from outside, through every base chain on
the host's input path (iptables and nftables alike: a packet must be accepted by all of them). Rules are
evaluated for their meaning, not counted: an ACCEPT behind a jump counts, an ESTABLISHED-only or ``-i lo``
accept opens nothing to the outside, a negated source opens everything else.

Decisions, where the playbook leaves room:

- **Default deny** is judged by effect: a packet no rule singles out (unnamed source, port and interface) must
  be dropped or rejected. An ACCEPT policy followed by a final catch-all DROP is default-deny and passes; a DROP
  policy behind an accept-everything rule is not, and fails.
- **From anywhere** means the accepted public sources add up to at least a /8 (IPv4) or /16 (IPv6): 0.0.0.0/0,
  ::/0, 2000::/3, "everything but 10.0.0.0/8", 0.0.0.0/1. A rule for one partner's /24 (/48), an office range
  or an ISP's /32 is a deliberate restriction. For SSH, the scope's ``ssh_allowed_cidrs`` are stricter: any
  accepted source outside them fails; without them, SSH fails only when reachable from anywhere (a rule
  allowing 10.8.0.0/24 alone passes: it is the "specific CIDR" the playbook asks for).
- **Rate limiting** (no severity in the playbook's table) is MEDIUM when a port without a limit is open to
  anywhere (SYN floods and password guessing come from the internet; the principle sits beside logging, also
  MEDIUM) and LOW when only restricted sources reach it. A port counts as limited when a connection flood is
  no longer accepted (limit, hashlimit, recent, connlimit, ufw ``limit``, nft ``limit rate``, meters, ``ct
  count``), which the evaluator checks by replaying the query "over every limit".
- **Dropped packets logged**: the path that drops unmatched traffic must pass a LOG/NFLOG rule or an nft
  ``log`` statement first (a rate-limited LOG counts; a log prefix is recommended, not required).
- **Exposed services**: a listening, non-loopback socket reachable from anywhere is judged by the shared
  dangerous-ports list (``exposed_ports.toml``): listed ports take their severity, public web ports (80, 443)
  are not findings, other ports take ``other_ports``. SSH ports are judged by ``host-fw-ssh-restricted`` only.
- **Probes**: where a TCP probe from the vantage point exists, exposure details say *observed* (it connected)
  or *inferred* (from the rules alone). ``host-fw-probe-mismatch`` reports contradictions: a connection the
  rules drop (HIGH: the rules read are not what filters the host) and a listening port the rules accept from
  everywhere that the probe could not reach (LOW: most often an upstream security group, but the host rules
  are then not the control they seem).
- **Persistence** covers "enabled at boot": UFW needs ``systemctl is-enabled ufw`` and ENABLED=yes in
  ufw.conf; plain iptables needs netfilter-persistent enabled and /etc/iptables/rules.v4 (and rules.v6 when
  IPv6 rules are loaded) holding the live input rules; native nftables needs the nftables service and
  /etc/nftables.conf holding the live input chains. Other loaders (firewalld, iptables-services) are not read.
- Missing evidence is NOT_ASSESSED, never PASS: each check ``requires`` the rule outputs it reads; when the
  IPv6 rules alone are unknown, a check fails on what IPv4 proves and is otherwise NOT_ASSESSED. A tool that is
  not installed (``nft: command not found``) means no rules of that kind, not missing evidence.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import replace

from outsidein.checks.ports import port_policy
from outsidein.checks.registry import HOST, target_check
from outsidein.host import firewall as fw
from outsidein.host.facts import (
    BOOT_KEYS,
    IPTABLES,
    NFT,
    NFTABLES_CONF,
    PROBES,
    PROVISIONING,
    RULES_V4,
    RULES_V6,
    SS,
    UFW,
    UFW_CONF,
    HostFacts,
    Socket,
    boot_enabled,
    ufw_conf_enabled,
)
from outsidein.models import Result, Severity, fail, not_assessed, passed

RULES = (IPTABLES, NFT)  # the IPv4 rules; IPv6 gaps are handled inside each check
FAMILY = {fw.IPV4: "IPv4", fw.IPV6: "IPv6"}
Problem = tuple[str, str, Severity | None]  # resource, detail, severity override
Unknown = tuple[str, str]  # resource, reason


def _pipes(facts: HostFacts) -> list[tuple[str, fw.Pipeline]]:
    return [(fam, pipe) for fam in (fw.IPV4, fw.IPV6) if (pipe := facts.pipeline(fam)) is not None]


def _ipv6_gap(facts: HostFacts) -> list[Unknown]:
    return [(facts.name, f"IPv6 rules unknown: {facts.ipv6_missing}")] if facts.ipv6_missing else []


def _report(check_id: str, facts: HostFacts, problems: Iterable[Problem], unknowns: Iterable[Unknown] = ()
            ) -> Iterator[Result]:
    """FAIL per distinct problem; NOT_ASSESSED for what could not be decided (unless that resource failed);
    PASS for the host only when everything was decided and nothing failed."""
    seen: set[tuple[str, str]] = set()
    failed: set[str] = set()
    for resource, detail, severity in problems:
        if (resource, detail) not in seen:
            seen.add((resource, detail))
            failed.add(resource)
            yield fail(check_id, resource, detail, environment=facts.environment, severity=severity)
    gaps: dict[str, list[str]] = {}
    for resource, reason in unknowns:
        if resource not in failed and not (resource == facts.name and failed):
            gaps.setdefault(resource, [])
            if reason not in gaps[resource]:
                gaps[resource].append(reason)
    for resource, reasons in gaps.items():
        yield not_assessed(check_id, resource, "; ".join(reasons))
    if not failed and not gaps:
        yield passed(check_id, facts.name, environment=facts.environment)


def _caveat(reach: fw.Reach, outcomes: Iterable[fw.Outcome] | None = None) -> str:
    skipped = reach.caveats(outcomes)
    return f" (unless {'; '.join(skipped[:2])} matches: not evaluated)" if skipped else ""


def _ifaces(reach: fw.Reach) -> str:
    """`` via wg0 only`` when only named interfaces accept (every interface but lo is assumed external)."""
    accepted = reach.interfaces()
    if not accepted or fw.OTHER_IFACE in accepted:
        return ""
    return f" via {', '.join(sorted(accepted))} only"


def _undecided(reach: fw.Reach) -> str:
    return "depends on rules outsidein does not evaluate: " + "; ".join(reach.unknowns()[:3])


def _via(outcomes: Iterable[fw.Outcome]) -> str:
    seen: dict[str, None] = {}
    for outcome in outcomes:
        seen.update(dict.fromkeys(outcome.path.via))
    shown = list(seen)[:2]
    return f" (accepted by {'; '.join(shown)})" if shown else ""


def _observed(facts: HostFacts, port: int) -> str:
    probe = facts.probes.get(port)
    if probe is None:
        return "inferred from the rules (not probed)"
    if probe.open:
        return f"observed: a probe from the vantage point connected to {probe.address}:{port}"
    return f"inferred from the rules; the probe to {probe.address}:{port} was {probe.state} " \
           f"(see host-fw-probe-mismatch)"


def _ssh_ports(facts: HostFacts) -> list[int]:
    ports = {22}
    ports.update(s.port for s in facts.sockets or [] if s.process == "sshd")
    return sorted(ports)


# ----------------------------------------------------------------------------------------------- active


@target_check(
    source=HOST, id="host-fw-active", layer=2, severity=Severity.HIGH,
    title="No host firewall is active (nothing drops inbound traffic)",
    remediation="Turn a host firewall on: `ufw default deny incoming && ufw allow from <VPN_CIDR> to any port 22 "
                "&& ufw enable`, or load a default-deny iptables/nftables ruleset.",
    verify="ssh {resource} 'sudo ufw status verbose; sudo iptables -S INPUT; sudo nft list ruleset'  "
           "# expect Status: active or a DROP policy / drop rule on the input hook",
    requires=RULES,
)
def host_fw_active(facts: HostFacts) -> Iterator[Result]:
    for _fam, pipe in _pipes(facts):
        for proto in ("tcp", "udp", "icmp"):
            reach = pipe.evaluate(pipe.external(proto))
            if any(not o.path.assumed for o in reach.dropped):
                yield passed("host-fw-active", facts.name, environment=facts.environment)
                return
    ipv4 = facts.ipv4
    assert ipv4 is not None  # required
    ufw = "UFW is not installed" if not facts.installed.get(UFW, True) else \
        "UFW status unknown" if facts.ufw is None else f"UFW is {'active' if facts.ufw.active else 'inactive'}"
    yield from _report("host-fw-active", facts, [(facts.name, f"nothing drops new inbound connections: {ufw}; "
                                                              f"IPv4: {ipv4.describe()}", None)])


# ---------------------------------------------------------------------------------------- default deny


@target_check(
    source=HOST, id="host-fw-default-policy", layer=2, severity=Severity.CRITICAL,
    title="Host firewall does not deny inbound traffic by default",
    remediation="Default-deny inbound: `ufw default deny incoming`, or `iptables -P INPUT DROP` (after accepting "
                "lo, ESTABLISHED,RELATED and the allowed services), or `policy drop;` on the nftables input "
                "chain; do the same for IPv6 (ip6tables or an inet table).",
    verify="ssh {resource} 'sudo iptables -S INPUT | head -1; sudo ip6tables -S INPUT | head -1; "
           "sudo nft list ruleset | grep \"hook input\"'  # expect -P INPUT DROP / policy drop",
    requires=RULES,
)
def host_fw_default_policy(facts: HostFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    unknowns: list[Unknown] = _ipv6_gap(facts)
    for fam, pipe in _pipes(facts):
        open_protos: list[str] = []
        how: list[fw.Outcome] = []
        for proto in ("tcp", "udp"):
            reach = pipe.evaluate(pipe.unmentioned(proto))
            if reach.accepted:
                open_protos.append(proto.upper())
                how.extend(reach.accepted)
            elif reach.uncertain:
                unknowns.append((facts.name, f"{FAMILY[fam]} {proto}: {_undecided(reach)}"))
        if open_protos:
            detail = (f"{FAMILY[fam]}: new {' and '.join(open_protos)} connections to ports no rule names are "
                      f"accepted{_via(how) if pipe.stages else ' (no rules are loaded)'}")
            problems.append((facts.name, detail, None))
    yield from _report("host-fw-default-policy", facts, problems, unknowns)


# ------------------------------------------------------------------------------------------------- SSH


@target_check(
    source=HOST, id="host-fw-ssh-restricted", layer=2, severity=Severity.CRITICAL,
    title="SSH is reachable from sources outside the VPN/bastion range",
    remediation="Accept SSH only from the VPN or bastion CIDR (`ufw allow from <VPN_CIDR> to any port 22 proto "
                "tcp`; `iptables -A INPUT -s <VPN_CIDR> -p tcp --dport 22 -j ACCEPT`) and drop it otherwise, "
                "for IPv6 too; list the range in the scope's ssh_allowed_cidrs.",
    verify="ssh {resource} 'sudo iptables -S; sudo ip6tables -S; sudo nft list ruleset' | grep -E 'dport (22|ssh)'"
           "  # expect only the VPN/bastion source ranges",
    requires=RULES,
)
def host_fw_ssh_restricted(facts: HostFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    unknowns: list[Unknown] = []
    declared = [str(n) for n in facts.ssh_allowed]
    for port in _ssh_ports(facts):
        resource = f"{facts.name}:{port}"
        parts: list[str] = []
        for fam, pipe in _pipes(facts):
            reach = pipe.evaluate(pipe.external("tcp", dport=((port, port),)))
            sources = fw.i_and(reach.sources(), fw.EXTERNAL[fam])
            if declared:
                if fw.i_sub(sources, facts.allowed(fam)):
                    parts.append(f"from {fw.describe_sources(sources, fam)} over {FAMILY[fam]}{_ifaces(reach)}"
                                 f"{_caveat(reach)}")
            elif fw.from_anywhere(sources, fam):
                parts.append(f"from {fw.describe_sources(sources, fam)} over {FAMILY[fam]}{_ifaces(reach)}"
                             f"{_caveat(reach)}")
            if not parts and reach.uncertain:
                unknowns.append((resource, f"{FAMILY[fam]}: {_undecided(reach)}"))
        if facts.ipv6_missing:
            unknowns.append((resource, f"IPv6 rules unknown: {facts.ipv6_missing}"))
        if parts:
            listeners = [s for s in facts.sockets or [] if s.port == port and not s.local_only]
            who = (f"{listeners[0].process or 'a process'} listens on "
                   f"{', '.join(s.shown for s in listeners)}" if listeners else
                   "nothing listens on it now" if facts.sockets is not None else "listeners unknown")
            beyond = f", beyond the allowed {', '.join(declared)}" if declared else ""
            problems.append((resource, f"SSH port {port} is accepted {'; '.join(parts)}{beyond}; {who}; "
                                       f"{_observed(facts, port)}", None))
    yield from _report("host-fw-ssh-restricted", facts, problems, unknowns)


# ----------------------------------------------------------------------------------- exposed services


@target_check(
    source=HOST, id="host-fw-exposed-service", layer=2, severity=Severity.HIGH,
    title="A listening service is reachable from anywhere through the host firewall",
    remediation="Bind the service to loopback or a private address, and accept its port only from the clients "
                "that need it (`ufw allow from <APP_CIDR> to any port <port>`); keep databases, brokers and "
                "admin ports closed to the internet at the host as well as in the security group.",
    verify="ssh {resource} 'sudo ss -tlnp; sudo iptables -S; sudo nft list ruleset'  "
           "# expect the port bound to 127.0.0.1 or accepted only from private ranges",
    requires=(*RULES, SS),
)
def host_fw_exposed_service(facts: HostFacts) -> Iterator[Result]:
    policy = port_policy()
    ssh = set(_ssh_ports(facts))
    by_port: dict[int, list[Socket]] = {}
    for sock in facts.sockets or []:
        if not sock.local_only and sock.port not in ssh and sock.process != "sshd":
            by_port.setdefault(sock.port, []).append(sock)
    problems: list[Problem] = []
    unknowns: list[Unknown] = []
    for port, socks in sorted(by_port.items()):
        verdict = policy.judge(port, port)
        if verdict is None:
            continue  # public web ports are meant for the world
        severity, what = verdict
        resource = f"{facts.name}:{port}"
        parts: list[str] = []
        for sock in socks:
            for fam in sock.families:
                pipe = facts.pipeline(fam)
                if pipe is None:
                    unknowns.append((resource, f"{sock.shown}: IPv6 rules unknown: {facts.ipv6_missing}"))
                    continue
                box = pipe.external("tcp", dport=((port, port),), dst=sock.destinations(fam))
                if sock.interface:  # bound to one device: only packets arriving on it reach the socket
                    box = replace(box, iif=pipe.iface(sock.interface))
                reach = pipe.evaluate(box)
                sources = reach.sources()
                if fw.from_anywhere(sources, fam):
                    parts.append(f"{sock.process or 'a process'} on {sock.shown} from "
                                 f"{fw.describe_sources(sources, fam)} over {FAMILY[fam]}{_ifaces(reach)}"
                                 f"{_caveat(reach)}")
                elif reach.uncertain:
                    unknowns.append((resource, f"{sock.shown} over {FAMILY[fam]}: {_undecided(reach)}"))
        if parts:
            problems.append((resource, f"{what} is reachable: {'; '.join(parts)}; {_observed(facts, port)}",
                             severity))
    yield from _report("host-fw-exposed-service", facts, problems, unknowns)


# -------------------------------------------------------------------------------------------- logging


@target_check(
    source=HOST, id="host-fw-drop-logging", layer=2, severity=Severity.MEDIUM,
    title="Dropped inbound packets are not logged",
    remediation="Log before the final drop: `ufw logging on` (or `medium`), or `iptables -A INPUT -m limit "
                "--limit 5/min -j LOG --log-prefix \"fw-drop: \"` before the DROP, or `limit rate 5/minute log "
                "prefix \"fw-drop: \"` before the drop in the nftables input chain.",
    verify="ssh {resource} 'sudo ufw status verbose | grep Logging; sudo iptables -S INPUT | grep -E \"LOG|DROP\"; "
           "sudo nft list ruleset | grep -E \"log|drop\"'  # expect a LOG/log rule before the drop",
    requires=RULES,
)
def host_fw_drop_logging(facts: HostFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    unknowns: list[Unknown] = _ipv6_gap(facts)
    ufw_off = " (UFW logging is off)" if facts.ufw and facts.ufw.active and not facts.ufw.logging_on else ""
    for fam, pipe in _pipes(facts):
        for proto in ("tcp", "udp"):
            reach = pipe.evaluate(pipe.unmentioned(proto))
            if reach.accepted:
                problems.append((facts.name, f"{FAMILY[fam]}: unmatched inbound {proto.upper()} traffic is accepted, "
                                             f"so no drop is logged (see host-fw-default-policy)", None))
                continue
            silent = [o for o in reach.dropped if not o.path.assumed and not o.path.logged]
            for outcome in silent:
                problems.append((facts.name, f"{FAMILY[fam]}: {outcome.by} drops unmatched traffic without "
                                             f"logging it first{ufw_off}", None))
            if not silent and reach.uncertain:
                unknowns.append((facts.name, f"{FAMILY[fam]} {proto}: {_undecided(reach)}"))
    yield from _report("host-fw-drop-logging", facts, problems, unknowns)


# ------------------------------------------------------------------------------------------ rate limit


@target_check(
    source=HOST, id="host-fw-rate-limit", layer=2, severity=Severity.MEDIUM,
    title="New inbound connections are not rate-limited",
    remediation="Rate-limit new connections to the open ports: `ufw limit 22/tcp`, `iptables ... -m conntrack "
                "--ctstate NEW -m hashlimit --hashlimit-upto 10/min --hashlimit-mode srcip ... -j ACCEPT`, or "
                "`ct state new limit rate 10/minute accept` (nftables), followed by the drop.",
    verify="ssh {resource} 'sudo iptables -S; sudo nft list ruleset' | grep -E 'limit|recent|meter'  "
           "# expect a limit on every accepted port",
    requires=RULES,
)
def host_fw_rate_limit(facts: HostFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    unknowns: list[Unknown] = _ipv6_gap(facts)
    for fam, pipe in _pipes(facts):
        box = pipe.external("tcp")
        flood = pipe.evaluate(box, fw.FLOOD)
        if not flood.accepted:
            if flood.uncertain:
                unknowns.append((facts.name, f"{FAMILY[fam]}: {_undecided(flood)}"))
            continue
        by_ports: dict[fw.IntervalSet, fw.IntervalSet] = {}  # the rules split the space; merge it back
        for outcome in flood.accepted:
            src = fw.i_and(outcome.box.src, fw.EXTERNAL[fam])
            by_ports[outcome.box.dport] = fw.i_or(by_ports.get(outcome.box.dport, ()), src)
        by_sources: dict[fw.IntervalSet, fw.IntervalSet] = {}
        for ports, src in by_ports.items():
            by_sources[src] = fw.i_or(by_sources.get(src, ()), ports)
        anywhere = any(fw.from_anywhere(src, fam) for src in by_sources)
        listed = [f"{fw.describe_ports(ports)} from {fw.describe_sources(src, fam)}"
                  for src, ports in sorted(by_sources.items(), key=lambda kv: kv[1])]
        more = f" and {len(listed) - 4} more" if len(listed) > 4 else ""
        problems.append((facts.name, f"{FAMILY[fam]}: a flood of new TCP connections is still accepted on "
                                     f"{'; '.join(listed[:4])}{more}",
                         Severity.MEDIUM if anywhere else Severity.LOW))
    yield from _report("host-fw-rate-limit", facts, problems, unknowns)


# ------------------------------------------------------------------------------------------------ ICMP


@target_check(
    source=HOST, id="host-fw-icmp-echo", layer=2, severity=Severity.LOW,
    title="ICMP echo (ping) is answered from anywhere",
    remediation="Drop echo-request from untrusted sources (accept it from the monitoring/VPN range only); in "
                "UFW edit the echo-request lines of /etc/ufw/before.rules and before6.rules.",
    verify="ssh {resource} 'sudo iptables -S | grep -i icmp; sudo nft list ruleset | grep -i echo'  "
           "# expect echo-request accepted from trusted ranges only",
    requires=RULES,
)
def host_fw_icmp_echo(facts: HostFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    unknowns: list[Unknown] = _ipv6_gap(facts)
    for fam, pipe in _pipes(facts):
        kind = fw.ECHO_REQUEST[fam] * 256
        reach = pipe.evaluate(pipe.external("icmp", icmp=((kind, kind + 255),)))
        sources = reach.sources()
        if fw.from_anywhere(sources, fam):
            problems.append((facts.name, f"{FAMILY[fam]}: echo-request is accepted from "
                                         f"{fw.describe_sources(sources, fam)}{_via(reach.accepted)}", None))
        elif reach.uncertain:
            unknowns.append((facts.name, f"{FAMILY[fam]}: {_undecided(reach)}"))
    yield from _report("host-fw-icmp-echo", facts, problems, unknowns)


# ------------------------------------------------------------------------------------------ persistence


def _chains_from(table: fw.Table, roots: Iterable[str]) -> list[str]:
    seen: list[str] = []
    todo = list(roots)
    while todo:
        name = todo.pop(0)
        if name in seen or name not in table.chains or name.startswith(("f2b-", "fail2ban-")):
            continue
        seen.append(name)
        todo.extend(r.target for r in table.chains[name].rules if r.verdict in ("jump", "goto"))
    return seen


def _rule_keys(chain: fw.Chain) -> list[tuple[object, ...]]:
    """One key per rule as written (a vmap's entries, expanded in any order, are one rule)."""
    grouped: dict[int, list[tuple[object, ...]]] = {}
    for rule in chain.rules:
        if not rule.target.startswith(("f2b-", "fail2ban-")):
            grouped.setdefault(rule.index, []).append(rule.key)
    return [tuple(sorted(keys, key=repr)) for keys in grouped.values()]


def _table_diff(live: fw.Table, saved: fw.Table | None, what: str, roots: list[str]) -> str | None:
    """How the live input-path chains of one table differ from the saved ones (None: they match)."""
    if saved is None:
        return f"{what} is not saved"
    for name in _chains_from(live, roots):
        chain, other = live.chains[name], saved.chains.get(name)
        if other is None:
            return f"chain {name} of {what} is not saved"
        if (chain.policy or "") != (other.policy or "") or (chain.hook, chain.priority) != (other.hook,
                                                                                           other.priority):
            return f"{what} chain {name}: live policy {chain.policy or '-'}, saved {other.policy or '-'}"
        live_keys, saved_keys = _rule_keys(chain), _rule_keys(other)
        if live_keys != saved_keys:
            for pos, key in enumerate(live_keys):
                if pos >= len(saved_keys) or saved_keys[pos] != key:
                    rule = next(r for r in chain.rules if r.key == key[0])
                    return f"{what} chain {name}: live rule {pos + 1} `{rule.text}` is not saved there"
            return f"{what} chain {name}: the saved file has {len(saved_keys) - len(live_keys)} more rules"
    return None


def _input_chains(table: fw.Table) -> list[str]:
    return [c.name for c in table.chains.values() if c.hook in ("prerouting", "input")
            and (c.type in (None, "filter"))]


def _loaded(table: fw.Table) -> bool:
    return any(table.chains[c].rules or table.chains[c].policy == "drop" for c in _input_chains(table))


def _ipt_live(rules: fw.Ruleset | None) -> list[fw.Table]:
    if rules is None:
        return []
    return [t for t in rules.tables.values() if _loaded(t) and not any(c.startswith(("ufw-", "ufw6-"))
                                                                        for c in t.chains)]


def _saved_diff(live: fw.Ruleset, path: str, text: str | None, family: str) -> str:
    if text is None:
        return f"{path} does not exist"
    try:
        saved = fw.parse_iptables_save(text, family)
    except fw.ParseError as exc:
        return f"{path} is not restorable: {exc}"
    for table in _ipt_live(live):
        diff = _table_diff(table, saved.tables.get(table.name), f"{table.name} table", _input_chains(table))
        if diff:
            return f"{path} differs from the live rules: {diff}"
    return ""


@target_check(
    source=HOST, id="host-fw-persistent", layer=2, severity=Severity.HIGH,
    title="Host firewall is not enabled at boot, or its live rules are not saved",
    remediation="Make the rules survive a reboot: `ufw enable` (sets ENABLED=yes and enables ufw.service); for "
                "iptables `apt install iptables-persistent && netfilter-persistent save && systemctl enable "
                "netfilter-persistent`; for nftables save the ruleset to /etc/nftables.conf and `systemctl "
                "enable nftables`.",
    verify="ssh {resource} 'systemctl is-enabled ufw nftables netfilter-persistent; grep ENABLED "
           "/etc/ufw/ufw.conf; sudo iptables-save | diff - /etc/iptables/rules.v4'  # expect enabled and no diff",
    requires=RULES,
)
def host_fw_persistent(facts: HostFacts) -> Iterator[Result]:
    problems: list[str] = []
    unknowns: list[str] = []
    mechanisms: list[str] = []

    def boot(service: str) -> bool | None:
        key = BOOT_KEYS[service]
        if key in facts.missing:
            unknowns.append(f"{service} boot state unknown: {facts.missing[key]}")
            return None
        return boot_enabled(facts.boot.get(service))

    def file_text(path: str) -> tuple[bool, str | None]:
        if path in facts.missing:
            unknowns.append(f"{path}: {facts.missing[path]}")
            return False, None
        return True, facts.files.get(path)

    ipt4, ipt6, nft = facts.iptables, facts.ip6tables, facts.nft
    ufw_live = (facts.ufw is not None and facts.ufw.active) or any(
        name.startswith("ufw") for rules in (ipt4, ipt6) if rules for t in rules.tables.values() for name in t.chains)
    if ufw_live:
        mechanisms.append("ufw")
        enabled = boot("ufw")
        if enabled is False:
            problems.append(f"UFW is active but ufw.service is {facts.boot.get('ufw')} at boot")
        known, conf = file_text(UFW_CONF)
        if known and ufw_conf_enabled(conf) is False:
            problems.append(f"{UFW_CONF} has ENABLED=no: UFW will not start at boot")
    elif _ipt_live(ipt4) or _ipt_live(ipt6):
        mechanisms.append("iptables")
        enabled = boot("netfilter-persistent")
        if enabled is False:
            state = facts.boot.get("netfilter-persistent")
            problems.append("netfilter-persistent is " + ("not installed" if state == "not installed" else
                                                          f"{state} at boot") + ": iptables rules are lost on reboot")
        for live, path, fam in ((ipt4, RULES_V4, fw.IPV4), (ipt6, RULES_V6, fw.IPV6)):
            if live is not None and _ipt_live(live):
                known, text = file_text(path)
                diff = _saved_diff(live, path, text, fam) if known else ""
                if diff:
                    problems.append(diff)
    if nft is not None:
        skip = fw.mirrored_tables(ipt4, nft) | fw.mirrored_tables(ipt6, nft)
        native = [t for key, t in nft.tables.items() if key not in skip and _loaded(t)]
        if native:
            mechanisms.append("nftables")
            if boot("nftables") is False:
                problems.append(f"nftables.service is {facts.boot.get('nftables')} at boot: the nftables ruleset "
                                f"is lost on reboot")
            known, text = file_text(NFTABLES_CONF)
            if known and text is None:
                problems.append(f"{NFTABLES_CONF} does not exist")
            elif known and text is not None:
                try:
                    saved = fw.parse_nft(text)
                except fw.ParseError as exc:
                    problems.append(f"{NFTABLES_CONF} cannot be loaded: {exc}")
                else:
                    for table in native:
                        change = _table_diff(table, saved.tables.get(f"{table.family} {table.name}"),
                                             f"nft table {table.family} {table.name}", _input_chains(table))
                        if change:
                            problems.append(f"{NFTABLES_CONF} differs from the live ruleset: {change}")
                            break
    if not mechanisms:
        states = {s: boot(s) for s in BOOT_KEYS}
        if not any(states.values()) and not unknowns:
            problems.append("no firewall rules are loaded and no firewall service (ufw, nftables, "
                            "netfilter-persistent) is enabled at boot")
        elif any(states.values()):
            unknowns.clear()
    if problems:
        for detail in dict.fromkeys(problems):
            yield fail("host-fw-persistent", facts.name, detail, environment=facts.environment)
    elif unknowns:
        yield not_assessed("host-fw-persistent", facts.name, "; ".join(dict.fromkeys(unknowns)))
    else:
        yield passed("host-fw-persistent", facts.name, environment=facts.environment)


# ---------------------------------------------------------------------------------------- provisioning


@target_check(
    source=HOST, id="host-fw-provisioning-disables", layer=2, severity=Severity.HIGH,
    title="A provisioning script disables or flushes the host firewall",
    remediation="Remove the line (or re-enable the firewall in the same script, after the step that needed it); "
                "never `ufw disable` or `iptables -F` \"for testing\" in cloud-init, Ansible or Packer.",
    verify="grep -nE 'ufw (--force )?(disable|reset)|iptables .*(-F|--flush|-X|-P INPUT ACCEPT)|nft flush "
           "ruleset|systemctl (stop|disable|mask) (ufw|nftables|netfilter-persistent)' {resource}  # expect nothing",
    requires=(PROVISIONING,),
)
def host_fw_provisioning(facts: HostFacts) -> Iterator[Result]:
    problems = [(f"{hit.path}:{hit.line}", f"`{hit.text}` {hit.what}", None) for hit in facts.provisioning_hits]
    unknowns = [(path, reason) for path, reason in facts.provisioning_errors.items()]
    yield from _report("host-fw-provisioning-disables", facts, problems, unknowns)


# ------------------------------------------------------------------------------------------------ probes


def _listening(facts: HostFacts, port: int, address: str, family: str) -> list[Socket]:
    return [s for s in facts.sockets or [] if s.port == port and family in s.families
            and (s.wildcard or s.address == address) and not s.local_only]


@target_check(
    source=HOST, id="host-fw-probe-mismatch", layer=2, severity=Severity.HIGH,
    title="The probe from outside contradicts the host firewall rules",
    remediation="Find what really filters the host: re-collect the rules (they may have changed), look for "
                "another firewall layer (a second ruleset, a cloud security group, a NAT in front), and make the "
                "host rules the ones that decide.",
    verify="nc -vz -w 2 <address> <port> from the vantage point, and `sudo iptables -S; sudo nft list ruleset` "
           "on {resource}  # expect the connection result the rules predict",
    requires=(*RULES, SS, PROBES),
)
def host_fw_probe_mismatch(facts: HostFacts) -> Iterator[Result]:
    problems: list[Problem] = []
    unknowns: list[Unknown] = []
    for port, probe in sorted(facts.probes.items()):
        fam = probe.family or fw.IPV4
        pipe = facts.pipeline(fam)
        resource = f"{facts.name}:{port}"
        if pipe is None:
            unknowns.append((resource, f"IPv6 rules unknown: {facts.ipv6_missing}"))
            continue
        box = pipe.external("tcp", dport=((port, port),))
        if probe.family is not None:
            value = int(ipaddress.ip_address(probe.address))
            box = replace(box, dst=((value, value),))
        reach = pipe.evaluate(box)
        listeners = _listening(facts, port, probe.address, fam)
        if probe.open and not reach.accepted and not reach.uncertain:
            blocked = "; ".join(dict.fromkeys(o.by for o in reach.dropped))[:300]
            problems.append((resource, f"the rules drop tcp/{port} from every source ({blocked}), yet a probe from "
                                       f"the vantage point connected to {probe.address}:{port}", Severity.HIGH))
        elif not probe.open and listeners and not reach.uncertain and all(
                not fw.i_sub(fw.EXTERNAL[fam], fw.i_and(reach.sources([o for o in reach.accepted if n in o.box.iif]),
                                                        fw.EXTERNAL[fam]))
                for n in pipe.iifs - {fw.LOOPBACK}):
            problems.append((resource, f"the rules accept tcp/{port} from any address and "
                                       f"{listeners[0].process or 'a process'} listens on {listeners[0].shown}, yet "
                                       f"the probe to {probe.address}:{port} was {probe.state} (something else "
                                       f"filters it)", Severity.LOW))
    yield from _report("host-fw-probe-mismatch", facts, problems, unknowns)
