"""Host firewall rules as data: iptables-save, ``nft list ruleset`` and ``ufw status verbose`` parsers; an evaluator.

The evaluator answers "what happens to a *new* inbound packet?" by walking the rules, not by counting them.
Packets are handled as sets (a :class:`Box`: protocols × source addresses × destination addresses × source
ports × destination ports × ICMP type/code × input interfaces), so one walk answers "from which sources is
tcp/5432 accepted?" exactly. Each rule splits a box into the part it matches and the parts it does not.

Semantics covered (iptables and nftables alike): chains walked in order with jumps and gotos to user chains,
RETURN, chain policies, terminal verdicts (ACCEPT, DROP, REJECT), non-terminal ones (LOG, NFLOG, ``log``, which
mark the path as logged), source/destination addresses (with negation, ``iprange``, nft sets and ranges),
protocols, ports (``--dport``, ``multiport`` lists and ranges, nft anonymous and named sets, ranges, relational
operators, ``vmap``), input interfaces (``lo`` and ``+``/``*`` wildcards), conntrack state (the packet is NEW),
``addrtype``/``fib daddr type``, ``pkttype``, TCP flags (the packet is a SYN), ICMP types and codes, and rate
matches (``limit``, ``hashlimit``, ``recent``, ``connlimit``, nft ``limit rate [over]``, meters, ``ct count``,
dynamic sets), which are evaluated in two scenarios: *normal* (the first connection: under every limit, seen by
no ``recent`` list) and *flood* (over every limit).

A packet reaches a local socket only if every base chain on the prerouting and input hooks accepts it (iptables
raw/mangle/filter/security and every nftables filter chain on those hooks, in priority order), so a
:class:`Pipeline` chains them: what one stage accepts enters the next. When iptables is the nf_tables backend,
``nft list ruleset`` shows iptables' own tables too: those are evaluated once, from iptables-save.

Anything not understood (an ipset, a ``u32`` or ``string`` match, a time window, an ``xt match`` the nft
translation could not render, an unknown target) is never guessed: the rule *may* match, both paths are
followed, and results reached only by assuming such a match are reported as uncertain, naming the rule.
Not covered: netdev/bridge ingress chains, ipset contents, raw-table NOTRACK effects, IPsec policies, and
what an interface connects to (every interface except ``lo`` is assumed to carry outside traffic).
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

Interval = tuple[int, int]
IntervalSet = tuple[Interval, ...]  # sorted, disjoint, non-adjacent, inclusive bounds

IPV4, IPV6 = "ipv4", "ipv6"
ADDR_MAX = {IPV4: 2**32 - 1, IPV6: 2**128 - 1}
PORTS: IntervalSet = ((0, 65535),)
ICMP_ALL: IntervalSet = ((0, 65535),)  # type * 256 + code
PROTOS = frozenset({"tcp", "udp", "icmp", "other"})
LOOPBACK = "lo"
OTHER_IFACE = "*"  # an interface no rule names
NORMAL, FLOOD = "normal", "flood"


class ParseError(ValueError):
    """A line the parser cannot read; the message names the line."""


# --------------------------------------------------------------------------------------------- interval sets


def iset(intervals: Iterable[Interval]) -> IntervalSet:
    """Normalise intervals: sorted, merged (adjacent ones too), empty ones dropped."""
    out: list[list[int]] = []
    for lo, hi in sorted(i for i in intervals if i[0] <= i[1]):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


def i_and(a: IntervalSet, b: IntervalSet) -> IntervalSet:
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def i_or(a: IntervalSet, b: IntervalSet) -> IntervalSet:
    return iset((*a, *b))


def i_sub(a: IntervalSet, b: IntervalSet) -> IntervalSet:
    out: list[Interval] = []
    for lo, hi in a:
        cur = lo
        for blo, bhi in b:
            if bhi < cur or blo > hi:
                continue
            if blo > cur:
                out.append((cur, blo - 1))
            cur = max(cur, bhi + 1)
            if cur > hi:
                break
        if cur <= hi:
            out.append((cur, hi))
    return tuple(out)


def i_size(a: IntervalSet) -> int:
    return sum(hi - lo + 1 for lo, hi in a)


def net_interval(text: str, family: str) -> Interval:
    """``10.0.0.0/8`` or ``10.0.0.1`` as an address interval; ValueError if not of ``family``."""
    net = ipaddress.ip_network(text.strip(), strict=False)
    if (net.version == 4) != (family == IPV4):
        raise ValueError(f"{text} is not an {family} address")
    return int(net.network_address), int(net.broadcast_address)


def addr_interval(text: str, family: str) -> Interval:
    """An address, a CIDR, or a ``first-last`` range."""
    if "-" in text and "/" not in text:
        first, last = text.split("-", 1)
        lo, hi = net_interval(first, family)[0], net_interval(last, family)[1]
        if lo > hi:
            raise ValueError(f"empty range {text}")
        return lo, hi
    return net_interval(text, family)


def ranges_text(a: IntervalSet, family: str) -> list[str]:
    """Each interval as a CIDR when it is one, else as ``first-last``."""
    make = ipaddress.IPv4Address if family == IPV4 else ipaddress.IPv6Address
    out: list[str] = []
    for lo, hi in a:
        nets = list(ipaddress.summarize_address_range(make(lo), make(hi)))
        out.append(str(nets[0]) if len(nets) == 1 else f"{make(lo)}-{make(hi)}")
    return out


def _nets(family: str, texts: Iterable[str]) -> IntervalSet:
    return iset(net_interval(t, family) for t in texts)


# Sources that can arrive from outside on a non-loopback interface (martians excluded), and the public part.
EXTERNAL: dict[str, IntervalSet] = {
    IPV4: i_sub(((0, ADDR_MAX[IPV4]),), _nets(IPV4, ["0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3"])),
    IPV6: i_sub(((0, ADDR_MAX[IPV6]),), _nets(IPV6, ["::/128", "::1/128", "::ffff:0:0/96", "ff00::/8"])),
}
PRIVATE: dict[str, IntervalSet] = {
    IPV4: _nets(IPV4, ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16"]),
    IPV6: _nets(IPV6, ["fc00::/7", "fe80::/10"]),
}
# "From anywhere": the accepted public sources add up to at least a /8 (IPv4) or a /16 (IPv6). A rule for a
# partner's /24 (or /48), an office range, an ISP's /32 or a CDN's published ranges is a deliberate
# restriction; 0.0.0.0/0, ::/0, 2000::/3, a negated source ("all but 10.0.0.0/8") or 0.0.0.0/1 are not.
ANYWHERE_MIN = {IPV4: 2**24, IPV6: 2**112}


def public_part(sources: IntervalSet, family: str) -> IntervalSet:
    return i_sub(i_and(sources, EXTERNAL[family]), PRIVATE[family])


def from_anywhere(sources: IntervalSet, family: str) -> bool:
    return i_size(public_part(sources, family)) >= ANYWHERE_MIN[family]


def describe_sources(sources: IntervalSet, family: str, limit: int = 4) -> str:
    """``any address``, ``any address except 10.0.0.0/8`` or ``10.8.0.0/24, 192.0.2.7-192.0.2.9``."""
    external = EXTERNAL[family]
    sources = i_and(sources, external)
    if sources == external:
        return "any address"
    missing = ranges_text(i_sub(external, sources), family)
    if len(missing) <= 2 and i_size(sources) > i_size(external) // 2:
        return "any address except " + ", ".join(missing)
    listed = ranges_text(sources, family)
    more = len(listed) - limit
    return ", ".join(listed[:limit]) + (f" and {more} more" if more > 0 else "")


def describe_ports(ports: IntervalSet) -> str:
    if ports == PORTS:
        return "all ports"
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ports)


# ------------------------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Cond:
    """One condition of a rule; a rule matches when all its conditions do.

    ``kind`` is a packet dimension (``proto``, ``src``, ``dst``, ``sport``, ``dport``, ``icmp``, ``iif``), or
    ``const`` (a condition whose value for a new inbound packet is known: conntrack state, addrtype …),
    ``rate`` (a rate or connection-count match), ``family`` (nft ``meta nfproto``) or ``unknown``.
    """

    kind: str
    names: frozenset[str] = frozenset()  # protocol numbers ("6", "all"), interface patterns ("eth+")
    ranges: IntervalSet = ()  # addresses, ports, icmp type*256+code
    negate: bool = False
    family: str = ""  # the condition reads a header of this family (nft ``ip saddr``): other packets never match
    value: bool = True  # for const
    rate: str = ""  # "under" (matches below the rate), "over" (matches above it), "always" (``recent --set``)
    text: str = ""  # for unknown: what was not understood


@dataclass(frozen=True)
class Rule:
    chain: str
    index: int  # 1-based position in its chain
    line: int  # line in the text it was read from
    text: str
    conds: tuple[Cond, ...]
    verdict: str  # accept, drop, reject, return, continue, jump, goto, queue, unknown
    target: str = ""  # jump/goto chain, or the unknown target's name
    logs: bool = False

    @property
    def key(self) -> tuple[object, ...]:
        """What the rule does, independent of formatting, comments, counters and position (for comparisons)."""
        return (tuple(sorted(self.conds, key=repr)), self.verdict, self.target, self.logs)


@dataclass
class Chain:
    name: str
    rules: list[Rule] = field(default_factory=list)
    policy: str | None = None  # accept/drop for base chains
    hook: str | None = None
    type: str | None = None
    priority: int = 0
    line: int = 0


@dataclass
class Table:
    family: str  # iptables: ip/ip6; nft: ip, ip6, inet, arp, bridge, netdev
    name: str
    chains: dict[str, Chain] = field(default_factory=dict)
    sets: dict[str, NftSet] = field(default_factory=dict)
    dormant: bool = False
    line: int = 0


@dataclass
class NftSet:
    name: str
    type: str = ""
    elements: list[str] = field(default_factory=list)
    dynamic: bool = False


@dataclass
class Ruleset:
    """A parsed iptables-save (one family) or ``nft list ruleset`` output."""

    kind: str  # "iptables" or "nft"
    family: str  # iptables: ipv4/ipv6; nft: "any"
    tables: dict[str, Table] = field(default_factory=dict)  # key: "name" (iptables) or "family name" (nft)
    backend: str | None = None  # iptables: "nf_tables", "legacy" or None (header missing)
    incompatible: set[str] = field(default_factory=set)  # iptables-nft tables it could not show
    legacy_present: bool = False  # iptables-nft warned that iptables-legacy tables are loaded too
    notes: list[str] = field(default_factory=list)  # unknown matches, includes, skipped tables

    def table(self, name: str, family: str | None = None) -> Table | None:
        return self.tables.get(name if self.kind == "iptables" else f"{family} {name}")


# ------------------------------------------------------------------------------------------ protocol tables

PROTO_NUMBERS = {"tcp": "6", "udp": "17", "icmp": "1", "ipv6-icmp": "58", "icmpv6": "58", "icmp6": "58",
                 "ipv6-icmpv6": "58", "all": "all", "0": "all"}
ICMP4 = {"any": None, "echo-reply": (0, None), "pong": (0, None), "destination-unreachable": (3, None),
         "network-unreachable": (3, 0), "host-unreachable": (3, 1), "protocol-unreachable": (3, 2),
         "port-unreachable": (3, 3), "fragmentation-needed": (3, 4), "source-quench": (4, None),
         "redirect": (5, None), "echo-request": (8, None), "ping": (8, None), "router-advertisement": (9, None),
         "router-solicitation": (10, None), "time-exceeded": (11, None), "ttl-exceeded": (11, None),
         "parameter-problem": (12, None), "timestamp-request": (13, None), "timestamp-reply": (14, None),
         "info-request": (15, None), "info-reply": (16, None), "address-mask-request": (17, None),
         "address-mask-reply": (18, None)}
ICMP6 = {"any": None, "destination-unreachable": (1, None), "no-route": (1, 0), "packet-too-big": (2, None),
         "time-exceeded": (3, None), "ttl-exceeded": (3, None), "parameter-problem": (4, None),
         "echo-request": (128, None), "echo-reply": (129, None), "mld-listener-query": (130, None),
         "mld-listener-report": (131, None), "mld-listener-done": (132, None),
         "mld-listener-reduction": (132, None), "nd-router-solicit": (133, None),
         "router-solicitation": (133, None), "nd-router-advert": (134, None), "router-advertisement": (134, None),
         "nd-neighbor-solicit": (135, None), "neighbour-solicitation": (135, None),
         "neighbor-solicitation": (135, None), "nd-neighbor-advert": (136, None),
         "neighbour-advertisement": (136, None), "neighbor-advertisement": (136, None),
         "nd-redirect": (137, None), "mld2-listener-report": (143, None), "ind-neighbor-solicit": (141, None),
         "ind-neighbor-advert": (142, None)}
ECHO_REQUEST = {IPV4: 8, IPV6: 128}


def proto_number(name: str) -> str:
    name = name.lower()
    if name in PROTO_NUMBERS:
        return PROTO_NUMBERS[name]
    if name.isdigit():
        return name
    try:
        return str(socket.getprotobyname(name))
    except OSError:
        return "-1"  # some other protocol


def proto_class(number: str, family: str) -> frozenset[str]:
    """The evaluator's protocol classes a protocol number stands for in ``family``."""
    if number == "all":
        return PROTOS
    if number == "6":
        return frozenset({"tcp"})
    if number == "17":
        return frozenset({"udp"})
    if number == ("1" if family == IPV4 else "58"):
        return frozenset({"icmp"})
    return frozenset({"other"})


def icmp_interval(text: str, family: str) -> Interval | None:
    """``8``, ``8/0``, ``echo-request`` as a type*256+code interval; None for ``any``; ValueError if unknown."""
    names = ICMP4 if family == IPV4 else ICMP6
    text = text.strip().lower()
    if text in names:
        tc = names[text]
        if tc is None:
            return None
        kind, code = tc
    elif re.fullmatch(r"\d+(/\d+)?", text):
        kind_s, _, code_s = text.partition("/")
        kind, code = int(kind_s), (int(code_s) if code_s else None)
    else:
        raise ValueError(f"unknown ICMP type {text!r}")
    if code is None:
        return kind * 256, kind * 256 + 255
    return kind * 256 + code, kind * 256 + code


def port_interval(text: str, sep: str = ":") -> Interval:
    """``22``, ``1024:65535`` (iptables), ``1024-65535`` (nft) or a service name."""
    text = text.strip()
    if sep in text:
        lo_s, hi_s = text.split(sep, 1)
        lo = _port(lo_s) if lo_s else 0
        hi = _port(hi_s) if hi_s else 65535
        return (lo, hi) if lo <= hi else (hi, lo)
    port = _port(text)
    return port, port


def _port(text: str) -> int:
    text = text.strip().strip('"')
    if text.isdigit():
        value = int(text)
        if value > 65535:
            raise ValueError(f"port {value} out of range")
        return value
    try:
        return socket.getservbyname(text)
    except OSError:
        raise ValueError(f"unknown port or service {text!r}") from None


# ------------------------------------------------------------------------------------ iptables-save parser

IPT_BASE = {  # table -> chains on the prerouting/input path: (chain, hook, priority)
    "raw": (("PREROUTING", "prerouting", -300),),
    "mangle": (("PREROUTING", "prerouting", -150), ("INPUT", "input", -150)),
    "filter": (("INPUT", "input", 0),),
    "security": (("INPUT", "input", 50),),
}
NON_TERMINAL_TARGETS = {"MARK", "CONNMARK", "CT", "NOTRACK", "TCPMSS", "SET", "AUDIT", "CLASSIFY", "DSCP", "TOS",
                        "TTL", "HL", "SECMARK", "CONNSECMARK", "TRACE", "IDLETIMER", "LED", "CHECKSUM", "TEE",
                        "TCPOPTSTRIP", "RATEEST", "HMARK", "ECN", "SYNPROXY"}
LOG_TARGETS = {"LOG", "NFLOG", "ULOG"}
DROP_TARGETS = {"DROP": "drop", "REJECT": "reject", "TARPIT": "drop"}
CORE_OPTS = {"-p", "--protocol", "-s", "--source", "--src", "-d", "--destination", "--dst", "-i", "--in-interface",
             "-o", "--out-interface", "-f", "--fragment", "-m", "--match", "-j", "--jump", "-g", "--goto", "-c",
             "--set-counters", "!"}
# Options that take no value, per module (others take one; --tcp-flags and --match-set take two).
FLAG_OPTS = {"--syn", "--set", "--update", "--rcheck", "--remove", "--rsource", "--rdest", "--rttl", "--reap",
             "--connlimit-saddr", "--connlimit-daddr", "--limit-iface-in", "--limit-iface-out", "--kerneltz",
             "--return-nomatch", "--update-counters", "--update-subcounters", "--rt-0-not-strict", "--rt-0-res",
             "--hashlimit-rate-match", "--log-tcp-sequence", "--log-tcp-options", "--log-ip-options",
             "--log-uid", "--log-macdecode", "--nflog-size", "--contiguous", "--soft", "--strict", "--fragfirst",
             "--fragmore", "--fraglast", "--fragres"}
TWO_VALUE_OPTS = {"--tcp-flags", "--match-set", "--set-counters", "-c"}
KNOWN_MODULES = {"tcp", "udp", "icmp", "icmp6", "icmpv6", "multiport", "conntrack", "state", "limit", "hashlimit",
                 "recent", "connlimit", "addrtype", "comment", "iprange", "pkttype", "rt"}
TCP_FLAGS = {"SYN", "ACK", "FIN", "RST", "URG", "PSH", "ECE", "CWR"}


def _syn_matches(mask: str, comp: str) -> bool:
    """Whether a bare SYN matches ``--tcp-flags mask comp``."""

    def flags(text: str) -> set[str]:
        text = text.upper()
        if text == "ALL":
            return set(TCP_FLAGS)
        if text == "NONE":
            return set()
        return set(text.split(","))

    mask_set = flags(mask)
    return ({"SYN"} & mask_set) == (flags(comp) & mask_set)


def _ctstate(states: str, negate: bool) -> Cond:
    new = "NEW" in {s.strip().upper() for s in states.split(",")}
    return Cond("const", value=new != negate, text=f"state {states}")


@dataclass
class _IptRule:
    conds: list[Cond] = field(default_factory=list)
    target: str = ""
    target_args: list[str] = field(default_factory=list)
    goto: bool = False
    ports_either: IntervalSet | None = None  # multiport --ports: source OR destination port


def _ipt_rule_options(tokens: list[str], family: str) -> _IptRule:
    """The conditions and target of one rule's options (ValueError on malformed options)."""
    out = _IptRule()
    i, negate, module = 0, False, ""

    def value() -> str:
        nonlocal i
        if i + 1 >= len(tokens):
            raise ValueError(f"option {tokens[i]} needs a value")
        i += 1
        return tokens[i]

    def add(cond: Cond) -> None:
        out.conds.append(cond)

    while i < len(tokens):
        tok = tokens[i]
        neg, negate = negate, False
        if tok == "!":
            negate = True
        elif tok in ("-p", "--protocol"):
            names = frozenset(proto_number(p) for p in value().split(","))
            add(Cond("proto", names=names, negate=neg))
        elif tok in ("-s", "--source", "--src", "-d", "--destination", "--dst"):
            kind = "src" if tok in ("-s", "--source", "--src") else "dst"
            add(Cond(kind, ranges=iset(net_interval(a, family) for a in value().split(",")), negate=neg))
        elif tok in ("-i", "--in-interface"):
            name = value()
            add(Cond("iif", names=frozenset({name}), negate=neg))
        elif tok in ("-o", "--out-interface"):
            add(Cond("unknown", text=f"{'! ' if neg else ''}-o {value()}"))
        elif tok in ("-f", "--fragment"):
            add(Cond("const", value=neg, text="fragment"))  # a new connection's first packet is no fragment
        elif tok in ("-m", "--match"):
            module = value().lower()
            if module == "rt":  # an IPv6 routing header: a plain SYN or ping has none
                add(Cond("const", value=False, text="-m rt"))
            elif module not in KNOWN_MODULES:  # one unknown condition with all the module's options
                words = [f"-m {module}"]
                while i + 1 < len(tokens) and not (tokens[i + 1] in CORE_OPTS and tokens[i + 1] != "!") and not (
                        tokens[i + 1] == "!" and i + 2 < len(tokens) and tokens[i + 2] in CORE_OPTS):
                    i += 1
                    words.append(tokens[i])
                add(Cond("unknown", text=" ".join(words)))
        elif tok in ("-j", "--jump", "-g", "--goto"):
            out.goto = tok in ("-g", "--goto")
            out.target = value()
            out.target_args = tokens[i + 1:]
            break
        elif tok in ("-c", "--set-counters"):
            value()
            value()
        elif tok in ("--dport", "--destination-port", "--sport", "--source-port") and module != "multiport":
            kind = "dport" if tok in ("--dport", "--destination-port") else "sport"
            add(Cond(kind, ranges=iset([port_interval(value())]), negate=neg))
        elif tok in ("--dports", "--destination-ports", "--sports", "--source-ports", "--ports"):
            ranges = iset(port_interval(p) for p in value().split(","))
            if tok == "--ports":
                if neg:
                    add(Cond("unknown", text="! --ports"))
                else:
                    out.ports_either = ranges
            else:
                add(Cond("dport" if tok.startswith("--d") else "sport", ranges=ranges, negate=neg))
        elif tok == "--syn":
            add(Cond("const", value=not neg, text="--syn"))
        elif tok == "--tcp-flags":
            mask = value()
            add(Cond("const", value=_syn_matches(mask, value()) != neg, text="--tcp-flags"))
        elif tok in ("--ctstate", "--state"):
            add(_ctstate(value(), neg))
        elif tok in ("--icmp-type", "--icmpv6-type"):
            found = icmp_interval(value(), family)
            proto = "1" if family == IPV4 else "58"
            add(Cond("proto", names=frozenset({proto})))
            if found is not None:
                add(Cond("icmp", ranges=(found,), negate=neg))
        elif tok in ("--src-range", "--dst-range"):
            add(Cond("src" if tok == "--src-range" else "dst", ranges=(addr_interval(value(), family),),
                     negate=neg))
        elif tok in ("--src-type", "--dst-type"):
            types = {t.upper() for t in value().split(",")}
            ours = {"LOCAL", "UNICAST"} if tok == "--dst-type" else {"UNICAST"}
            add(Cond("const", value=bool(types & ours) != neg, text=f"{tok} {','.join(sorted(types))}"))
        elif tok == "--pkt-type":
            add(Cond("const", value=(value().lower() in ("unicast", "host")) != neg, text="--pkt-type"))
        elif tok in ("--limit", "--hashlimit-upto", "--hashlimit", "--connlimit-upto"):
            value()
            add(Cond("rate", rate="over" if neg else "under", text=tok))
        elif tok in ("--hashlimit-above", "--connlimit-above"):
            value()
            add(Cond("rate", rate="under" if neg else "over", text=tok))
        elif tok in ("--update", "--rcheck", "--remove") and module == "recent":
            add(Cond("rate", rate="under" if neg else "over", text=f"recent {tok}"))
        elif tok == "--set" and module == "recent":
            add(Cond("rate", rate="always", text="recent --set"))
        elif tok == "--comment" or (module in ("limit", "hashlimit", "recent", "connlimit", "comment", "rt")
                                    and tok.startswith("--")):
            if tok not in FLAG_OPTS:
                value()
        elif tok.startswith("--") or tok.startswith("-"):
            text = f"-m {module} {'! ' if neg else ''}{tok}" if module else tok
            if tok in TWO_VALUE_OPTS:
                text += f" {value()}"
                text += f" {value()}"
            elif tok not in FLAG_OPTS and i + 1 < len(tokens) and not tokens[i + 1].startswith("-") \
                    and tokens[i + 1] != "!":
                text += f" {value()}"
            add(Cond("unknown", text=text))
        else:
            raise ValueError(f"unexpected {tok!r}")
        i += 1
    return out


def _ipt_rule(chain: str, index: int, line: int, text: str, opts: _IptRule) -> list[Rule]:
    target = opts.target
    logs = target.upper() in LOG_TARGETS
    if not target:
        verdict = "continue"
    elif target in ("ACCEPT", "RETURN"):
        verdict = target.lower()
    elif target in DROP_TARGETS:
        verdict = DROP_TARGETS[target]
    elif target in ("QUEUE", "NFQUEUE"):
        verdict = "queue"
    elif logs or target in NON_TERMINAL_TARGETS:
        verdict = "continue"
    else:
        verdict = "goto" if opts.goto else "jump"  # an extension target if no such chain: see parse_iptables_save
    conds = tuple(opts.conds)
    if opts.ports_either is not None:  # --ports: the source OR the destination port is in the list
        if verdict in ("accept", "drop", "reject"):
            return [Rule(chain, index, line, text, (*conds, Cond("dport", ranges=opts.ports_either)), verdict, target,
                         logs),
                    Rule(chain, index, line, text, (*conds, Cond("sport", ranges=opts.ports_either)), verdict,
                         target, logs)]
        conds = (*conds, Cond("unknown", text="-m multiport --ports"))
    return [Rule(chain, index, line, text, conds, verdict, target if verdict in ("jump", "goto", "unknown") else "",
                 logs)]


def parse_iptables_save(text: str, family: str) -> Ruleset:
    """Parse ``iptables-save``/``ip6tables-save`` output (or a rules.v4 file); ParseError names the line."""
    rules = Ruleset("iptables", family)
    table: Table | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if "(nf_tables)" in line:
                rules.backend = "nf_tables"
            elif "(legacy)" in line or re.search(r"iptables-save v1\.[0-7]\.", line):
                rules.backend = "legacy"
            found = re.search(r"Table `(\w+)' is incompatible", line)
            if found:
                rules.incompatible.add(found.group(1))
            if "legacy tables present" in line:
                rules.legacy_present = True
            continue
        if line.startswith("*"):
            name = line[1:].strip()
            table = rules.tables.setdefault(name, Table("ip" if family == IPV4 else "ip6", name, line=number))
            continue
        if line == "COMMIT":
            table = None
            continue
        if table is None:
            raise ParseError(f"line {number}: `{_short(line)}` is outside a table (no *table line before it)")
        if line.startswith(":"):
            parts = line[1:].split()
            if len(parts) < 2:
                raise ParseError(f"line {number}: malformed chain declaration `{_short(line)}`")
            name, policy = parts[0], parts[1].upper()
            chain = table.chains.setdefault(name, Chain(name, line=number))
            if policy in ("ACCEPT", "DROP"):
                chain.policy = policy.lower()
            continue
        body = re.sub(r"^\[\d+:\d+\]\s+", "", line)
        try:
            tokens = shlex.split(body)
        except ValueError as exc:
            raise ParseError(f"line {number}: cannot split `{_short(line)}` ({exc})") from None
        if not tokens or tokens[0] not in ("-A", "--append", "-I", "--insert", "-N", "--new-chain", "-P",
                                           "--policy", "-F", "--flush"):
            raise ParseError(f"line {number}: `{_short(line)}` is not an iptables-save line")
        if len(tokens) < 2:
            raise ParseError(f"line {number}: `{_short(line)}` names no chain")
        op, name = tokens[0], tokens[1]
        chain = table.chains.setdefault(name, Chain(name, line=number))
        if op in ("-N", "--new-chain"):
            continue
        if op in ("-P", "--policy"):
            if len(tokens) > 2 and tokens[2].upper() in ("ACCEPT", "DROP"):
                chain.policy = tokens[2].lower()
            continue
        if op in ("-F", "--flush"):
            chain.rules.clear()
            continue
        args, position = tokens[2:], None
        if op in ("-I", "--insert"):
            position = 0
            if args and args[0].isdigit():
                position = int(args[0]) - 1
                args = args[1:]
        try:
            opts = _ipt_rule_options(args, family)
        except ValueError as exc:
            raise ParseError(f"line {number}: {exc} in `{_short(line)}`") from None
        new = _ipt_rule(name, 0, number, body, opts)
        if position is None:
            chain.rules.extend(new)
        else:
            chain.rules[position:position] = new
        for unknown in (c for r in new for c in r.conds if c.kind == "unknown"):
            rules.notes.append(f"line {number}: `{unknown.text}` is not evaluated")
    for tbl in rules.tables.values():
        for chain in tbl.chains.values():
            for pos, rule in enumerate(chain.rules):
                if rule.verdict in ("jump", "goto") and rule.target not in tbl.chains:
                    # not a chain: an extension target outsidein does not know
                    chain.rules[pos] = replace(rule, verdict="unknown")
                    rules.notes.append(f"line {rule.line}: target {rule.target} is not evaluated")
            chain.rules = [replace(r, index=pos) for pos, r in _positions(chain.rules)]
            for cname, hook, prio in IPT_BASE.get(tbl.name, ()):
                if chain.name == cname:
                    chain.hook, chain.type, chain.priority = hook, "filter", prio
            if chain.hook is None and chain.name in ("INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"):
                chain.type = "builtin"
    return rules


def _positions(rules: list[Rule]) -> Iterator[tuple[int, Rule]]:
    """Rule positions as iptables numbers them (a rule expanded in two keeps one number)."""
    pos, last = 0, None
    for rule in rules:
        if (rule.line, rule.text) != last:
            pos += 1
            last = (rule.line, rule.text)
        yield pos, rule


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------------------ nft parser

_NFT_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[{}();,]|\n|[^\s{}();,"]+')
PRIORITY_NAMES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}
BLOCK_KINDS = {"table", "chain", "set", "map", "flowtable", "counter", "quota", "limit", "secmark", "synproxy"}
VERDICTS = {"accept", "drop", "reject", "return", "continue", "jump", "goto", "queue"}
REL_OPS = {"==": "==", "eq": "==", "!=": "!=", "ne": "!=", "<": "<", "lt": "<", ">": ">", "gt": ">",
           "<=": "<=", "le": "<=", ">=": ">=", "ge": ">="}


@dataclass(frozen=True)
class Tok:
    text: str
    line: int


@dataclass
class Stmt:
    toks: list[Tok]


@dataclass
class Block:
    header: list[Tok]
    body: list[Stmt | Block]


def _nft_tokens(text: str) -> list[Tok]:
    out: list[Tok] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        for match in _NFT_TOKEN.finditer(line):
            out.append(Tok(match.group(0), number))
        out.append(Tok("\n", number))
    return out


def _strip_comment(line: str) -> str:
    quoted = False
    for pos, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == "#" and not quoted:
            return line[:pos]
    return line


def _is_block_header(toks: list[Tok]) -> bool:
    words = [t.text for t in toks]
    if words and words[0] in ("add", "create"):
        words = words[1:]
    if not words:
        return False
    if words[0] == "table":
        return 2 <= len(words) <= 3
    if words[0] == "ct":
        return len(words) >= 3 and words[1] in ("helper", "timeout", "expectation")
    if words[0] in BLOCK_KINDS:
        return 2 <= len(words) <= 4  # "chain input" inside a table; "chain ip filter input" at top level
    return False


def _nft_tree(toks: list[Tok]) -> list[Stmt | Block]:
    pos = 0

    def block(top: bool) -> list[Stmt | Block]:
        nonlocal pos
        nodes: list[Stmt | Block] = []
        cur: list[Tok] = []
        depth = 0
        while pos < len(toks):
            tok = toks[pos]
            if tok.text == "{":
                if depth == 0 and _is_block_header(cur):
                    pos += 1
                    nodes.append(Block(cur, block(False)))
                    cur = []
                    continue
                depth += 1
                cur.append(tok)
            elif tok.text == "}":
                if depth == 0:
                    if cur:
                        nodes.append(Stmt(cur))
                    if top:
                        raise ParseError(f"line {tok.line}: unbalanced `}}`")
                    pos += 1
                    return nodes
                depth -= 1
                cur.append(tok)
            elif tok.text in (";", "\n"):
                if depth == 0 and cur:
                    nodes.append(Stmt(cur))
                    cur = []
            else:
                cur.append(tok)
            pos += 1
        if depth or not top:
            where = cur[0].line if cur else (toks[-1].line if toks else 0)
            raise ParseError(f"line {where}: a `{{` is never closed")
        if cur:
            nodes.append(Stmt(cur))
        return nodes

    return block(True)


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == '"' and text[-1] == '"' else text


def parse_nft(text: str) -> Ruleset:
    """Parse ``nft list ruleset`` output or an nftables.conf; ParseError names the line."""
    rules = Ruleset("nft", "any")
    defines: dict[str, list[str]] = {}
    toks = _nft_tokens(text)
    # $variables from `define` are substituted before anything else reads the tokens.
    out: list[Tok] = []
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok.text == "define" and (not out or out[-1].text == "\n"):
            j = i + 1
            while j < len(toks) and toks[j].text != "\n":
                j += 1
            words = [t.text for t in toks[i + 1:j]]
            if len(words) >= 3 and words[1] == "=":
                defines[words[0]] = words[2:]
            i = j
            continue
        if tok.text.startswith("$") and tok.text[1:] in defines:
            out.extend(Tok(w, tok.line) for w in defines[tok.text[1:]])
        else:
            out.append(tok)
        i += 1
    tree = _nft_tree(out)
    pending: list[tuple[Table, Chain, list[Tok], bool]] = []  # `add/insert rule` statements, applied in order
    for node in tree:
        if isinstance(node, Block):
            words = [t.text for t in node.header]
            if words[0] in ("add", "create"):
                words = words[1:]
            if words[0] == "table":
                table = _nft_table(rules, words[1:], node.header[0].line)
                _nft_table_body(rules, table, node.body)
            elif words[0] == "chain" and len(words) >= 3:
                table = _nft_table(rules, words[1:-1], node.header[0].line)
                chain = table.chains.setdefault(words[-1], Chain(words[-1], line=node.header[0].line))
                _nft_chain_body(rules, table, chain, node.body, pending)
            elif words[0] in ("set", "map") and len(words) >= 3:
                table = _nft_table(rules, words[1:-1], node.header[0].line)
                table.sets[words[-1]] = _nft_set(words[-1], node.body)
            continue
        words = [t.text for t in node.toks]
        line = node.toks[0].line
        if words[:2] == ["flush", "ruleset"] or words[0] in ("delete", "destroy", "list", "reset"):
            continue
        if words[0] == "include":
            rules.notes.append(f"line {line}: include {words[1] if len(words) > 1 else ''} is not followed")
            continue
        verb = words[0]
        if verb in ("add", "create", "insert") and len(words) > 1:
            kind, rest = words[1], words[2:]
            if kind == "table" and rest:
                _nft_table(rules, rest, line)
            elif kind == "chain" and len(rest) >= 2:
                table = _nft_table(rules, rest[:-1], line)
                table.chains.setdefault(rest[-1], Chain(rest[-1], line=line))
            elif kind == "rule" and len(rest) >= 3:
                fam_words, offset = (rest[:2], 2) if rest[0] in _FAMILIES else (["ip", rest[0]], 1)
                table = _nft_table(rules, fam_words, line)
                chain = table.chains.setdefault(rest[offset], Chain(rest[offset], line=line))
                body = node.toks[3 + offset:]
                pending.append((table, chain, body, verb == "insert"))
            elif kind == "element" and len(rest) >= 3:
                fam_words = rest[:2] if rest[0] in _FAMILIES else ["ip", rest[0]]
                table = _nft_table(rules, fam_words, line)
                name = rest[len(fam_words)]
                target = table.sets.setdefault(name, NftSet(name))
                target.elements.extend(_elements([Tok(w, line) for w in rest[len(fam_words) + 1:]]))
            continue
        if verb == "flush" and len(words) > 1:
            continue
        raise ParseError(f"line {line}: `{_short(' '.join(words))}` is not an nft statement outsidein reads")
    for table, chain, body, insert in pending:
        rule = _nft_rule(rules, table, chain.name, 0, body)
        if insert:
            chain.rules[0:0] = rule
        else:
            chain.rules.extend(rule)
    for table in rules.tables.values():
        for chain in table.chains.values():
            chain.rules = [replace(r, index=pos) for pos, r in _positions(chain.rules)]
    return rules


_FAMILIES = {"ip", "ip6", "inet", "arp", "bridge", "netdev"}


def _nft_table(rules: Ruleset, words: list[str], line: int) -> Table:
    family, name = (words[0], words[1]) if len(words) >= 2 and words[0] in _FAMILIES else ("ip", words[0])
    return rules.tables.setdefault(f"{family} {name}", Table(family, name, line=line))


def _nft_table_body(rules: Ruleset, table: Table, body: list[Stmt | Block]) -> None:
    pending: list[tuple[Table, Chain, list[Tok], bool]] = []
    for node in body:
        if isinstance(node, Block):
            words = [t.text for t in node.header]
            if words[0] == "chain" and len(words) >= 2:
                chain = table.chains.setdefault(words[1], Chain(words[1], line=node.header[0].line))
                _nft_chain_body(rules, table, chain, node.body, pending)
            elif words[0] in ("set", "map") and len(words) >= 2:
                table.sets[words[1]] = _nft_set(words[1], node.body)
            elif words[0] == "limit" and len(words) >= 2:
                over = any("over" in (t.text for t in s.toks) for s in node.body if isinstance(s, Stmt))
                table.sets[f"limit:{words[1]}"] = NftSet(words[1], type="over" if over else "under")
        else:
            words = [t.text for t in node.toks]
            if words[:1] == ["flags"] and "dormant" in words:
                table.dormant = True
    for tbl, chain, toks, _ in pending:
        chain.rules.extend(_nft_rule(rules, tbl, chain.name, 0, toks))


def _nft_set(name: str, body: list[Stmt | Block]) -> NftSet:
    found = NftSet(name)
    for node in body:
        if not isinstance(node, Stmt):
            continue
        words = [t.text for t in node.toks]
        if words[0] in ("type", "typeof"):
            found.type = " ".join(words[1:])
        elif words[0] == "timeout" or (words[0] == "flags" and any(w in ("dynamic", "timeout") for w in words)):
            found.dynamic = True
        elif words[0] == "elements":
            found.elements.extend(_elements(node.toks[2:]))
    return found


def _elements(toks: list[Tok]) -> list[str]:
    """The first word of each comma-separated element in ``{ a, b timeout 1h, c }``."""
    out: list[str] = []
    expect = True
    for tok in toks:
        if tok.text in ("{", "}"):
            continue
        if tok.text == ",":
            expect = True
        elif expect:
            out.append(_unquote(tok.text))
            expect = False
    return out


def _nft_chain_body(rules: Ruleset, table: Table, chain: Chain, body: list[Stmt | Block],
                    pending: list[tuple[Table, Chain, list[Tok], bool]]) -> None:
    for node in body:
        if isinstance(node, Block):
            continue
        words = [t.text for t in node.toks]
        if words[0] == "type" and "hook" in words:
            chain.type = words[1] if len(words) > 1 else None
            chain.hook = words[words.index("hook") + 1] if words.index("hook") + 1 < len(words) else None
            if "priority" in words:
                chain.priority = _priority(words[words.index("priority") + 1:])
            if "policy" in words:
                chain.policy = words[words.index("policy") + 1] if words.index("policy") + 1 < len(words) else None
        elif words[0] == "policy" and len(words) > 1:
            chain.policy = words[1]
        elif words[0] in ("comment", "devices", "device"):
            continue
        else:
            pending.append((table, chain, node.toks, False))


def _priority(words: list[str]) -> int:
    total, sign = 0, 1
    for word in words:
        if word in ("+", "-"):
            sign = 1 if word == "+" else -1
        elif word in PRIORITY_NAMES:
            total += sign * PRIORITY_NAMES[word]
        elif re.fullmatch(r"-?\d+", word):
            total += sign * int(word)
        else:
            break
    return total


class _Reader:
    def __init__(self, toks: list[Tok]) -> None:
        self.words = [t.text for t in toks]
        self.pos = 0

    def peek(self, offset: int = 0) -> str:
        at = self.pos + offset
        return self.words[at] if at < len(self.words) else ""

    def take(self) -> str:
        word = self.peek()
        self.pos += 1
        return word

    def done(self) -> bool:
        return self.pos >= len(self.words)

    def operator(self) -> str:
        if self.peek() in REL_OPS:
            return REL_OPS[self.take()]
        return "=="

    def values(self) -> list[str]:
        """One value, a ``{ … }`` set (first word of each element), an ``@set`` or a bare comma list."""
        if self.peek() == "{":
            depth, toks = 0, []
            while not self.done():
                word = self.take()
                toks.append(Tok(word, 0))
                depth += word == "{"
                depth -= word == "}"
                if depth == 0:
                    break
            return _elements(toks)
        out = [_unquote(self.take())]
        while self.peek() == ",":
            self.take()
            out.append(_unquote(self.take()))
        return out

    def braces(self) -> list[str]:
        """The words of a ``{ … }`` group (for meters and set updates)."""
        out: list[str] = []
        if self.peek() != "{":
            return out
        depth = 0
        while not self.done():
            word = self.take()
            depth += word == "{"
            depth -= word == "}"
            out.append(word)
            if depth == 0:
                break
        return out


def _rate_cond(words: list[str], text: str) -> Cond:
    return Cond("rate", rate="over" if "over" in words else "under", text=text)


_STATEMENT_START = {"counter", "accept", "drop", "reject", "return", "continue", "jump", "goto", "queue", "log",
                    "limit", "meter", "ct", "meta", "ip", "ip6", "tcp", "udp", "th", "icmp", "icmpv6", "iif",
                    "iifname", "oif", "oifname", "comment", "add", "update", "fib", "pkttype", "l4proto", "nfproto",
                    "notrack", "xt", "mark", "sctp", "dccp", "udplite", "rt", "vmap"}
_META_KEYS = {"iif", "iifname", "oif", "oifname", "l4proto", "nfproto", "pkttype", "protocol", "mark", "skuid",
              "skgid", "hour", "day", "time", "cpu", "cgroup", "length", "priority", "nftrace", "ibrname",
              "obrname", "iiftype", "oiftype", "rtclassid", "secpath", "random", "ipsec", "sdif", "sdifname"}
_MATCH_WORDS = {"ip", "ip6", "tcp", "udp", "th", "sctp", "dccp", "udplite", "icmp", "icmpv6", "meta", "rt",
                *_META_KEYS}
_SIDE_EFFECTS = {"notrack", "masquerade", "snat", "dnat", "redirect", "tproxy", "dup", "fwd", "flow", "synproxy"}
KeyBuilder = Callable[[str, list[str]], list[Cond]]
Vmap = list[tuple[list[Cond], str, str]]


def _trailing_verdict(words: list[str], verdict: str, target: str, logs: bool) -> tuple[str, str, bool]:
    """The verdict of a rule whose middle was not understood: the last verdict word in it."""
    for pos, word in enumerate(words):
        if word in ("accept", "drop", "reject", "return", "continue", "queue"):
            verdict, target = word, ""
        elif word in ("jump", "goto") and pos + 1 < len(words):
            verdict, target = word, words[pos + 1]
        elif word == "log":
            logs = True
    return verdict, target, logs


def _until_statement(reader: _Reader) -> list[str]:
    words: list[str] = []
    while not reader.done() and reader.peek() not in _STATEMENT_START:
        words.append(reader.take())
    return words


def _vmap(reader: _Reader, build: KeyBuilder) -> Vmap:
    """``key vmap { a : accept, b : jump x }`` as one (conditions, verdict, target) per element."""
    words = reader.braces()[1:-1]
    out: Vmap = []
    element: list[str] = []
    for word in [*words, ","]:
        if word != ",":
            element.append(word)
            continue
        if ":" in element:
            split = element.index(":")
            keys, verdict = element[:split], element[split + 1:]
            conds = build("==", [_unquote(k) for k in keys[:1]])
            out.append((conds, verdict[0] if verdict else "unknown", verdict[1] if len(verdict) > 1 else ""))
        element = []
    return out


def _ct_state(op: str, vals: list[str]) -> list[Cond]:
    states = {v.lower() for v in vals}
    return [Cond("const", value=("new" in states) != (op == "!="), text="ct state")]


def _nft_ct(reader: _Reader) -> list[Cond] | Vmap:
    key = reader.take()
    if key == "state":
        if reader.peek() == "vmap":
            reader.take()
            return _vmap(reader, _ct_state)
        op = reader.operator()
        return _ct_state(op, reader.values())
    if key == "count":
        words = _until_statement(reader)
        return [_rate_cond(words, "ct count " + " ".join(words))]
    if key == "status" and reader.peek() not in ("set", "&"):
        op = reader.operator()
        values = {v.lower() for v in reader.values()}
        if values <= {"dnat", "snat"}:  # a new connection addressed to this host is not NATed by it
            return [Cond("const", value=op == "!=", text=f"ct status {','.join(sorted(values))}")]
        return [Cond("unknown", text=f"ct status {','.join(sorted(values))}")]
    words = [key, *_until_statement(reader)]
    if words[1:2] == ["set"]:
        return []  # ct mark set …: a side effect
    return [Cond("unknown", text="ct " + " ".join(words))]


def _nft_fib(reader: _Reader) -> list[Cond]:
    """``fib daddr type local`` (true for a packet to this host), ``fib saddr . iif oif missing`` (false for
    traffic that passes reverse-path filtering); other fib expressions are not evaluated."""
    flags = [reader.take()]
    while reader.peek() == ".":
        reader.take()
        flags.append(reader.take())
    result = reader.take()
    op = reader.operator()
    values = {v.lower() for v in reader.values()}
    text = f"fib {' . '.join(flags)} {result} {'' if op == '==' else op + ' '}{','.join(sorted(values))}"
    if result == "type" and "daddr" in flags:
        return [Cond("const", value=bool(values & {"local", "unicast"}) != (op == "!="), text=text)]
    if result in ("oif", "oifname") and "saddr" in flags and values <= {"missing", "0"} and op in ("==", "!="):
        return [Cond("const", value=op == "!=", text=text)]
    return [Cond("unknown", text=text)]


def _nft_match(word: str, reader: _Reader, table: Table) -> list[Cond] | Vmap:
    """``<word> [<field>] [op] <values>`` (or ``… vmap { … }``) as conditions."""
    if word == "meta":
        word = reader.take()
        if word not in _META_KEYS:
            raise ValueError(f"meta {word}")
    field_ = word if word in _META_KEYS else reader.take()
    if reader.peek() == "set":  # meta mark set 1, ip dscp set …: side effects
        reader.take()
        _until_statement(reader)
        return []
    if word == "tcp" and field_ == "flags":
        text = " ".join(_until_statement(reader))
        syn = _nft_tcp_flags(text)
        return [Cond("const", value=syn, text=f"tcp flags {text}") if syn is not None
                else Cond("unknown", text=f"tcp flags {text}")]
    if word == "ip" and field_ == "frag-off":
        text = " ".join(_until_statement(reader))
        if re.fullmatch(r"& (0x1fff|8191) != 0", text):
            return [Cond("const", value=False, text="fragment", family=IPV4)]  # a first packet is no fragment
        return [Cond("unknown", text=f"ip frag-off {text}")]
    if reader.peek() in ("&", "|", "^", ">>", "<<", "."):
        raise ValueError(f"{word} {field_} {reader.peek()} …")

    def build(op: str, vals: list[str]) -> list[Cond]:
        return _keyed_conds(word, field_, op, vals, op == "!=", table)

    if reader.peek() == "vmap":
        reader.take()
        return _vmap(reader, build)
    op = reader.operator()
    return build(op, reader.values())


def _nft_rule(rules: Ruleset, table: Table, chain: str, index: int, toks: list[Tok]) -> list[Rule]:
    """One nft rule; anything not understood becomes an unknown condition (never an error)."""
    line = toks[0].line if toks else 0
    reader = _Reader(toks)
    conds: list[Cond] = []
    verdict, target, logs = "continue", "", False
    vmap: Vmap | None = None
    text = _short(" ".join(reader.words), 200)
    text = re.sub(r"counter packets \d+ bytes \d+ ?", "", text).strip()
    while not reader.done():
        word = reader.take()
        try:
            if word == "counter":
                if reader.peek() == "packets":
                    reader.pos += 4
                elif reader.peek() == "name":
                    reader.pos += 2
            elif word == "comment":
                reader.take()
            elif word in ("accept", "drop", "return", "continue"):
                verdict = word
            elif word == "reject":
                verdict = "reject"
                if reader.peek() == "with":  # with tcp reset | with icmp[x|v6] [type] <code>
                    reader.pos += 2
                    if reader.peek() == "type":
                        reader.take()
                    reader.take()
            elif word in ("jump", "goto"):
                verdict, target = word, reader.take()
            elif word == "queue":
                verdict = "queue"
                reader.pos = len(reader.words)
            elif word == "log":
                logs = True
                while reader.peek() in ("prefix", "level", "flags", "group", "snaplen", "queue-threshold"):
                    reader.take()
                    reader.values()
            elif word == "limit":
                if reader.peek() == "name":
                    reader.take()
                    obj = table.sets.get(f"limit:{_unquote(reader.take())}")
                    conds.append(Cond("rate", rate=obj.type if obj else "under", text="limit name"))
                else:
                    words = _until_statement(reader)
                    conds.append(_rate_cond(words, "limit " + " ".join(words)))
            elif word == "meter":
                reader.take()
                while reader.peek() == "size":
                    reader.pos += 2
                inner = reader.braces()
                conds.append(_rate_cond(inner, "meter") if "limit" in inner
                             else Cond("unknown", text="meter without a limit"))
            elif word in ("add", "update") and reader.peek().startswith("@"):
                reader.take()
                inner = reader.braces()
                if "limit" in inner or "count" in inner:
                    conds.append(_rate_cond(inner, f"{word} set with a limit"))
            elif word in ("ct", "fib") or word in _MATCH_WORDS:
                found = _nft_ct(reader) if word == "ct" else _nft_fib(reader) if word == "fib" \
                    else _nft_match(word, reader, table)
                if found and isinstance(found[0], tuple):
                    vmap = [entry for entry in found if isinstance(entry, tuple)]
                else:
                    conds.extend(c for c in found if isinstance(c, Cond))
            elif word == "xt":
                kind, name = reader.take(), reader.take()
                if kind == "target":
                    verdict, target = "unknown", f"xt target {name}"
                else:
                    conds.append(Cond("unknown", text=f"xt match {name}"))
            elif word in _SIDE_EFFECTS:
                while not reader.done() and reader.peek() not in VERDICTS and reader.peek() != "log":
                    reader.take()
            else:
                raise ValueError(" ".join([word, *reader.words[reader.pos:]]))
        except (ValueError, IndexError) as exc:
            conds.append(Cond("unknown", text=_short(str(exc) or word, 80)))
            verdict, target, logs = _trailing_verdict(reader.words[reader.pos:], verdict, target, logs)
            break
    for cond in conds:
        if cond.kind == "unknown":
            rules.notes.append(f"line {line}: `{cond.text}` is not evaluated")
    if verdict == "unknown":
        rules.notes.append(f"line {line}: `{target}` is not evaluated")
    if vmap is not None:
        return [Rule(chain, index, line, text, (*conds, *extra), v, t, logs) for extra, v, t in vmap]
    return [Rule(chain, index, line, text, tuple(conds), verdict, target, logs)]


def _nft_tcp_flags(text: str) -> bool | None:
    """Whether a bare SYN matches ``tcp flags …`` (None when the expression is not one outsidein reads)."""
    text = text.replace("(", " ").replace(")", " ").replace("|", ",")

    def flags(part: str) -> set[str]:
        return {f.strip().upper() for f in part.replace(" ", ",").split(",") if f.strip()}

    m = re.fullmatch(r"\s*&\s*([\w, ]+?)\s*==\s*([\w, ]+)\s*", text)
    if m:
        return ({"SYN"} & flags(m.group(1))) == flags(m.group(2))
    m = re.fullmatch(r"\s*([\w ,]+?)\s*/\s*([\w ,]+)\s*", text)
    if m:
        return ({"SYN"} & flags(m.group(2))) == flags(m.group(1))
    m = re.fullmatch(r"\s*(==)?\s*([\w ,]+)\s*", text)
    if m:
        return "SYN" in flags(m.group(2)) if m.group(1) is None else flags(m.group(2)) == {"SYN"}
    return None


def _set_values(vals: list[str], table: Table) -> tuple[list[str], NftSet | None]:
    if len(vals) == 1 and vals[0].startswith("@"):
        found = table.sets.get(vals[0][1:])
        if found is None:
            raise ValueError(f"set {vals[0]} is not defined")
        return found.elements, found
    return vals, None


def _relational(op: str, value: int, top: int) -> IntervalSet:
    return {"<": ((0, value - 1),), ">": ((value + 1, top),), "<=": ((0, value),), ">=": ((value, top),)}.get(
        op, ((value, value),))


def _keyed_conds(word: str, field_: str, op: str, vals: list[str], negate: bool, table: Table) -> list[Cond]:
    elements, named = _set_values(vals, table)
    if named is not None and named.dynamic:
        # Membership of a set the ruleset fills at run time (a blocklist fed by a rate limit): the first
        # connection is in no such set; a flood may be.
        return [Cond("rate", rate="under" if negate else "over", text=f"{word} {field_} {vals[0]}")]
    if word in ("ip", "ip6") and field_ in ("saddr", "daddr"):
        family = IPV4 if word == "ip" else IPV6
        if op in ("<", ">", "<=", ">="):
            raise ValueError(f"{word} {field_} {op}")
        ranges = iset(addr_interval(e, family) for e in elements)
        return [Cond("src" if field_ == "saddr" else "dst", ranges=ranges, negate=negate, family=family)]
    if word in ("tcp", "udp", "th", "sctp", "dccp", "udplite") and field_ in ("dport", "sport"):
        if op in ("<", ">", "<=", ">="):
            ranges = _relational(op, _port(elements[0]), 65535)
            negate = False
        else:
            ranges = iset(port_interval(e, "-") for e in elements)
        protos = {"tcp": {"6"}, "udp": {"17"}, "th": {"6", "17", "-1"}}.get(word, {"-1"})
        return [Cond("proto", names=frozenset(protos)), Cond(field_, ranges=ranges, negate=negate)]
    if word in ("iif", "iifname"):
        return [Cond("iif", names=frozenset(_iface_pattern(e) for e in elements), negate=negate)]
    if word == "l4proto" or (word == "ip" and field_ == "protocol") or (word == "ip6" and field_ == "nexthdr"):
        family = {"ip": IPV4, "ip6": IPV6}.get(word, "")
        return [Cond("proto", names=frozenset(proto_number(e) for e in elements), negate=negate, family=family)]
    if word in ("nfproto", "protocol"):
        wanted = {e.lower() for e in elements}
        on = [f for f, aliases in ((IPV4, {"ipv4", "ip"}), (IPV6, {"ipv6", "ip6"})) if wanted & aliases]
        return [Cond("family", names=frozenset(on), negate=negate)]
    if word in ("icmp", "icmpv6") and field_ in ("type", "code"):
        family = IPV4 if word == "icmp" else IPV6
        proto = "1" if word == "icmp" else "58"
        kinds: list[Interval] = []
        for element in elements:
            if field_ == "type":
                found = icmp_interval(element, family)
                kinds.append(found if found is not None else (0, 65535))
            else:
                code = int(element)
                kinds.extend((t * 256 + code, t * 256 + code) for t in range(256))
        return [Cond("proto", names=frozenset({proto}), family=family),
                Cond("icmp", ranges=iset(kinds), negate=negate, family=family)]
    if word == "pkttype":
        ours = any(e.lower() in ("host", "unicast") for e in elements)
        return [Cond("const", value=ours != negate, text="pkttype")]
    if word == "rt" and field_ in ("type", "segmentsleft", "hdrlength", "nexthdr"):
        return [Cond("const", value=False, text=f"rt {field_}")]  # an IPv6 routing header: a SYN has none
    raise ValueError(f"{word} {field_} {' '.join(vals)}")


def _iface_pattern(name: str) -> str:
    name = _unquote(name)
    return name[:-1] + "+" if name.endswith("*") else name


# ------------------------------------------------------------------------------------------------- ufw status


@dataclass(frozen=True)
class UfwRule:
    to: str
    action: str  # "ALLOW IN", "LIMIT IN", "DENY IN", "REJECT OUT" …
    source: str
    v6: bool


@dataclass
class UfwStatus:
    active: bool
    logging: str | None = None  # "off", "on (low)" …
    default_incoming: str | None = None
    default_outgoing: str | None = None
    default_routed: str | None = None
    rules: list[UfwRule] = field(default_factory=list)

    @property
    def logging_on(self) -> bool:
        return bool(self.logging) and not (self.logging or "").startswith("off")


def parse_ufw_status(text: str) -> UfwStatus:
    """Parse ``ufw status verbose``; ParseError when it is not that output."""
    lines = [line.rstrip() for line in text.splitlines()]
    status = next((line for line in lines if line.startswith("Status:")), None)
    if status is None:
        raise ParseError("line 1: no `Status:` line (not `ufw status verbose` output)")
    out = UfwStatus(active=status.split(":", 1)[1].strip().lower() == "active")
    in_rules = False
    for number, line in enumerate(lines, 1):
        if line.startswith("Logging:"):
            out.logging = line.split(":", 1)[1].strip()
        elif line.startswith("Default:"):
            for part in line.split(":", 1)[1].split(","):
                m = re.match(r"\s*(\w+)\s*\((\w+)\)", part)
                if m:
                    setattr(out, f"default_{m.group(2)}", m.group(1))
        elif line.startswith("--"):
            in_rules = True
        elif in_rules and line.strip():
            cols = re.split(r"\s{2,}", line.strip())
            if len(cols) < 3:
                cols = [*cols, "Anywhere"] if len(cols) == 2 else cols
            if len(cols) < 3:
                raise ParseError(f"line {number}: `{_short(line)}` is not a ufw rule line")
            to, action, source = cols[0], cols[1], cols[2].split("#")[0].strip()
            out.rules.append(UfwRule(to, action, source, "(v6)" in to or "(v6)" in source))
    return out


# ------------------------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Box:
    """A set of packets: the product of one set per dimension."""

    proto: frozenset[str]
    src: IntervalSet
    dst: IntervalSet
    sport: IntervalSet
    dport: IntervalSet
    icmp: IntervalSet
    iif: frozenset[str]


DIMS = ("proto", "src", "dst", "sport", "dport", "icmp", "iif")
Dimset = frozenset[str] | IntervalSet


def _d_and(a: Dimset, b: Dimset) -> Dimset:
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        return a & b
    assert isinstance(a, tuple) and isinstance(b, tuple)
    return i_and(a, b)


def _d_sub(a: Dimset, b: Dimset) -> Dimset:
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        return a - b
    assert isinstance(a, tuple) and isinstance(b, tuple)
    return i_sub(a, b)


@dataclass(frozen=True)
class Path:
    """How a packet set got where it is: unknown matches assumed to match / not to match, and logging."""

    assumed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    logged: bool = False
    via: tuple[str, ...] = ()  # what accepted it in each stage passed


@dataclass(frozen=True)
class Outcome:
    box: Box
    verdict: str  # accept, drop, reject, unknown
    path: Path
    by: str  # the rule or policy that decided (empty when every stage accepted)


@dataclass(frozen=True)
class Stage:
    label: str  # "iptables filter INPUT", "nft inet fw input"
    table: Table
    chain: Chain
    hook: str
    priority: int

    @property
    def policy(self) -> str:
        return self.chain.policy or "accept"


class TooComplex(Exception):
    """The ruleset splits the packet space into more pieces than the evaluator allows."""


MAX_BOXES = 50_000


@dataclass
class Reach:
    """The outcomes of one query: what is accepted for sure (or unless an unknown match intervenes), and not."""

    family: str
    outcomes: list[Outcome]

    @property
    def accepted(self) -> list[Outcome]:
        """Accepted on the default path: by known rules, assuming no not-understood match matches."""
        return [o for o in self.outcomes if o.verdict == "accept" and not o.path.assumed]

    @property
    def uncertain(self) -> list[Outcome]:
        """Accepted only if a not-understood match matches, or handed to a queue/unknown target."""
        return [o for o in self.outcomes if (o.verdict == "accept" and o.path.assumed) or o.verdict == "unknown"]

    @property
    def dropped(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.verdict in ("drop", "reject")]

    def sources(self, outcomes: Iterable[Outcome] | None = None) -> IntervalSet:
        out: IntervalSet = ()
        for o in self.accepted if outcomes is None else outcomes:
            out = i_or(out, o.box.src)
        return out

    def ports(self, outcomes: Iterable[Outcome] | None = None) -> IntervalSet:
        out: IntervalSet = ()
        for o in self.accepted if outcomes is None else outcomes:
            out = i_or(out, o.box.dport)
        return out

    def interfaces(self, outcomes: Iterable[Outcome] | None = None) -> frozenset[str]:
        out: frozenset[str] = frozenset()
        for o in self.accepted if outcomes is None else outcomes:
            out |= o.box.iif
        return out

    def caveats(self, outcomes: Iterable[Outcome] | None = None) -> list[str]:
        """Not-understood matches the default path assumed not to match."""
        seen: dict[str, None] = {}
        for o in self.accepted if outcomes is None else outcomes:
            seen.update(dict.fromkeys(o.path.skipped))
        return list(seen)

    def unknowns(self) -> list[str]:
        seen: dict[str, None] = {}
        for o in self.uncertain:
            seen.update(dict.fromkeys(o.path.assumed or (o.by,)))
        return list(seen)


class Pipeline:
    """Every base chain a new inbound packet of one family crosses, in hook and priority order."""

    def __init__(self, family: str, stages: Sequence[Stage], notes: Sequence[str] = ()) -> None:
        self.family = family
        self.stages = sorted(stages, key=lambda s: (0 if s.hook == "prerouting" else 1, s.priority))
        self.notes = list(notes)
        self._scenario = NORMAL
        self._boxes = 0
        reachable = self._reachable_rules()
        self.rules = reachable
        self.iifs = self._iface_universe(reachable)
        self.mentioned = self._mentioned(reachable)

    # -- universe ---------------------------------------------------------------------------------------

    def _reachable_rules(self) -> list[Rule]:
        out: list[Rule] = []
        for stage in self.stages:
            seen: set[str] = set()
            todo = [stage.chain.name]
            while todo:
                name = todo.pop()
                if name in seen:
                    continue
                seen.add(name)
                chain = stage.table.chains.get(name)
                if chain is None:
                    continue
                for rule in chain.rules:
                    out.append(rule)
                    if rule.verdict in ("jump", "goto"):
                        todo.append(rule.target)
        return out

    @staticmethod
    def _iface_universe(rules: Iterable[Rule]) -> frozenset[str]:
        names = {LOOPBACK, OTHER_IFACE}
        for rule in rules:
            for cond in rule.conds:
                if cond.kind == "iif":
                    names |= cond.names
        return frozenset(names)

    def _mentioned(self, rules: Iterable[Rule]) -> dict[str, IntervalSet]:
        out: dict[str, IntervalSet] = {"src": (), "dst": (), "sport": (), "dport": ()}
        for rule in rules:
            for cond in rule.conds:
                if cond.kind in out and (not cond.family or cond.family == self.family):
                    out[cond.kind] = i_or(out[cond.kind], cond.ranges)
        return out

    def universe(self) -> Box:
        top = ((0, ADDR_MAX[self.family]),)
        return Box(PROTOS, top, top, PORTS, PORTS, ICMP_ALL, self.iifs)

    def iface(self, name: str) -> frozenset[str]:
        """The interface class a named interface falls in (its own name, a wildcard's, or the unnamed one)."""
        if name in self.iifs:
            return frozenset({name})
        patterns = sorted((n for n in self.iifs if n.endswith("+") and name.startswith(n[:-1])), key=len)
        return frozenset({patterns[-1]}) if patterns else frozenset({OTHER_IFACE})

    def external(self, proto: str, **dims: object) -> Box:
        """New packets of ``proto`` from outside: external sources, any non-loopback interface."""
        box = replace(self.universe(), proto=frozenset({proto}), src=EXTERNAL[self.family],
                      dst=EXTERNAL[self.family], iif=self.iifs - {LOOPBACK})
        return replace(box, **dims)  # type: ignore[arg-type]

    def unmentioned(self, proto: str) -> Box:
        """A packet no rule singles out: unnamed source, destination, ports and interface."""
        box = self.external(proto, iif=frozenset({OTHER_IFACE}))
        for dim in ("src", "dst", "sport", "dport"):
            rest = i_sub(getattr(box, dim), self.mentioned[dim])
            if rest:
                box = replace(box, **{dim: rest})  # type: ignore[arg-type]
        return box

    # -- conditions --------------------------------------------------------------------------------------

    def _iface_matches(self, name: str, pattern: str) -> bool:
        if pattern.endswith("+"):
            return (name != OTHER_IFACE and name.startswith(pattern[:-1])) or pattern == "+"
        return name == pattern

    def _region(self, cond: Cond) -> tuple[str, Dimset] | bool | None:
        """The packets a condition matches: a (dimension, set), True/False for all/none, None if unknown."""
        if cond.family and cond.family != self.family:
            return False
        if cond.kind == "const":
            return cond.value
        if cond.kind == "unknown":
            return None
        if cond.kind == "rate":
            if cond.rate == "always":
                return True
            return (cond.rate == "under") == (self._scenario == NORMAL)
        if cond.kind == "family":
            return (self.family in cond.names) != cond.negate
        if cond.kind == "proto":
            value: Dimset = frozenset().union(*(proto_class(n, self.family) for n in cond.names))
            universe: Dimset = PROTOS
        elif cond.kind == "iif":
            value = frozenset(n for n in self.iifs if any(self._iface_matches(n, p) for p in cond.names))
            universe = self.iifs
        else:
            value = cond.ranges
            universe = getattr(self.universe(), cond.kind)
        if cond.negate:
            value = _d_sub(universe, value)
        return cond.kind, value

    def _split(self, rule: Rule, box: Box) -> tuple[Box | None, list[Box], tuple[str, ...]]:
        """The part of ``box`` the rule matches, the parts it does not, and the not-understood matches."""
        region: dict[str, Dimset] = {}
        unknown: list[str] = []
        for cond in rule.conds:
            res = self._region(cond)
            if res is False:
                return None, [box], ()
            if res is None:
                unknown.append(cond.text)
            elif res is not True:
                dim, value = res
                region[dim] = _d_and(region[dim], value) if dim in region else value
        inside: dict[str, Dimset] = {}
        for dim, value in region.items():
            part = _d_and(getattr(box, dim), value)
            if not part:
                return None, [box], ()
            inside[dim] = part
        rest: list[Box] = []
        fixed: dict[str, Dimset] = {}
        for dim, value in region.items():
            left = _d_sub(getattr(box, dim), value)
            if left:
                rest.append(replace(box, **fixed, **{dim: left}))  # type: ignore[arg-type]
            fixed[dim] = inside[dim]
        self._boxes += len(rest)
        if self._boxes > MAX_BOXES:
            raise TooComplex(f"more than {MAX_BOXES} packet classes")
        ref = f"{self._where(rule)}: {', '.join(unknown)}" if unknown else ""
        return replace(box, **inside), rest, ((ref,) if unknown else ())  # type: ignore[arg-type]

    @staticmethod
    def _where(rule: Rule) -> str:
        return f"rule {rule.index} of chain {rule.chain} (line {rule.line})"

    # -- walking -----------------------------------------------------------------------------------------

    def _walk(self, table: Table, name: str, items: list[tuple[Box, Path]], depth: int
              ) -> tuple[list[Outcome], list[tuple[Box, Path]]]:
        """Outcomes decided in chain ``name`` (and what it calls), and the items that left it (end or RETURN)."""
        chain = table.chains.get(name)
        if chain is None or depth > 32:
            why = f"chain {name} is not in the ruleset" if chain is None else "chains nest too deep"
            return [Outcome(b, "unknown", p, why) for b, p in items], []
        outcomes: list[Outcome] = []
        ended: list[tuple[Box, Path]] = []
        pending = items
        for rule in chain.rules:
            if not pending:
                break
            nxt: list[tuple[Box, Path]] = []
            for box, path in pending:
                inside, rest, unknown = self._split(rule, box)
                nxt.extend((b, path) for b in rest)
                if inside is None:
                    continue
                if unknown:
                    nxt.append((inside, replace(path, skipped=path.skipped + unknown)))
                    path = replace(path, assumed=path.assumed + unknown)
                if rule.logs:
                    path = replace(path, logged=True)
                where = f"{self._where(rule)} `{rule.text}`"
                if rule.verdict in ("accept", "drop", "reject"):
                    outcomes.append(Outcome(inside, rule.verdict, path, where))
                elif rule.verdict in ("queue", "unknown"):
                    outcomes.append(Outcome(inside, "unknown", path, where))
                elif rule.verdict == "return":
                    ended.append((inside, path))
                elif rule.verdict in ("jump", "goto"):
                    sub_out, sub_ended = self._walk(table, rule.target, [(inside, path)], depth + 1)
                    outcomes.extend(sub_out)
                    (nxt if rule.verdict == "jump" else ended).extend(sub_ended)
                else:
                    nxt.append((inside, path))
            pending = nxt
        ended.extend(pending)
        return outcomes, ended

    def evaluate(self, box: Box, scenario: str = NORMAL) -> Reach:
        """Walk every stage: what one accepts enters the next; a drop anywhere is final (never raises)."""
        try:
            return self._evaluate(box, scenario)
        except TooComplex as exc:
            why = f"the ruleset is too complex to evaluate ({exc})"
            return Reach(self.family, [Outcome(box, "unknown", Path(), why)])

    def _evaluate(self, box: Box, scenario: str) -> Reach:
        self._scenario, self._boxes = scenario, 0
        items: list[tuple[Box, Path]] = [(box, Path())]
        final: list[Outcome] = []
        for stage in self.stages:
            outcomes, ended = self._walk(stage.table, stage.chain.name, items, 0)
            items = []
            for outcome in outcomes:
                if outcome.verdict == "accept":
                    items.append((outcome.box, replace(outcome.path, via=(*outcome.path.via,
                                                                          f"{stage.label}: {outcome.by}"))))
                else:
                    final.append(replace(outcome, by=f"{stage.label}: {outcome.by}"))
            for b, p in ended:
                if stage.policy == "accept":
                    items.append((b, replace(p, via=(*p.via, f"{stage.label}: policy ACCEPT"))))
                else:
                    final.append(Outcome(b, "drop", p, f"{stage.label}: policy {stage.policy.upper()}"))
        final.extend(Outcome(b, "accept", p, "") for b, p in items)
        return Reach(self.family, final)

    def describe(self) -> str:
        if not self.stages:
            return "no rules are loaded"
        return "; ".join(f"{s.label} policy {s.policy.upper()} ({len(s.chain.rules)} rules)" for s in self.stages)


def mirrored_tables(ipt: Ruleset | None, nft: Ruleset | None) -> set[str]:
    """nft tables (``"ip filter"``) that are iptables-nft's own, shown by iptables-save too."""
    if ipt is None or nft is None or ipt.backend == "legacy":
        return set()
    family = "ip" if ipt.family == IPV4 else "ip6"
    out: set[str] = set()
    for name, table in ipt.tables.items():
        other = nft.tables.get(f"{family} {name}")
        if other is None or name in ipt.incompatible:
            continue
        if ipt.backend == "nf_tables" or set(other.chains) == set(table.chains):
            out.add(f"{family} {name}")
    return out


def build_pipeline(family: str, ipt: Ruleset | None, nft: Ruleset | None) -> Pipeline:
    """The stages for ``family`` from the iptables view (None: not in use) and the nft ruleset (None: same)."""
    stages: list[Stage] = []
    notes: list[str] = []
    tool = "iptables" if family == IPV4 else "ip6tables"
    if ipt is not None:
        for table in ipt.tables.values():
            for chain in table.chains.values():
                if chain.hook in ("prerouting", "input"):
                    stages.append(Stage(f"{tool} {table.name} {chain.name}", table, chain, chain.hook,
                                        chain.priority))
        notes.extend(ipt.notes)
    if nft is not None:
        skip = mirrored_tables(ipt, nft)
        wanted = ("ip" if family == IPV4 else "ip6", "inet")
        for key, table in nft.tables.items():
            if table.family not in wanted or key in skip:
                continue
            if table.dormant:
                notes.append(f"nft table {key} is dormant (not evaluated)")
                continue
            for chain in table.chains.values():
                if chain.hook in ("prerouting", "input") and chain.type == "filter":
                    stages.append(Stage(f"nft {key} {chain.name}", table, chain, chain.hook, chain.priority))
        for key, table in nft.tables.items():
            if table.family in ("netdev",) and table.chains:
                notes.append(f"nft table {key} (netdev ingress) is not evaluated")
        notes.extend(nft.notes)
    return Pipeline(family, stages, notes)
