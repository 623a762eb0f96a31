"""The check registry: each check is a small pure function with its metadata beside it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from outsidein.evidence import GLOBAL
from outsidein.models import CheckMeta, Result, ReviewItem, Severity, not_assessed

if TYPE_CHECKING:  # the host and NGINX layers load without the AWS inventory
    from outsidein.aws.inventory import AwsInventory, RegionInventory

RegionCheckFn = Callable[["RegionInventory", "AwsInventory"], Iterable[Result]]
AccountCheckFn = Callable[["AwsInventory"], Iterable[Result]]


AWS = "aws"  # the evidence sources a check can read
HOST = "host"
NGINX = "nginx"
TLS = "tls"  # one TLS endpoint or certificate file
CAPTURE = "capture"  # one packet capture
REPOSITORY = "repository"  # one repository's secrets and hygiene (layer 5)
COMPONENTS = "components"  # one inventory of packages, images or an ops tool's version (layer 10)
PIPELINE = "pipeline"  # one set of CI files and Dockerfiles (layer 11)
SIMULATION = "simulation"  # one attack-simulation run against an authorized target (layer 12)
BACKUPS = "backups"  # the [backups] plan joined with the AWS inventory and the restore-drill log (layer 9)


@dataclass(frozen=True)
class Check:
    meta: CheckMeta
    run: Callable[[Any], Iterator[Result]]  # called with one parsed target of ``source``
    source: str = AWS


class Target(Protocol):
    """A parsed host or NGINX configuration: its name and the evidence it lacks (key -> reason)."""

    @property
    def name(self) -> str: ...

    @property
    def missing(self) -> dict[str, str]: ...


TargetT = TypeVar("TargetT", bound=Target)

REGISTRY: dict[str, Check] = {}
RegionSummaryFn = Callable[["RegionInventory", "AwsInventory"], Iterable[ReviewItem]]
SUMMARIES: list[tuple[tuple[str, ...], RegionSummaryFn]] = []


def _register(meta: CheckMeta, run: Callable[[Any], Iterator[Result]], source: str = AWS) -> None:
    if meta.id in REGISTRY:
        raise ValueError(f"duplicate check id {meta.id}")
    REGISTRY[meta.id] = Check(meta, run, source)


def _missing_reason(missing: dict[str, str], requires: tuple[str, ...]) -> str | None:
    reasons = [missing[call] for call in requires if call in missing]
    return "; ".join(dict.fromkeys(reasons)) if reasons else None


def _check_error(exc: Exception) -> str:
    from outsidein.redact import redact_text

    return redact_text(f"the check failed on this evidence ({type(exc).__name__}: {exc})")[:300]


def region_check(
    *, id: str, layer: int, title: str, severity: Severity, remediation: str, verify: str,
    requires: tuple[str, ...],
) -> Callable[[RegionCheckFn], RegionCheckFn]:
    """Register a check that runs once per region; a region missing its evidence is NOT_ASSESSED."""
    meta = CheckMeta(id, layer, title, severity, remediation, verify, requires)

    def decorate(fn: RegionCheckFn) -> RegionCheckFn:
        def run(inv: AwsInventory) -> Iterator[Result]:
            for region, region_inv in inv.regions.items():
                reason = _missing_reason(region_inv.missing, requires)
                if reason:
                    yield not_assessed(id, region, reason, region=region)
                    continue
                try:
                    results = list(fn(region_inv, inv))
                except Exception as exc:
                    results = [not_assessed(id, region, _check_error(exc), region=region)]
                yield from results

        _register(meta, run)
        return fn

    return decorate


def account_check(
    *, id: str, layer: int, title: str, severity: Severity, remediation: str, verify: str,
    requires: tuple[str, ...],
) -> Callable[[AccountCheckFn], AccountCheckFn]:
    """Register an account-wide check (IAM, S3); missing evidence makes it NOT_ASSESSED."""
    meta = CheckMeta(id, layer, title, severity, remediation, verify, requires)

    def decorate(fn: AccountCheckFn) -> AccountCheckFn:
        def run(inv: AwsInventory) -> Iterator[Result]:
            reason = _missing_reason(inv.global_.missing, requires)
            account = f"account {inv.account_id or '(unknown)'}"
            if reason:
                yield not_assessed(id, account, reason, region=GLOBAL)
                return
            try:
                results = list(fn(inv))
            except Exception as exc:
                results = [not_assessed(id, account, _check_error(exc), region=GLOBAL)]
            yield from results

        _register(meta, run)
        return fn

    return decorate


def target_check(
    *, source: str, id: str, layer: int, title: str, severity: Severity, remediation: str, verify: str,
    requires: tuple[str, ...] = (),
) -> Callable[[Callable[[TargetT], Iterable[Result]]], Callable[[TargetT], Iterable[Result]]]:
    """Register a check run once per host or NGINX configuration of ``source``.

    A target lacking any evidence named in ``requires`` (a key of ``target.missing``) is
    NOT_ASSESSED with the recorded reason, and the check function is not called for it.
    """
    meta = CheckMeta(id, layer, title, severity, remediation, verify, requires)

    def decorate(fn: Callable[[TargetT], Iterable[Result]]) -> Callable[[TargetT], Iterable[Result]]:
        def run(target: TargetT) -> Iterator[Result]:
            reason = _missing_reason(target.missing, requires)
            if reason:
                yield not_assessed(id, target.name, reason)
                return
            try:
                results = list(fn(target))
            except Exception as exc:  # evidence the check did not foresee: a reason, never a crash or a PASS
                yield not_assessed(id, target.name, _check_error(exc))
                return
            yield from results

        _register(meta, run, source)
        return fn

    return decorate


def region_summary(*, requires: tuple[str, ...]) -> Callable[[RegionSummaryFn], RegionSummaryFn]:
    """Register a per-region summary for review; skipped where its evidence is missing."""

    def decorate(fn: RegionSummaryFn) -> RegionSummaryFn:
        SUMMARIES.append((requires, fn))
        return fn

    return decorate


def review_items(inv: AwsInventory) -> list[ReviewItem]:
    all_checks()  # registers the summaries too
    items: list[ReviewItem] = []
    for requires, fn in SUMMARIES:
        for region_inv in inv.regions.values():
            if not _missing_reason(region_inv.missing, requires):
                items.extend(fn(region_inv, inv))
    return items


# Check modules, one per layer or topic; importing one registers its checks.
LAYER_MODULES = ("security_groups", "host_firewall", "vpc", "iam", "nginx", "tls", "transit", "secrets", "simulation",
                 "waf", "pipelines", "components", "backups")


def all_checks() -> list[Check]:
    """Every registered check, in layer order (importing the layer modules registers them)."""
    import importlib

    for module in LAYER_MODULES:
        importlib.import_module(f"outsidein.checks.{module}")

    return sorted(REGISTRY.values(), key=lambda c: (c.meta.layer, c.meta.id))
