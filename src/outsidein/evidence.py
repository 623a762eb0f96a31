"""Raw evidence: what the APIs returned, kept as JSON so an audit can be saved and re-run offline."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

SNAPSHOT_FORMAT = "outsidein-snapshot/1"
GLOBAL = "global"  # the pseudo-region of account-wide services (IAM, S3 bucket list)


class EvidenceError(ValueError):
    """A snapshot or evidence folder that cannot be read; the message names the file."""


@dataclass(frozen=True)
class Record:
    """One API read: its data, or why there is none (denied, throttled, unreachable, not provided)."""

    data: Any = None
    error: str | None = None  # a short reason a person can act on

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {"error": self.error} if self.error else {"data": self.data}


def record_key(region: str, call: str, param: str | None = None) -> str:
    """``us-east-1/ec2.describe_security_groups`` or ``global/s3.get_bucket_policy#bucket``."""
    return f"{region}/{call}" + (f"#{param}" if param is not None else "")


def to_jsonable(value: Any) -> Any:
    """API responses as plain JSON (datetimes become ISO 8601 strings, bytes are decoded).

    Dicts and lists are converted in place: a response is owned by the collector, and copying one of
    tens of megabytes would double the memory it takes.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(item, str | int | float | bool | None):
                value[key] = to_jsonable(item)
        return value
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, str | int | float | bool | None):
                value[index] = to_jsonable(item)
        return value
    if isinstance(value, tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, str | int | float | bool | None):
        return value
    return _json_default(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"cannot store {type(value).__name__} in evidence")


@dataclass
class AwsEvidence:
    """Everything read from one AWS account, keyed by region and API call."""

    collected_at: datetime
    account_id: str | None = None
    regions: tuple[str, ...] = ()
    environment_tag: str = "Environment"
    tier_tag: str = "Tier"
    records: dict[str, Record] = field(default_factory=dict)
    api_calls: dict[str, int] = field(default_factory=dict)  # HTTP requests per service
    origin: str = "api"  # "api", "snapshot" or "aws-cli folder"

    def put(self, region: str, call: str, data: Any, param: str | None = None) -> None:
        self.records[record_key(region, call, param)] = Record(data=to_jsonable(data))

    def put_error(self, region: str, call: str, reason: str, param: str | None = None) -> None:
        self.records[record_key(region, call, param)] = Record(error=reason)

    def get(self, region: str, call: str, param: str | None = None) -> Record:
        """The record, or a Record whose error says it was never collected."""
        found = self.records.get(record_key(region, call, param))
        if found is None:
            where = "account-wide" if region == GLOBAL else f"in {region}"
            missing = f"{call}" + (f" for {param}" if param else "")
            return Record(error=f"no evidence {where}: {missing} was not collected")
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "regions": list(self.regions),
            "environment_tag": self.environment_tag,
            "tier_tag": self.tier_tag,
            "api_calls": dict(sorted(self.api_calls.items())),
            "records": {key: rec.to_json() for key, rec in sorted(self.records.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], collected_at: datetime, where: str) -> AwsEvidence:
        try:
            records = {
                key: Record(data=value.get("data"), error=value.get("error"))
                for key, value in data["records"].items()
            }
            return cls(
                collected_at=collected_at,
                account_id=data.get("account_id"),
                regions=tuple(data.get("regions", [])),
                environment_tag=data.get("environment_tag", "Environment"),
                tier_tag=data.get("tier_tag", "Tier"),
                records=records,
                api_calls=dict(data.get("api_calls", {})),
                origin="snapshot",
            )
        except (KeyError, AttributeError, TypeError) as exc:
            raise EvidenceError(f"{where}: the 'aws' section is malformed ({exc})") from None


def _records_to_json(records: dict[str, Record]) -> dict[str, Any]:
    return {key: rec.to_json() for key, rec in sorted(records.items())}


def _records_from_json(data: Any, where: str) -> dict[str, Record]:
    if not isinstance(data, dict):
        raise EvidenceError(f"{where}: expected an object of records")
    try:
        return {str(key): Record(data=value.get("data"), error=value.get("error")) for key, value in data.items()}
    except AttributeError:
        raise EvidenceError(f"{where}: a record is not an object") from None


@dataclass
class HostEvidence:
    """What one host showed: command outputs (text), files (text) and probes from a vantage point.

    ``commands`` is keyed by the command's file name (``iptables-save``, ``ss-tlnp`` …, see
    ``outsidein.host.commands``), data the text it printed; ``files`` by absolute path on the host,
    data the text or None when the file does not exist; ``provisioning`` by the path of a
    provisioning file named in the scope (read where outsidein runs); ``probes`` by ``tcp/<port>``,
    data ``{"address": str, "port": int, "open": bool, "state": "open" | "refused" | "filtered"}``
    from the vantage point where outsidein runs (refused: a RST came back; filtered: no answer).
    """

    name: str
    address: str  # "local", "user@host:port", or the folder the outputs were read from
    environment: str | None = None
    origin: str = "local"  # "local", "ssh" or "folder"
    commands: dict[str, Record] = field(default_factory=dict)
    files: dict[str, Record] = field(default_factory=dict)
    provisioning: dict[str, Record] = field(default_factory=dict)
    probes: dict[str, Record] = field(default_factory=dict)
    ssh_allowed_cidrs: list[str] = field(default_factory=list)  # the scope's VPN/bastion ranges for SSH
    error: str | None = None  # the host could not be reached at all

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "address": self.address, "environment": self.environment, "origin": self.origin,
            "error": self.error, "ssh_allowed_cidrs": list(self.ssh_allowed_cidrs),
            "commands": _records_to_json(self.commands), "files": _records_to_json(self.files),
            "provisioning": _records_to_json(self.provisioning), "probes": _records_to_json(self.probes),
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> HostEvidence:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise EvidenceError(f"{where}: a host entry has no name")
        return cls(
            name=data["name"], address=str(data.get("address", "")), environment=data.get("environment"),
            origin=str(data.get("origin", "snapshot")), error=data.get("error"),
            commands=_records_from_json(data.get("commands", {}), f"{where}: host {data['name']} commands"),
            files=_records_from_json(data.get("files", {}), f"{where}: host {data['name']} files"),
            provisioning=_records_from_json(data.get("provisioning", {}), f"{where}: host {data['name']} provisioning"),
            ssh_allowed_cidrs=[str(c) for c in data.get("ssh_allowed_cidrs") or []],
            probes=_records_from_json(data.get("probes", {}), f"{where}: host {data['name']} probes"),
        )


@dataclass
class NginxEvidence:
    """One NGINX configuration: every file read (path -> text), ``nginx -t``, and the live probe."""

    name: str
    main: str  # the main configuration file (absolute path; a key of ``files``)
    environment: str | None = None
    files: dict[str, Record] = field(default_factory=dict)
    syntax_test: Record | None = None  # data {"exit_code": int, "output": str}; None when not run
    probe: Record | None = None  # data {"url", "status", "headers": [[name, value], ...]}; None when no URL

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "main": self.main, "environment": self.environment,
            "files": _records_to_json(self.files),
            "syntax_test": self.syntax_test.to_json() if self.syntax_test else None,
            "probe": self.probe.to_json() if self.probe else None,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> NginxEvidence:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data.get("main"):
            raise EvidenceError(f"{where}: an nginx entry has no name or main file")

        def one(value: Any) -> Record | None:
            return Record(data=value.get("data"), error=value.get("error")) if isinstance(value, dict) else None

        return cls(
            name=data["name"], main=str(data["main"]), environment=data.get("environment"),
            files=_records_from_json(data.get("files", {}), f"{where}: nginx {data['name']} files"),
            syntax_test=one(data.get("syntax_test")), probe=one(data.get("probe")),
        )


@dataclass
class TlsEvidence:
    """One TLS endpoint (``host:port``) or certificate file, as the scanner saw it.

    ``scan.data`` is the scanner's JSON (see ``outsidein.tls``): protocols and suites accepted, the
    served chain as PEM, validation, stapling, or the plaintext answer where no TLS was offered.
    For a certificate file, ``kind`` is "file", ``name`` is its path and ``scan.data`` holds its PEM.
    """

    name: str  # "host:port", or the certificate file's path
    kind: str = "endpoint"  # "endpoint" or "file"
    protocol: str | None = None  # https, tls, postgres, redis, amqps, smtp, imap, ldap, mysql …
    server_name: str | None = None
    environment: str | None = None
    external: bool = False  # reached from the internet: self-signed and stapling matter
    scan: Record = field(default_factory=Record)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "protocol": self.protocol, "server_name": self.server_name,
                "environment": self.environment, "external": self.external, "scan": self.scan.to_json()}

    @classmethod
    def from_json(cls, data: Any, where: str) -> TlsEvidence:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise EvidenceError(f"{where}: a TLS entry has no name")
        scan = data.get("scan") or {}
        return cls(name=data["name"], kind=str(data.get("kind", "endpoint")), protocol=data.get("protocol"),
                   server_name=data.get("server_name"), environment=data.get("environment"),
                   external=bool(data.get("external", False)),
                   scan=Record(data=scan.get("data"), error=scan.get("error")) if isinstance(scan, dict) else Record())


@dataclass
class CaptureEvidence:
    """Packets seen on the wire: a pcap file or a bounded live capture, reduced to classified TCP flows.

    ``flows.data`` is a list of flow summaries (see ``outsidein.transit``), with any credential or
    query excerpt already masked: the capture file itself is never copied into a snapshot.
    """

    name: str  # the pcap file's path, "live:<interface>", or the [[postgres]] entry's name
    kind: str = "pcap"  # "pcap", "live", or "pg_stat_ssl" (flows are then the server's live connections)
    environment: str | None = None
    flows: Record = field(default_factory=Record)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "environment": self.environment, "flows": self.flows.to_json()}

    @classmethod
    def from_json(cls, data: Any, where: str) -> CaptureEvidence:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise EvidenceError(f"{where}: a capture entry has no name")
        flows = data.get("flows") or {}
        return cls(name=data["name"], kind=str(data.get("kind", "pcap")), environment=data.get("environment"),
                   flows=Record(data=flows.get("data"), error=flows.get("error")) if isinstance(flows, dict)
                   else Record())


@dataclass
class SourceEvidence:
    """One repository, manifest set, pipeline set or ops tool, as its collector reduced it (layers 5, 10, 11).

    ``data.data`` is the collector's JSON (see ``outsidein.secrets``, ``outsidein.components`` and
    ``outsidein.pipelines``): findings-to-be with every secret already masked, package inventories with the
    advisories matched at collection time, CI files and Dockerfiles as masked text. ``kind`` says which.
    """

    name: str
    kind: str  # "repository", "manifests", "ops_tool", "pipelines", "simulation"
    environment: str | None = None
    data: Record = field(default_factory=Record)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "environment": self.environment, "data": self.data.to_json()}

    @classmethod
    def from_json(cls, data: Any, where: str) -> SourceEvidence:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise EvidenceError(f"{where}: an entry has no name")
        record = data.get("data") or {}
        return cls(name=data["name"], kind=str(data.get("kind", "")), environment=data.get("environment"),
                   data=Record(data=record.get("data"), error=record.get("error")) if isinstance(record, dict)
                   else Record())


# snapshot keys of SourceEvidence
SOURCE_LISTS = ("repositories", "components", "pipelines", "simulations", "backups")


def _sources(sources: dict[str, list[Any]], key: str, path: Path) -> list[SourceEvidence]:
    return [SourceEvidence.from_json(entry, f"{path}: {key}[{i}]") for i, entry in enumerate(sources[key])]


@dataclass
class Snapshot:
    """A saved collection: the raw evidence of every source, and when it was collected."""

    collected_at: datetime
    aws: AwsEvidence | None = None
    hosts: list[HostEvidence] = field(default_factory=list)
    nginx: list[NginxEvidence] = field(default_factory=list)
    tls: list[TlsEvidence] = field(default_factory=list)
    captures: list[CaptureEvidence] = field(default_factory=list)
    repositories: list[SourceEvidence] = field(default_factory=list)  # layer 5: secrets and repository hygiene
    components: list[SourceEvidence] = field(default_factory=list)  # layer 10: packages, images, ops tools
    pipelines: list[SourceEvidence] = field(default_factory=list)  # layer 11: CI files and Dockerfiles
    simulations: list[SourceEvidence] = field(default_factory=list)  # layer 12: attack-simulation runs
    backups: list[SourceEvidence] = field(default_factory=list)  # layer 9: backup plan and restore-drill records

    @property
    def empty(self) -> bool:
        return self.aws is None and not (self.hosts or self.nginx or self.tls or self.captures or self.repositories
                                         or self.components or self.pipelines or self.simulations or self.backups)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "collected_at": self.collected_at.isoformat(),
            "aws": self.aws.to_json() if self.aws else None,
            "hosts": [host.to_json() for host in self.hosts],
            "nginx": [conf.to_json() for conf in self.nginx],
            "tls": [entry.to_json() for entry in self.tls],
            "captures": [capture.to_json() for capture in self.captures],
            **{key: [entry.to_json() for entry in getattr(self, key)] for key in SOURCE_LISTS},
        }

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=False) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise EvidenceError(f"{path}: cannot read snapshot: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise EvidenceError(f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
            raise EvidenceError(f"{path}: not an outsidein snapshot (expected \"format\": \"{SNAPSHOT_FORMAT}\")")
        try:
            collected_at = datetime.fromisoformat(data["collected_at"])
        except (KeyError, TypeError, ValueError):
            raise EvidenceError(f"{path}: missing or invalid 'collected_at'") from None
        aws = data.get("aws")
        hosts, nginx = data.get("hosts") or [], data.get("nginx") or []
        tls, captures = data.get("tls") or [], data.get("captures") or []
        sources = {key: data.get(key) or [] for key in SOURCE_LISTS}
        if not all(isinstance(x, list) for x in (hosts, nginx, tls, captures, *sources.values())):
            raise EvidenceError(f"{path}: 'hosts', 'nginx', 'tls', 'captures', {', '.join(map(repr, SOURCE_LISTS))} "
                                "must be lists")
        return cls(
            collected_at=collected_at,
            aws=AwsEvidence.from_json(aws, collected_at, str(path)) if aws else None,
            hosts=[HostEvidence.from_json(host, f"{path}: hosts[{i}]") for i, host in enumerate(hosts)],
            nginx=[NginxEvidence.from_json(conf, f"{path}: nginx[{i}]") for i, conf in enumerate(nginx)],
            tls=[TlsEvidence.from_json(entry, f"{path}: tls[{i}]") for i, entry in enumerate(tls)],
            captures=[CaptureEvidence.from_json(c, f"{path}: captures[{i}]") for i, c in enumerate(captures)],
            repositories=_sources(sources, "repositories", path), components=_sources(sources, "components", path),
            pipelines=_sources(sources, "pipelines", path), simulations=_sources(sources, "simulations", path),
            backups=_sources(sources, "backups", path),
        )
