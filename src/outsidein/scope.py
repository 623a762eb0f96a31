"""The audit scope: what to audit, read from ``outsidein.toml``."""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any


class ScopeError(ValueError):
    """The scope file is missing, unreadable or says something we cannot use."""


@dataclass(frozen=True)
class AwsScope:
    """One AWS account, reached through boto3's standard credential chain."""

    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    regions: tuple[str, ...] = ()
    environment_tag: str = "Environment"
    # Tag whose value says what a subnet is for (public, app, data, mgmt).
    tier_tag: str = "Tier"
    endpoint_url: str | None = None
    # Attempts per API call (throttling, server errors) before the read is NOT_ASSESSED.
    max_attempts: int = 4
    # Seconds to wait for one response. A page of 1,000 security groups is quick on AWS; emulators
    # that ignore page sizes answer a whole region in one response and need longer.
    read_timeout: int = 120


@dataclass(frozen=True)
class HostScope:
    """One host: reached locally or over SSH, or audited from a folder of saved command outputs."""

    name: str
    address: str | None = None  # "local" or "user@host[:port]"; None when ``evidence`` is a folder
    evidence: Path | None = None  # folder of saved outputs (iptables-save.txt, ss-tlnp.txt …)
    environment: str | None = None
    identity_file: Path | None = None  # SSH private key; default: the SSH client's own choice
    known_hosts: Path | None = None  # default: ~/.ssh/known_hosts; the host key is always verified
    sudo: bool = True  # run privileged reads through `sudo -n` (never prompts)
    ssh_allowed_cidrs: tuple[str, ...] = ()  # VPN/bastion ranges SSH may be open to
    provisioning: tuple[Path, ...] = ()  # cloud-init, Ansible, Packer, shell files or folders to search
    probe_address: str | None = None  # address to try TCP connections to, from where outsidein runs
    probe_ports: tuple[int, ...] = ()  # extra ports to probe besides listening and dangerous ones
    process_environ: bool = True  # read secret-named variables of running processes (/proc/<pid>/environ)
    # Layer 9: a host that runs database backups (its schedule and scripts are read); scripts and schedule
    # files are paths on the host, besides the ones the schedule lines name.
    backups: bool = False
    backup_scripts: tuple[str, ...] = ()
    backup_schedule_files: tuple[str, ...] = ()

    @property
    def ssh_target(self) -> tuple[str, str, int] | None:
        """(user, host, port) for an SSH address, else None."""
        if not self.address or self.address == "local":
            return None
        user, _, rest = self.address.rpartition("@")
        host, port = rest, 22
        if rest.startswith("["):  # [::1]:2222
            host, _, tail = rest[1:].partition("]")
            port = int(tail[1:]) if tail.startswith(":") else 22
        elif rest.count(":") == 1:
            host, _, port_text = rest.partition(":")
            port = int(port_text)
        return user, host, port


@dataclass(frozen=True)
class NginxScope:
    """One NGINX configuration, and optionally the live URL that serves it."""

    name: str
    config: Path  # the main file, or a folder holding nginx.conf
    environment: str | None = None
    url: str | None = None  # probed with HEAD / to verify the headers really come back
    verify_tls: bool = True  # False only for a self-signed test server
    nginx_binary: str = "nginx"  # `nginx -t` runs when this binary is found


@dataclass(frozen=True)
class TlsEndpointScope:
    """A TLS endpoint: direct TLS or STARTTLS; the protocol defaults from the port."""

    endpoint: str  # "host:port" ("[::1]:443" for IPv6)
    protocol: str | None = None  # https, tls, postgres, redis, amqps, smtp, imap, ldap, mysql …; None: by port
    server_name: str | None = None  # SNI and the name the certificate must match; default: the host
    environment: str | None = None
    external: bool = False  # reachable from the internet (self-signed and OCSP stapling then matter)
    ca_file: Path | None = None  # a private CA (PEM) trusted for this endpoint besides the Mozilla store

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.endpoint.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class CertificateFilesScope:
    """Certificate files on disk (paths or globs), checked for expiry even before they are served."""

    paths: tuple[str, ...]
    environment: str | None = None


@dataclass(frozen=True)
class CaptureScope:
    """Packets to classify: a pcap/pcapng file, or a bounded live tcpdump capture."""

    name: str
    pcap: Path | None = None
    interface: str | None = None  # live capture on this interface
    port_filter: str | None = None  # a tcpdump filter, e.g. "port 5432 or port 6379"
    duration: float = 30.0  # seconds of live capture, at most MAX_CAPTURE_SECONDS
    max_packets: int = 100_000
    environment: str | None = None


@dataclass(frozen=True)
class PostgresScope:
    """A PostgreSQL server whose pg_stat_ssl says which live connections use TLS."""

    name: str
    dsn: str  # libpq connection string or URL; its password is never printed or stored
    environment: str | None = None


MAX_CAPTURE_SECONDS = 600.0


@dataclass(frozen=True)
class RepositoryScope:
    """A git repository on disk: secrets in its tree and history (layer 5), the lockfiles, manifests and
    image references in its tree (layer 10), its CI files and Dockerfiles (layer 11)."""

    name: str
    path: Path
    environment: str | None = None
    history: bool = True  # scan every ref's history, not only the working tree


@dataclass(frozen=True)
class ManifestsScope:
    """Lockfiles, manifests, Dockerfiles, compose files, Kubernetes manifests or Helm values outside a repository."""

    name: str
    paths: tuple[Path, ...]
    environment: str | None = None


@dataclass(frozen=True)
class PipelinesScope:
    """CI files (GitHub Actions workflows, .gitlab-ci.yml) and Dockerfiles, or folders holding them."""

    name: str
    paths: tuple[Path, ...]
    environment: str | None = None


@dataclass(frozen=True)
class OpsToolScope:
    """A running ops tool whose version is read from its API (Grafana /api/health, SonarQube
    /api/server/version)."""

    name: str
    url: str
    kind: str  # "grafana" or "sonarqube"
    environment: str | None = None
    verify_tls: bool = True


OPS_TOOL_KINDS = ("grafana", "sonarqube")


@dataclass(frozen=True)
class OsvScope:
    """The local OSV database the components are matched against."""

    database: Path = field(default_factory=lambda: Path("~/.cache/outsidein/osv").expanduser())
    max_age_days: int = 7  # an older database is itself a finding
    mirror: str | None = None  # base URL serving <Ecosystem>/all.zip like OSV's bucket (a local mirror)


@dataclass(frozen=True)
class Scope:
    aws: AwsScope | None = field(default_factory=AwsScope)
    source: Path | None = None  # the file this scope came from, if any
    hosts: tuple[HostScope, ...] = ()
    nginx: tuple[NginxScope, ...] = ()
    tls: tuple[TlsEndpointScope, ...] = ()
    certificates: tuple[CertificateFilesScope, ...] = ()
    captures: tuple[CaptureScope, ...] = ()
    postgres: tuple[PostgresScope, ...] = ()
    repositories: tuple[RepositoryScope, ...] = ()
    manifests: tuple[ManifestsScope, ...] = ()
    pipelines: tuple[PipelinesScope, ...] = ()
    ops_tools: tuple[OpsToolScope, ...] = ()
    osv: OsvScope = field(default_factory=OsvScope)
    baseline: Path | None = None  # reviewed findings: false positives and accepted risks, with reasons
    simulation: SimulationScope | None = None  # layer 12: the authorization for active tests ([simulation])
    store: StoreScope = field(default_factory=lambda: StoreScope())  # where audits are stored ([store])
    owners: tuple[OwnerRule, ...] = ()  # who owns a finding ([[owners]], first match wins)
    backups: BackupsScope | None = None  # layer 9: backup buckets, schedule, restore drill ([backups])

    @property
    def has_targets(self) -> bool:
        """Anything to collect besides AWS."""
        return any((self.hosts, self.nginx, self.tls, self.certificates, self.captures, self.postgres,
                    self.repositories, self.manifests, self.pipelines, self.ops_tools, self.backups))


_AWS_KEYS = {
    "profile": str,
    "role_arn": str,
    "external_id": str,
    "regions": list,
    "environment_tag": str,
    "tier_tag": str,
    "endpoint_url": str,
    "max_attempts": int,
    "read_timeout": int,
}


def load_scope(path: Path) -> Scope:
    """Read and validate a scope file; errors name the file and the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScopeError(f"{path}: cannot read scope file: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScopeError(f"{path}: not valid TOML: {exc}") from None
    return parse_scope(data, path)


_HOST_KEYS: dict[str, type] = {
    "name": str, "address": str, "evidence": str, "environment": str, "identity_file": str, "known_hosts": str,
    "sudo": bool, "ssh_allowed_cidrs": list, "provisioning": list, "probe_address": str, "probe_ports": list,
    "process_environ": bool, "backups": bool, "backup_scripts": list, "backup_schedule_files": list,
}
_NGINX_KEYS: dict[str, type] = {
    "name": str, "config": str, "environment": str, "url": str, "verify_tls": bool, "nginx_binary": str,
}


def _check_keys(table: Any, known: dict[str, type], where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ScopeError(f"{where} must be a table")
    for key, value in table.items():
        expected = known.get(key)
        if expected is None:
            raise ScopeError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        if not isinstance(value, expected):
            raise ScopeError(f"{where}: {key} must be a {expected.__name__}, not {type(value).__name__}")
    return table


def _relative(base: Path | None, text: str) -> Path:
    """Paths in a scope file are relative to the file's folder."""
    candidate = Path(text).expanduser()
    return candidate if candidate.is_absolute() or base is None else base.parent / candidate


def _parse_host(entry: Any, index: int, where: str, path: Path | None) -> HostScope:
    at = f"{where}: [[hosts]] #{index + 1}"
    table = _check_keys(entry, _HOST_KEYS, at)
    name = table.get("name")
    if not name:
        raise ScopeError(f"{at}: a host needs a name")
    at = f"{where}: host {name!r}"
    address, evidence = table.get("address"), table.get("evidence")
    if bool(address) == bool(evidence):
        raise ScopeError(f"{at}: give exactly one of address (\"local\" or \"user@host[:port]\") "
                         "or evidence (a folder)")
    if address and address != "local":
        user, _, rest = address.rpartition("@")
        if not user or not rest:
            raise ScopeError(f"{at}: address {address!r} must be \"local\" or \"user@host[:port]\"")
    for cidr in table.get("ssh_allowed_cidrs", []):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except (ValueError, TypeError):
            raise ScopeError(f"{at}: ssh_allowed_cidrs has {cidr!r}, not a CIDR") from None
    ports = table.get("probe_ports", [])
    if not all(isinstance(p, int) and 0 < p < 65536 for p in ports):
        raise ScopeError(f"{at}: probe_ports must be port numbers")
    if not all(isinstance(p, str) for p in table.get("provisioning", [])):
        raise ScopeError(f"{at}: provisioning must be a list of paths")
    host = HostScope(
        name=name, address=address, environment=table.get("environment"),
        evidence=_relative(path, evidence) if evidence else None,
        identity_file=_relative(path, table["identity_file"]) if "identity_file" in table else None,
        known_hosts=_relative(path, table["known_hosts"]) if "known_hosts" in table else None,
        sudo=table.get("sudo", True), ssh_allowed_cidrs=tuple(table.get("ssh_allowed_cidrs", [])),
        provisioning=tuple(_relative(path, p) for p in table.get("provisioning", [])),
        probe_address=table.get("probe_address"), probe_ports=tuple(ports),
        process_environ=table.get("process_environ", True),
        backups=bool(table.get("backups") or table.get("backup_scripts") or table.get("backup_schedule_files")),
        backup_scripts=_host_paths(table, "backup_scripts", at),
        backup_schedule_files=_host_paths(table, "backup_schedule_files", at),
    )
    try:
        host.ssh_target  # noqa: B018 - validates the port
    except ValueError:
        raise ScopeError(f"{at}: address {address!r} has a port that is not a number") from None
    return host


def _host_paths(table: dict[str, Any], key: str, at: str) -> tuple[str, ...]:
    """Absolute paths on the host (read there, through the host's runner, or under files/ of a folder)."""
    paths = table.get(key, [])
    if not all(isinstance(p, str) and p.startswith("/") for p in paths):
        raise ScopeError(f"{at}: {key} must be a list of absolute paths on the host")
    return tuple(paths)


def _parse_nginx(entry: Any, index: int, where: str, path: Path | None) -> NginxScope:
    at = f"{where}: [[nginx]] #{index + 1}"
    table = _check_keys(entry, _NGINX_KEYS, at)
    if not table.get("name") or not table.get("config"):
        raise ScopeError(f"{at}: an nginx entry needs a name and a config path")
    url = table.get("url")
    if url and not url.startswith(("http://", "https://")):
        raise ScopeError(f"{where}: nginx {table['name']!r}: url must start with http:// or https://")
    return NginxScope(
        name=table["name"], config=_relative(path, table["config"]), environment=table.get("environment"), url=url,
        verify_tls=table.get("verify_tls", True), nginx_binary=table.get("nginx_binary", "nginx"),
    )


_TLS_KEYS: dict[str, type] = {"endpoint": str, "protocol": str, "server_name": str, "environment": str,
                              "external": bool, "ca_file": str}
_CERT_KEYS: dict[str, type] = {"paths": list, "environment": str}
_CAPTURE_KEYS: dict[str, type] = {"name": str, "pcap": str, "interface": str, "port_filter": str, "duration": float,
                                  "max_packets": int, "environment": str}
_POSTGRES_KEYS: dict[str, type] = {"name": str, "dsn": str, "environment": str}


def _parse_tls(entry: Any, index: int, where: str, path: Path | None) -> TlsEndpointScope:
    at = f"{where}: [[tls]] #{index + 1}"
    table = _check_keys(entry, _TLS_KEYS, at)
    endpoint = table.get("endpoint", "")
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ScopeError(f"{at}: endpoint {endpoint!r} must be \"host:port\"")
    return TlsEndpointScope(endpoint=endpoint, protocol=table.get("protocol"), server_name=table.get("server_name"),
                            environment=table.get("environment"), external=table.get("external", False),
                            ca_file=_relative(path, table["ca_file"]) if table.get("ca_file") else None)


def _parse_certificates(entry: Any, index: int, where: str, path: Path | None) -> CertificateFilesScope:
    at = f"{where}: [[certificates]] #{index + 1}"
    table = _check_keys(entry, _CERT_KEYS, at)
    paths = table.get("paths", [])
    if not paths or not all(isinstance(p, str) and p for p in paths):
        raise ScopeError(f"{at}: paths must be a non-empty list of files or globs")
    return CertificateFilesScope(paths=tuple(str(_relative(path, p)) for p in paths),
                                 environment=table.get("environment"))


def _parse_capture(entry: Any, index: int, where: str, path: Path | None) -> CaptureScope:
    at = f"{where}: [[captures]] #{index + 1}"
    if isinstance(entry, dict) and isinstance(entry.get("duration"), int):
        entry = {**entry, "duration": float(entry["duration"])}
    table = _check_keys(entry, _CAPTURE_KEYS, at)
    if not table.get("name"):
        raise ScopeError(f"{at}: a capture needs a name")
    if bool(table.get("pcap")) == bool(table.get("interface")):
        raise ScopeError(f"{at}: give exactly one of pcap (a file) or interface (a live capture)")
    duration = table.get("duration", 30.0)
    if not 0 < duration <= MAX_CAPTURE_SECONDS:
        raise ScopeError(f"{at}: duration must be between 0 and {MAX_CAPTURE_SECONDS:g} seconds")
    if not 0 < table.get("max_packets", 100_000) <= 10_000_000:
        raise ScopeError(f"{at}: max_packets must be between 1 and 10000000")
    return CaptureScope(name=table["name"], pcap=_relative(path, table["pcap"]) if table.get("pcap") else None,
                        interface=table.get("interface"), port_filter=table.get("port_filter"), duration=duration,
                        max_packets=table.get("max_packets", 100_000), environment=table.get("environment"))


def _parse_postgres(entry: Any, index: int, where: str) -> PostgresScope:
    at = f"{where}: [[postgres]] #{index + 1}"
    table = _check_keys(entry, _POSTGRES_KEYS, at)
    if not table.get("name") or not table.get("dsn"):
        raise ScopeError(f"{at}: a postgres entry needs a name and a dsn")
    return PostgresScope(name=table["name"], dsn=table["dsn"], environment=table.get("environment"))


_REPO_KEYS: dict[str, type] = {"name": str, "path": str, "environment": str, "history": bool}
_PATHS_KEYS: dict[str, type] = {"name": str, "paths": list, "environment": str}
_OPS_KEYS: dict[str, type] = {"name": str, "url": str, "kind": str, "environment": str, "verify_tls": bool}
_OSV_KEYS: dict[str, type] = {"database": str, "max_age_days": int, "mirror": str}


def _parse_repository(entry: Any, index: int, where: str, path: Path | None) -> RepositoryScope:
    at = f"{where}: [[repositories]] #{index + 1}"
    table = _check_keys(entry, _REPO_KEYS, at)
    if not table.get("name") or not table.get("path"):
        raise ScopeError(f"{at}: a repository needs a name and a path")
    return RepositoryScope(name=table["name"], path=_relative(path, table["path"]),
                           environment=table.get("environment"), history=table.get("history", True))


def _parse_paths(kind: str, entry: Any, index: int, where: str, path: Path | None) -> tuple[str, tuple[Path, ...],
                                                                                            str | None]:
    at = f"{where}: [[{kind}]] #{index + 1}"
    table = _check_keys(entry, _PATHS_KEYS, at)
    paths = table.get("paths", [])
    if not table.get("name") or not paths or not all(isinstance(p, str) and p for p in paths):
        raise ScopeError(f"{at}: a {kind} entry needs a name and a non-empty list of paths")
    return table["name"], tuple(_relative(path, p) for p in paths), table.get("environment")


def _parse_ops_tool(entry: Any, index: int, where: str) -> OpsToolScope:
    at = f"{where}: [[ops_tools]] #{index + 1}"
    table = _check_keys(entry, _OPS_KEYS, at)
    if not table.get("name") or not table.get("url") or not table.get("kind"):
        raise ScopeError(f"{at}: an ops tool needs a name, a url and a kind")
    if table["kind"] not in OPS_TOOL_KINDS:
        raise ScopeError(f"{at}: kind must be one of {', '.join(OPS_TOOL_KINDS)}, not {table['kind']!r}")
    if not table["url"].startswith(("http://", "https://")):
        raise ScopeError(f"{at}: url must start with http:// or https://")
    return OpsToolScope(name=table["name"], url=table["url"], kind=table["kind"], environment=table.get("environment"),
                        verify_tls=table.get("verify_tls", True))


def _parse_osv(data: Any, where: str, path: Path | None) -> OsvScope:
    table = _check_keys(data, _OSV_KEYS, f"{where}: [osv]")
    if table.get("max_age_days", 7) < 1:
        raise ScopeError(f"{where}: [osv] max_age_days must be at least 1")
    database = _relative(path, table["database"]) if table.get("database") else OsvScope().database
    mirror = table.get("mirror")
    if mirror is not None and not mirror.startswith(("http://", "https://")):
        raise ScopeError(f"{where}: [osv] mirror must start with http:// or https://")
    return OsvScope(database=database, max_age_days=table.get("max_age_days", 7), mirror=mirror)


@dataclass(frozen=True)
class StoreScope:
    """Where every audit's findings are kept (``[store]``): a SQLite file by default, PostgreSQL by URL."""

    url: str | None = None  # SQLAlchemy URL ("postgresql+psycopg://user@host/db", "sqlite:///path")
    path: Path | None = None  # SQLite file; default: .outsidein/state.db next to the scope file
    enabled: bool = True  # false: `outsidein audit` stores nothing unless --store is given
    default_owner: str = "unassigned"  # owner of a finding no [[owners]] rule matches


@dataclass(frozen=True)
class OwnerRule:
    """One ``[[owners]]`` rule; every key given must match (first matching rule wins)."""

    owner: str | None = None  # a team or person; optional with ``codeowners`` (the file names the owner)
    layers: tuple[int, ...] = ()
    environments: tuple[str, ...] = ()
    resource: str | None = None  # fnmatch glob on the finding's resource ("sg-*", "*/prod/*")
    codeowners: Path | None = None  # a repository's CODEOWNERS file; matched against file resources
    check: str | None = None  # fnmatch glob on the check id ("nginx-*")


_STORE_KEYS: dict[str, type] = {"url": str, "path": str, "enabled": bool, "default_owner": str}
_OWNER_KEYS: dict[str, type] = {"owner": str, "layer": object, "environment": object, "resource": str,
                                "codeowners": str, "check": str}


def _parse_store(data: Any, where: str, path: Path | None) -> StoreScope:
    table = _check_keys(data, _STORE_KEYS, f"{where}: [store]")
    if table.get("url") and table.get("path"):
        raise ScopeError(f"{where}: [store] has both url and path; give one")
    return StoreScope(url=table.get("url") or None, path=_relative(path, table["path"]) if table.get("path") else None,
                      enabled=table.get("enabled", True), default_owner=table.get("default_owner", "unassigned"))


def _parse_owner(entry: Any, index: int, where: str, path: Path | None) -> OwnerRule:
    at = f"{where}: [[owners]] #{index + 1}"
    table = _check_keys(entry, _OWNER_KEYS, at)
    layer, env = table.get("layer", []), table.get("environment", [])
    layers = [layer] if isinstance(layer, int) else layer
    envs = [env] if isinstance(env, str) else env
    if not isinstance(layers, list) or not all(isinstance(n, int) and 1 <= n <= 12 for n in layers):
        raise ScopeError(f"{at}: layer must be a layer number 1-12 or a list of them")
    if not isinstance(envs, list) or not all(isinstance(e, str) and e for e in envs):
        raise ScopeError(f"{at}: environment must be a name or a list of names")
    if not table.get("owner") and not table.get("codeowners"):
        raise ScopeError(f"{at}: an owner (or a codeowners file that names one) is required")
    return OwnerRule(owner=table.get("owner"), layers=tuple(layers), environments=tuple(envs),
                     resource=table.get("resource"), check=table.get("check"),
                     codeowners=_relative(path, table["codeowners"]) if table.get("codeowners") else None)


# ------------------------------------------------------------------------------------------ attack simulation
# Layer 12 runs active tests: only with a written, unexpired authorization for named non-production targets.
# The bounds below are hard caps: a scope asking for more is an error, and ``outsidein.simulate`` clamps again.

SIMULATION_KINDS = ("rate_limit", "slowloris", "load", "spike", "recovery")
PRODUCTION_ENVIRONMENTS = ("prod", "production")
MAX_SIMULATION_SECONDS = 900.0  # one whole `outsidein simulate` run
MAX_SIMULATION_REQUESTS = 200_000  # requests (and held connections) in one run
MAX_VUS = 500  # the playbook's spike (500 VUs)

_STAGES = "stages"
# kind -> key -> (type, default, minimum, maximum); every number a scenario may set, with its cap.
SIMULATION_PARAMS: dict[str, dict[str, tuple[type, Any, float, float]]] = {
    "rate_limit": {"max_requests": (int, 50, 1, 200), "expect_by": (int, 10, 1, 200),
                   "interval": (float, 0.0, 0.0, 10.0), "timeout": (float, 10.0, 0.1, 60.0)},
    "slowloris": {"connections": (int, 200, 1, 1000), "close_within": (float, 10.0, 0.5, 120.0),
                  "interval": (float, 1.0, 0.1, 30.0), "closed_ratio": (float, 0.9, 0.0, 1.0),
                  "timeout": (float, 5.0, 0.1, 60.0)},
    "load": {"p95_ms": (float, 500.0, 1.0, 60_000.0), "error_rate": (float, 0.01, 0.0, 1.0),
             "think_time": (float, 0.0, 0.0, 60.0), "timeout": (float, 10.0, 0.1, 60.0)},
    "spike": {"error_rate": (float, 0.01, 0.0, 1.0), "think_time": (float, 0.0, 0.0, 60.0),
              "timeout": (float, 10.0, 0.1, 60.0)},
    "recovery": {"baseline_samples": (int, 10, 1, 1000), "attack_vus": (int, 50, 1, MAX_VUS),
                 "attack_seconds": (float, 5.0, 0.1, 300.0), "window": (float, 120.0, 0.5, 600.0),
                 "interval": (float, 1.0, 0.05, 30.0), "factor": (float, 2.0, 1.0, 100.0),
                 "slack_ms": (float, 50.0, 0.0, 60_000.0), "consecutive": (int, 3, 1, 100),
                 "timeout": (float, 10.0, 0.1, 60.0)},
}
# The playbook's k6 stages (2m→50, 5m→200, 2m→500, 2m→0), shortened: a default run stays well inside the cap.
DEFAULT_STAGES: dict[str, tuple[tuple[float, int], ...]] = {
    "load": ((30.0, 50), (60.0, 200), (30.0, 0)),
    "spike": ((10.0, 20), (5.0, 500), (20.0, 500), (10.0, 0)),
}


@dataclass(frozen=True)
class ScenarioScope:
    """One attack scenario: its kind, the URL it hits, and its parameters (defaults filled in, caps checked)."""

    kind: str  # one of SIMULATION_KINDS
    name: str
    url: str
    method: str = "GET"
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    stages: tuple[tuple[float, int], ...] = ()  # (seconds, target VUs) for load and spike, ramped linearly


@dataclass(frozen=True)
class SimulationScope:
    """The written authorization for active tests, and the scenarios it covers."""

    authorized_by: str
    expires: date
    environment: str
    targets: tuple[str, ...]  # base URLs; a scenario URL must share scheme, host and port (and the path prefix)
    allowed_addresses: tuple[str, ...] = ()  # non-loopback addresses (CIDRs) the authorization covers
    max_requests: int = 10_000  # per run, at most MAX_SIMULATION_REQUESTS
    max_seconds: float = 300.0  # per run, at most MAX_SIMULATION_SECONDS
    scenarios: tuple[ScenarioScope, ...] = ()


_SIMULATION_KEYS = {"authorized_by", "expires", "environment", "targets", "allowed_addresses", "max_requests",
                    "max_seconds", "scenarios"}
_SCENARIO_KEYS = {"kind", "name", "url", "method", "body", "headers", "stages"}
_LOGIN_BODY = '{"email":"test@test.com","password":"wrong"}'  # the playbook's bad credentials


def _number(value: Any, kind: type, low: float, high: float, at: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        raise ScopeError(f"{at} must be {'an integer' if kind is int else 'a number'}, not {value!r}")
    if not low <= value <= high:
        raise ScopeError(f"{at} must be between {low:g} and {high:g}, not {value!r}")
    return kind(value)


def _url_ok(url: Any) -> bool:
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return False
    try:
        return bool(urlsplit(url).hostname) and (urlsplit(url).port or 1) > 0
    except ValueError:
        return False


def _parse_stages(raw: Any, at: str) -> tuple[tuple[float, int], ...]:
    if not isinstance(raw, list) or not raw:
        raise ScopeError(f"{at}: stages must be a non-empty array of {{seconds = N, vus = N}} tables")
    stages = []
    for i, stage in enumerate(raw):
        where = f"{at}: stages[{i}]"
        if not isinstance(stage, dict) or set(stage) != {"seconds", "vus"}:
            raise ScopeError(f"{where} must be a table with exactly seconds and vus")
        stages.append((_number(stage["seconds"], float, 0.05, MAX_SIMULATION_SECONDS, f"{where}.seconds"),
                       _number(stage["vus"], int, 0, MAX_VUS, f"{where}.vus")))
    return tuple(stages)


def _parse_scenario(entry: Any, index: int, where: str) -> ScenarioScope:
    at = f"{where}: [[simulation.scenarios]] #{index + 1}"
    if not isinstance(entry, dict):
        raise ScopeError(f"{at} must be a table")
    kind = entry.get("kind")
    if kind not in SIMULATION_KINDS:
        raise ScopeError(f"{at}: kind must be one of {', '.join(SIMULATION_KINDS)}, not {kind!r}")
    known = SIMULATION_PARAMS[kind]
    allowed = (_SCENARIO_KEYS | set(known)) - (set() if kind in DEFAULT_STAGES else {"stages"})
    for key in entry:
        if key not in allowed:
            raise ScopeError(f"{at}: unknown key {key!r} for a {kind} scenario (known: {', '.join(sorted(allowed))})")
    for key in ("name", "url", "method", "body"):
        if key in entry and not isinstance(entry[key], str):
            raise ScopeError(f"{at}: {key} must be a str, not {type(entry[key]).__name__}")
    if not _url_ok(entry.get("url")):
        raise ScopeError(f"{at}: url must be an http:// or https:// URL with a host")
    headers = entry.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ScopeError(f"{at}: headers must be a table of strings")
    params = {key: _number(entry.get(key, default), kind_, low, high, f"{at}: {key}")
              for key, (kind_, default, low, high) in known.items()}
    name = entry.get("name") or kind
    method = entry.get("method", "POST" if kind == "rate_limit" else "GET").upper()
    body = entry.get("body", _LOGIN_BODY if kind == "rate_limit" and method == "POST" else None)
    stages = _parse_stages(entry["stages"], at) if "stages" in entry else DEFAULT_STAGES.get(kind, ())
    return ScenarioScope(kind=kind, name=name, url=entry["url"], method=method, body=body,
                         headers=tuple(headers.items()), params=params, stages=stages)


def _parse_simulation(data: Any, where: str) -> SimulationScope:
    at = f"{where}: [simulation]"
    if not isinstance(data, dict):
        raise ScopeError(f"{at} must be a table")
    unknown = sorted(set(data) - _SIMULATION_KEYS)
    if unknown:
        raise ScopeError(f"{at}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_SIMULATION_KEYS))})")
    for key in ("authorized_by", "environment"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ScopeError(f"{at}: {key} is required (who signed the authorization; the targets' environment)")
    expires = data.get("expires")
    if isinstance(expires, str):
        try:
            expires = date.fromisoformat(expires)
        except ValueError:
            raise ScopeError(f"{at}: expires must be a date (2026-12-31), not {expires!r}") from None
    if isinstance(expires, datetime):
        expires = expires.date()
    if not isinstance(expires, date):
        raise ScopeError(f"{at}: expires is required: the date the written authorization ends (2026-12-31)")
    targets = data.get("targets")
    if not isinstance(targets, list) or not targets or not all(_url_ok(t) for t in targets):
        raise ScopeError(f"{at}: targets must be a non-empty list of http:// or https:// URLs")
    allowed = data.get("allowed_addresses", [])
    if not isinstance(allowed, list):
        raise ScopeError(f"{at}: allowed_addresses must be a list of addresses or CIDRs")
    for cidr in allowed:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except (ValueError, TypeError):
            raise ScopeError(f"{at}: allowed_addresses has {cidr!r}, not an address or CIDR") from None
    scenarios = data.get("scenarios", [])
    if not isinstance(scenarios, list):
        raise ScopeError(f"{at}: scenarios must be an array of tables ([[simulation.scenarios]])")
    parsed = tuple(_parse_scenario(e, i, where) for i, e in enumerate(scenarios))
    names = [s.name for s in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ScopeError(f"{at}: two scenarios are named {duplicates[0]!r} (give each a distinct name)")
    return SimulationScope(
        authorized_by=data["authorized_by"].strip(), expires=expires, environment=data["environment"].strip(),
        targets=tuple(targets), allowed_addresses=tuple(allowed),
        max_requests=_number(data.get("max_requests", 10_000), int, 1, MAX_SIMULATION_REQUESTS,
                             f"{at}: max_requests"),
        max_seconds=_number(data.get("max_seconds", 300.0), float, 1, MAX_SIMULATION_SECONDS, f"{at}: max_seconds"),
        scenarios=parsed,
    )


# ------------------------------------------------------------------------------------------------ backups
# Layer 9: where the backups land, how fresh they must be, and the restore drill's source, key and scratch target.

BACKUP_BUCKET_WORD = "backup"  # a bucket whose name holds this word is a backup bucket when discover is on


@dataclass(frozen=True)
class DrillScope:
    """The restore drill (``outsidein drill restore``): what to restore, with which key, into which scratch database.

    The guard: the target's database must be listed in ``scratch_databases`` and must not be the database of any
    ``sources`` DSN (same host, port and name); anything else is refused before a byte is read.
    """

    source: str | None = None  # s3://bucket/key, s3://bucket/prefix/ (the newest object), or a file
    key_env: str = "BACKUP_ENCRYPTION_KEY"  # environment variable holding the passphrase (never the value)
    target: str | None = None  # libpq DSN or URL of the scratch PostgreSQL database
    scratch_databases: tuple[str, ...] = ()  # database names marked scratch: the only ones a drill may write
    sources: tuple[str, ...] = ()  # production DSNs: a target equal to one of these is refused
    iterations: int = 100_000  # PBKDF2 iterations (openssl enc -iter)
    expect: dict[str, int] = field(default_factory=dict, hash=False)  # table -> exact row count
    expect_min: dict[str, int] = field(default_factory=dict, hash=False)  # table -> minimum row count
    max_seconds: float = 3600.0  # the drill is bounded


@dataclass(frozen=True)
class BackupsScope:
    """Backup buckets and what the audit expects of them (``[backups]``)."""

    buckets: tuple[str, ...] = ()  # named backup buckets
    prefixes: tuple[str, ...] = ()  # where the backup objects live in them ("postgres/"); default: everywhere
    discover: bool = True  # also buckets whose name holds "backup" or tagged Backup=true / Purpose=backup
    max_age_hours: float = 26.0  # the newest backup may be this old (daily full: 24 h + slack)
    retention_days: int = 30  # RDS automated-backup retention at least this (playbook: 30 days hot)
    archive_days: int = 365  # lifecycle expiry no earlier than this (playbook: 1 year archive)
    drill_max_age_days: int = 30  # a successful restore drill at least this recently (playbook: monthly)
    drill_log: Path | None = None  # JSON lines; default .outsidein/drills.jsonl next to the scope file
    environment: str | None = None
    drill: DrillScope = field(default_factory=DrillScope)


_BACKUPS_KEYS: dict[str, type] = {"buckets": list, "prefixes": list, "discover": bool, "max_age_hours": object,
                                  "retention_days": int, "archive_days": int, "drill_max_age_days": int,
                                  "drill_log": str, "environment": str, "drill": dict}
_DRILL_KEYS: dict[str, type] = {"source": str, "key_env": str, "target": str, "scratch_databases": list,
                                "sources": list, "iterations": int, "expect": dict, "expect_min": dict,
                                "max_seconds": object}


def _counts(table: Any, at: str) -> dict[str, int]:
    if not isinstance(table, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                              for v in table.values()):
        raise ScopeError(f"{at} must be a table of table names to row counts ({{orders = 1000}})")
    return {str(k): int(v) for k, v in table.items()}


def _parse_drill(data: Any, where: str) -> DrillScope:
    at = f"{where}: [backups.drill]"
    table = _check_keys(data, _DRILL_KEYS, at)
    for key in ("scratch_databases", "sources"):
        if not all(isinstance(v, str) and v for v in table.get(key, [])):
            raise ScopeError(f"{at}: {key} must be a list of strings")
    key_env = table.get("key_env", "BACKUP_ENCRYPTION_KEY")
    if not key_env.replace("_", "").isalnum():
        raise ScopeError(f"{at}: key_env must be the name of an environment variable, not {key_env!r}")
    return DrillScope(
        source=table.get("source"), key_env=key_env, target=table.get("target"),
        scratch_databases=tuple(table.get("scratch_databases", [])), sources=tuple(table.get("sources", [])),
        iterations=int(_number(table.get("iterations", 100_000), int, 1, 10_000_000, f"{at}: iterations")),
        expect=_counts(table.get("expect", {}), f"{at}: expect"),
        expect_min=_counts(table.get("expect_min", {}), f"{at}: expect_min"),
        max_seconds=_number(table.get("max_seconds", 3600.0), float, 1, 86_400, f"{at}: max_seconds"),
    )


def _parse_backups(data: Any, where: str, path: Path | None) -> BackupsScope:
    at = f"{where}: [backups]"
    table = _check_keys(data, _BACKUPS_KEYS, at)
    for key in ("buckets", "prefixes"):
        if not all(isinstance(v, str) and v for v in table.get(key, [])):
            raise ScopeError(f"{at}: {key} must be a list of strings")
    for key in ("retention_days", "archive_days", "drill_max_age_days"):
        if table.get(key, 1) < 1:
            raise ScopeError(f"{at}: {key} must be at least 1")
    if table.get("drill_log"):
        log = _relative(path, table["drill_log"])
    elif path is not None:
        log = path.parent / ".outsidein" / "drills.jsonl"
    else:
        log = None
    return BackupsScope(
        buckets=tuple(table.get("buckets", [])), prefixes=tuple(table.get("prefixes", [])),
        discover=table.get("discover", True),
        max_age_hours=_number(table.get("max_age_hours", 26.0), float, 1, 24 * 366, f"{at}: max_age_hours"),
        retention_days=table.get("retention_days", 30), archive_days=table.get("archive_days", 365),
        drill_max_age_days=table.get("drill_max_age_days", 30), drill_log=log,
        environment=table.get("environment"), drill=_parse_drill(table.get("drill", {}), where),
    )


def _entries(data: dict[str, Any], key: str, where: str) -> list[Any]:
    entries = data.get(key, [])
    if not isinstance(entries, list):
        raise ScopeError(f"{where}: {key} must be an array of tables ([[{key}]])")
    return entries


def parse_scope(data: dict[str, Any], path: Path | None = None) -> Scope:
    where = str(path) if path else "scope"
    known = ("aws", "hosts", "nginx", "tls", "certificates", "captures", "postgres", "repositories", "manifests",
             "pipelines", "ops_tools", "osv", "baseline", "store", "owners", "simulation", "backups")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ScopeError(f"{where}: unknown section or key {unknown[0]!r} (known: {', '.join(known)})")
    hosts = tuple(_parse_host(e, i, where, path) for i, e in enumerate(_entries(data, "hosts", where)))
    nginx = tuple(_parse_nginx(e, i, where, path) for i, e in enumerate(_entries(data, "nginx", where)))
    others: dict[str, Any] = {
        "tls": tuple(_parse_tls(e, i, where, path) for i, e in enumerate(_entries(data, "tls", where))),
        "certificates": tuple(_parse_certificates(e, i, where, path)
                              for i, e in enumerate(_entries(data, "certificates", where))),
        "captures": tuple(_parse_capture(e, i, where, path) for i, e in enumerate(_entries(data, "captures", where))),
        "postgres": tuple(_parse_postgres(e, i, where) for i, e in enumerate(_entries(data, "postgres", where))),
        "repositories": tuple(_parse_repository(e, i, where, path)
                              for i, e in enumerate(_entries(data, "repositories", where))),
        "manifests": tuple(ManifestsScope(*_parse_paths("manifests", e, i, where, path))
                           for i, e in enumerate(_entries(data, "manifests", where))),
        "pipelines": tuple(PipelinesScope(*_parse_paths("pipelines", e, i, where, path))
                           for i, e in enumerate(_entries(data, "pipelines", where))),
        "ops_tools": tuple(_parse_ops_tool(e, i, where) for i, e in enumerate(_entries(data, "ops_tools", where))),
        "osv": _parse_osv(data.get("osv", {}), where, path),
        "store": _parse_store(data.get("store", {}), where, path),
        "owners": tuple(_parse_owner(e, i, where, path) for i, e in enumerate(_entries(data, "owners", where))),
    }
    if "simulation" in data:
        others["simulation"] = _parse_simulation(data["simulation"], where)
    if "backups" in data:
        others["backups"] = _parse_backups(data["backups"], where, path)
    baseline = data.get("baseline")
    if baseline is not None:
        if not isinstance(baseline, str) or not baseline:
            raise ScopeError(f"{where}: baseline must be the path of a reviewed-baseline file")
        others["baseline"] = _relative(path, baseline)
    for kind, names in (("host", [h.name for h in hosts]), ("nginx", [n.name for n in nginx]),
                        ("repositories", [r.name for r in others["repositories"]])):
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ScopeError(f"{where}: two {kind} entries are named {duplicates[0]!r}")
    aws_data = data.get("aws")
    if aws_data is None:
        return Scope(aws=None, source=path, hosts=hosts, nginx=nginx, **others)
    if not isinstance(aws_data, dict):
        raise ScopeError(f"{where}: [aws] must be a table")
    for key, value in aws_data.items():
        expected = _AWS_KEYS.get(key)
        if expected is None:
            raise ScopeError(f"{where}: [aws] unknown key {key!r} (known: {', '.join(sorted(_AWS_KEYS))})")
        if not isinstance(value, expected):
            raise ScopeError(f"{where}: [aws] {key} must be a {expected.__name__}, not {type(value).__name__}")
    regions = aws_data.get("regions", [])
    if not all(isinstance(r, str) and r for r in regions):
        raise ScopeError(f"{where}: [aws] regions must be a list of region names")
    if not 1 <= aws_data.get("max_attempts", 4) <= 20:
        raise ScopeError(f"{where}: [aws] max_attempts must be between 1 and 20")
    if not 1 <= aws_data.get("read_timeout", 120) <= 3600:
        raise ScopeError(f"{where}: [aws] read_timeout must be between 1 and 3600 seconds")
    if aws_data.get("external_id") and not aws_data.get("role_arn"):
        raise ScopeError(f"{where}: [aws] external_id is set but role_arn is not")
    aws = AwsScope(
        profile=aws_data.get("profile"),
        role_arn=aws_data.get("role_arn"),
        external_id=aws_data.get("external_id"),
        regions=tuple(regions),
        environment_tag=aws_data.get("environment_tag", "Environment"),
        tier_tag=aws_data.get("tier_tag", "Tier"),
        endpoint_url=aws_data.get("endpoint_url"),
        max_attempts=aws_data.get("max_attempts", 4),
        read_timeout=aws_data.get("read_timeout", 120),
    )
    return Scope(aws=aws, source=path, hosts=hosts, nginx=nginx, **others)
