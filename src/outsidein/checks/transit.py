"""Layer 8: encrypted transit, proven from the wire. "TLS is configured" is a claim; the bytes are the proof.

The capture checks read ``CaptureFacts`` (``outsidein.transit.facts``): TCP flows from a pcap or a bounded
live tcpdump run, classified as TLS (with the negotiated version) or plaintext, with what the plaintext gave
away already masked. ``transit-pg-ssl`` reads ``pg_stat_ssl`` joined with ``pg_stat_activity``. The socket
checks read ``ss -tlnp`` from the host evidence.

Decisions, where the playbook leaves room:

- **Credentials** (CRITICAL): a cleartext password or token (Redis AUTH, PostgreSQL cleartext password, HTTP
  Basic/Bearer, a form login, AMQP PLAIN, SMTP/IMAP AUTH and LOGIN, FTP/POP3 PASS), and challenge responses
  an eavesdropper can crack offline with the salt seen on the same wire (PostgreSQL MD5, MySQL native
  password, CRAM-MD5). A plaintext SCRAM login is not a credential; the flow still fails
  ``transit-plaintext-service``.
- **Readable data** (CRITICAL, the playbook's "no readable SQL" and "no plaintext AUTH/GET commands"): SQL
  from PostgreSQL simple and extended queries and MySQL COM_QUERY, result rows, and Redis data commands.
- **Plaintext service** (HIGH, the playbook's "TLS 1.2+ handshake observed on every service"): a plaintext
  flow with payload to a database, cache, broker, directory or mail service, by what the bytes show or,
  failing that, the well-known port.
- **Weak TLS** (HIGH): SSLv2, SSLv3, TLS 1.0 or 1.1 negotiated on the wire.
- **pg_stat_ssl**: a client connection without SSL from a non-loopback address is CRITICAL; over loopback it is
  LOW (the bytes never leave the host); Unix-socket connections are not network traffic and are skipped.
- **Wildcard binds** (CRITICAL): a data service listening on 0.0.0.0, ::, * or a public address. A specific
  private address (RFC 1918, IPv6 ULA, CGNAT 100.64/10), loopback and link-local are fine: binding one
  interface is the control, the firewall is the second.
- **Redis plaintext port next to TLS** (HIGH): a redis-server process listening on two client ports (a
  cluster bus, port + 10000, does not count) has ``tls-port`` set and ``port`` not 0.
- An empty capture, or one with no TCP payload, proves nothing: NOT_ASSESSED, never PASS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator

from outsidein.checks.registry import CAPTURE, HOST, target_check
from outsidein.host.facts import SS, HostFacts, Socket
from outsidein.models import Result, Severity, fail, not_assessed, passed
from outsidein.transit.facts import FLOWS, CaptureFacts, Flow

REQUIRES = (FLOWS,)
SENSITIVE = {"postgres", "mysql", "redis", "amqp", "mongodb", "elasticsearch", "memcached", "etcd", "kafka", "ldap",
             "smtp", "imap", "pop3", "ftp", "telnet"}
WEAK_TLS = {"SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"}
DATA_KINDS = {"sql", "sql-result", "redis-command"}
SHOWN = 3  # flows quoted per finding

DATA_SERVICES = {  # process name (ss -p) -> service
    "redis-server": "Redis", "redis-sentinel": "Redis Sentinel", "postgres": "PostgreSQL", "postmaster": "PostgreSQL",
    "mysqld": "MySQL", "mariadbd": "MariaDB", "mongod": "MongoDB", "mongos": "MongoDB", "memcached": "Memcached",
    "beam.smp": "RabbitMQ", "rabbitmq-server": "RabbitMQ", "epmd": "Erlang epmd (RabbitMQ)", "etcd": "etcd",
    "clickhouse-server": "ClickHouse", "influxd": "InfluxDB", "couchdb": "CouchDB", "valkey-server": "Valkey",
    "keydb-server": "KeyDB",
}
DATA_PORTS = {
    6379: "Redis", 6380: "Redis (TLS)", 26379: "Redis Sentinel", 5432: "PostgreSQL", 6432: "PgBouncer",
    3306: "MySQL", 33060: "MySQL X", 27017: "MongoDB", 11211: "Memcached", 5672: "RabbitMQ", 5671: "RabbitMQ (TLS)",
    15672: "RabbitMQ management", 25672: "RabbitMQ distribution", 4369: "Erlang epmd", 9200: "Elasticsearch",
    9300: "Elasticsearch transport", 2379: "etcd", 2380: "etcd peer", 9092: "Kafka", 8086: "InfluxDB",
    5984: "CouchDB", 9042: "Cassandra", 8123: "ClickHouse", 9000: "ClickHouse native",
}
PRIVATE = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                                                   "fc00::/7"))


def _flows(facts: CaptureFacts) -> list[Flow] | None:
    """The capture's flows with payload, or None for pg_stat_ssl evidence (not a capture)."""
    if facts.kind == "pg_stat_ssl":
        return None
    return [flow for flow in facts.flows if flow.encrypted is not None]


def _by_port(check_id: str, facts: CaptureFacts, hits: Iterable[tuple[Flow, str]],
             severity: Severity | None = None) -> Iterator[Result]:
    """One FAIL per server port of the capture, quoting the first flows; PASS when none."""
    grouped: dict[int, list[tuple[Flow, str]]] = {}
    for flow, text in hits:
        grouped.setdefault(flow.server_port, []).append((flow, text))
    for port, items in sorted(grouped.items()):
        flows = {flow.client for flow, _ in items}
        shown = "; ".join(text for _, text in items[:SHOWN])
        more = f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else ""
        yield fail(check_id, f"{facts.name}:{port}", f"{len(flows)} flow(s): {shown}{more}",
                   environment=facts.environment, severity=severity)
    if not grouped:
        yield passed(check_id, facts.name, environment=facts.environment)


def _judge_flows(check_id: str, facts: CaptureFacts,
                 hits: Callable[[list[Flow]], Iterable[tuple[Flow, str]]]) -> Iterator[Result]:
    """The capture's flows judged by ``hits``, grouped per server port; an empty capture proves nothing."""
    flows = _flows(facts)
    if flows is None:
        return
    if not flows:
        yield not_assessed(check_id, facts.name, f"{facts.name}: the capture holds no TCP flow with payload")
        return
    yield from _by_port(check_id, facts, hits(flows))


@target_check(
    source=CAPTURE, id="transit-plaintext-credentials", layer=8, severity=Severity.CRITICAL, requires=REQUIRES,
    title="Credentials cross the network in plaintext",
    remediation="Require TLS for the service (PostgreSQL hostssl + ssl=on, Redis tls-port with port 0, AMQPS, "
                "HTTPS, SMTP/IMAP STARTTLS required) and rotate every credential seen on the wire.",
    verify="timeout 60 tcpdump -nn -A -i any 'tcp port {port}' | grep -iE 'AUTH|PASS|password|Authorization'  "
           "# while clients work: expect nothing readable",
)
def transit_plaintext_credentials(facts: CaptureFacts) -> Iterator[Result]:
    yield from _judge_flows("transit-plaintext-credentials", facts, lambda flows: [
        (flow, f"{flow.where(d)} {flow.protocol} {d.kind}: {d.excerpt}")
        for flow in flows for d in flow.detections if d.credential])


@target_check(
    source=CAPTURE, id="transit-readable-sql", layer=8, severity=Severity.CRITICAL, requires=REQUIRES,
    title="Readable SQL, result rows or cache commands on the wire",
    remediation="Make clients use TLS (sslmode=verify-full, redis --tls) and refuse plaintext on the server "
                "(pg_hba hostssl only, Redis port 0).",
    verify="timeout 60 tcpdump -nn -A -i any 'tcp port {port}' | grep -iE 'SELECT|INSERT|UPDATE|GET|SET'  "
           "# while clients work: expect encrypted bytes only",
)
def transit_readable_sql(facts: CaptureFacts) -> Iterator[Result]:
    yield from _judge_flows("transit-readable-sql", facts, lambda flows: [
        (flow, f"{flow.where(d)} {flow.protocol} {d.kind}: {d.excerpt}")
        for flow in flows for d in flow.detections if d.kind in DATA_KINDS])


@target_check(
    source=CAPTURE, id="transit-plaintext-service", layer=8, severity=Severity.HIGH, requires=REQUIRES,
    title="Plaintext connection to a service that must be encrypted",
    remediation="Enable TLS on the service and in every client (no plaintext fallback: sslmode=require or "
                "stronger, Redis/AMQP TLS ports only), then capture again.",
    verify="timeout 60 tcpdump -i any -w /tmp/verify.pcap 'tcp port {port}'; then audit /tmp/verify.pcap as a "
           "[[captures]] entry  # expect TLS on every flow",
)
def transit_plaintext_service(facts: CaptureFacts) -> Iterator[Result]:
    def hits(flows: list[Flow]) -> Iterator[tuple[Flow, str]]:
        for flow in flows:
            if flow.encrypted is False and flow.protocol in SENSITIVE:
                logins = [d.excerpt for d in flow.detections if d.kind in ("pg-startup", "pg-scram", "mysql-login")]
                yield flow, f"{flow.where()} {flow.protocol} in plaintext" + (f" ({logins[0]})" if logins else "")

    yield from _judge_flows("transit-plaintext-service", facts, hits)


@target_check(
    source=CAPTURE, id="transit-weak-tls", layer=8, severity=Severity.HIGH, requires=REQUIRES,
    title="TLS below 1.2 negotiated on the wire",
    remediation="Set the server's minimum protocol to TLS 1.2 (ssl_min_protocol_version, tls-protocols, "
                "ssl_protocols) and update clients that cannot negotiate it.",
    verify="tshark -i any -a duration:60 -f 'tcp port {port}' -Y 'tls.handshake.type == 2' -T fields "
           "-e tls.handshake.version  # expect 0x0303 (TLS 1.2) or TLS 1.3 only",
)
def transit_weak_tls(facts: CaptureFacts) -> Iterator[Result]:
    flows = _flows(facts)
    if flows is None:
        return
    tls = [flow for flow in flows if flow.encrypted and flow.tls_version]
    if not tls:
        yield not_assessed("transit-weak-tls", facts.name, f"{facts.name}: no TLS handshake in the capture")
        return
    hits = [(flow, f"{flow.where()} {flow.protocol} negotiated {flow.tls_version}")
            for flow in tls if flow.tls_version in WEAK_TLS]
    yield from _by_port("transit-weak-tls", facts, hits)


@target_check(
    source=CAPTURE, id="transit-pg-ssl", layer=8, severity=Severity.CRITICAL, requires=REQUIRES,
    title="PostgreSQL client connections without SSL (pg_stat_ssl)",
    remediation="Use hostssl (not host) lines in pg_hba.conf for every TCP client and sslmode=verify-full in "
                "the clients; restart the clients so live sessions reconnect with TLS.",
    verify="psql \"$DSN\" -c \"SELECT client_addr, ssl, version FROM pg_stat_ssl JOIN pg_stat_activity "
           "USING (pid) WHERE backend_type = 'client backend'\"",
)
def transit_pg_ssl(facts: CaptureFacts) -> Iterator[Result]:
    if facts.kind != "pg_stat_ssl":
        return
    failed = False
    for conn in facts.connections:
        if conn.client_addr is None and conn.client_port in (-1, None) and conn.ssl is False:
            continue  # Unix socket: not on the network
        resource = f"{facts.name}:{conn.client_addr or 'unknown'}"
        who = f"user {conn.user or '?'} database {conn.database or '?'} application {conn.application or '-'}"
        if conn.ssl is None:
            yield not_assessed("transit-pg-ssl", resource, f"pid {conn.pid}: not visible to the auditing role "
                               "(grant pg_read_all_stats)")
        elif conn.ssl is False:
            failed = True
            where = "over loopback" if conn.local else "from the network"
            yield fail("transit-pg-ssl", resource,
                       f"{conn.server}: {conn.client_addr}:{conn.client_port} ({who}) connected without SSL {where}"
                       + (" (the audit's own connection)" if conn.self_ else ""),
                       environment=facts.environment, severity=Severity.LOW if conn.local else None)
    if not failed:
        yield passed("transit-pg-ssl", facts.name, environment=facts.environment)


# ------------------------------------------------------------------------------------------------ sockets


def _service(sock: Socket) -> str | None:
    if sock.process and sock.process in DATA_SERVICES:
        return DATA_SERVICES[sock.process]
    if sock.process in (None, "java", "docker-proxy") and sock.port in DATA_PORTS:
        return DATA_PORTS[sock.port]
    return None


def _contained(sock: Socket) -> bool:
    """Bound to loopback, link-local, or one specific private address."""
    if sock.local_only:
        return True
    if sock.wildcard:
        return False
    try:
        ip = ipaddress.ip_address(sock.address)
    except ValueError:
        return False
    return any(ip in net for net in PRIVATE if net.version == ip.version)


@target_check(
    source=HOST, id="transit-listen-wildcard", layer=8, severity=Severity.CRITICAL, requires=(SS,),
    title="Data service listening on all interfaces or a public address",
    remediation="Bind the service to 127.0.0.1 or one private address (redis bind, PostgreSQL listen_addresses, "
                "MySQL bind-address, RabbitMQ listeners.tcp, Elasticsearch network.host) and restart it.",
    verify="ss -tlnp | grep ':{port} '  # expect 127.0.0.1 or a private address, not 0.0.0.0 / [::] / *",
)
def transit_listen_wildcard(facts: HostFacts) -> Iterator[Result]:
    problems: dict[str, list[str]] = {}
    for sock in facts.sockets or []:
        service = _service(sock)
        if service and not _contained(sock):
            what = "all interfaces" if sock.wildcard else "a public address"
            problems.setdefault(f"{facts.name}:{sock.port}", []).append(
                f"{service} ({sock.process or 'unknown process'}) listens on {sock.shown}: {what}")
    for resource, details in sorted(problems.items()):
        yield fail("transit-listen-wildcard", resource, "; ".join(dict.fromkeys(details)),
                   environment=facts.environment)
    if not problems:
        yield passed("transit-listen-wildcard", facts.name, environment=facts.environment)


@target_check(
    source=HOST, id="transit-redis-plaintext-port", layer=8, severity=Severity.HIGH, requires=(SS,),
    title="Redis plaintext port still open next to the TLS port",
    remediation="Set `port 0` in redis.conf once tls-port serves every client; capture the old port first to "
                "find clients still using it.",
    verify="ss -tlnp | grep redis  # expect one client port (the tls-port), plus its cluster bus if clustered",
)
def transit_redis_plaintext_port(facts: HostFacts) -> Iterator[Result]:
    found = False
    ports = sorted({s.port for s in facts.sockets or [] if s.process in ("redis-server", "valkey-server")})
    client_ports = [p for p in ports if p - 10000 not in ports]
    if len(client_ports) >= 2:
        plaintext = 6379 if 6379 in client_ports else client_ports[0]
        others = ", ".join(str(p) for p in client_ports if p != plaintext)
        found = True
        yield fail("transit-redis-plaintext-port", f"{facts.name}:{plaintext}",
                   f"redis-server listens on {plaintext} and {others}: one is the tls-port, the other serves "
                   f"plaintext (port {plaintext} is the likely plaintext one)", environment=facts.environment)
    if not found:
        yield passed("transit-redis-plaintext-port", facts.name, environment=facts.environment)
