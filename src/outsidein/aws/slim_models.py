"""Service models cut down to the operations outsidein calls.

botocore loads a service's whole model for every client: EC2's is 3.5 MB of JSON (about 15 MiB
once parsed, 22 MiB with its client), and most of it is documentation and operations an audit
never calls. ``SlimModelLoader`` is botocore's own loader with two differences: a ``service-2``
model of a service named in ``operations`` keeps only those operations, the shapes they reach,
and no documentation; and the endpoint table (``endpoints.json``, 7 MB parsed, every service in
every partition) keeps only those services and the ones credential providers call. Everything
else (endpoint rule sets, paginators, retries, other services' models) loads as usual. For the
AWS layers this takes the collector's clients from ~60 MiB to ~12 MiB.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from botocore import xform_name
from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader

_DOC_KEYS = ("documentation", "documentationUrl")
# Services a session may create clients for on its own (assume-role and SSO credential providers).
CREDENTIAL_SERVICES = frozenset({"sts", "sso", "sso-oidc", "signin"})
# Client names whose endpoint prefix is not the name itself (less its dashes).
ENDPOINT_PREFIXES = {"elbv2": "elasticloadbalancing"}


def slim_model(model: dict[str, Any], operations: Iterable[str]) -> dict[str, Any]:
    """``model`` with only the operations whose snake_case names are given (and their shapes)."""
    wanted = set(operations)
    kept_ops = {name: op for name, op in model.get("operations", {}).items() if xform_name(name) in wanted}
    shapes = model.get("shapes", {})
    reached: set[str] = set()
    pending = [ref["shape"] for op in kept_ops.values()
               for ref in (op.get("input"), op.get("output"), *op.get("errors", ())) if ref]
    while pending:
        name = pending.pop()
        if name in reached or name not in shapes:
            continue
        reached.add(name)
        shape = shapes[name]
        pending.extend(member["shape"] for member in shape.get("members", {}).values())
        pending.extend(shape[key]["shape"] for key in ("member", "key", "value") if key in shape)
    slim = {key: value for key, value in model.items() if key not in ("operations", "shapes", *_DOC_KEYS)}
    slim["operations"] = {name: _undocumented(op) for name, op in kept_ops.items()}
    slim["shapes"] = {name: _undocumented(shapes[name]) for name in sorted(reached)}
    return slim


def slim_endpoints(endpoints: dict[str, Any], services: Iterable[str]) -> dict[str, Any]:
    """botocore's endpoint table with only the given services (client names) in each partition."""
    keep = {ENDPOINT_PREFIXES.get(name, name).replace("-", "") for name in services}
    partitions = [{**partition, "services": {name: value for name, value in partition.get("services", {}).items()
                                             if name.replace("-", "") in keep}}
                  for partition in endpoints.get("partitions", [])]
    return {**endpoints, "partitions": partitions}


def _extras_for(extras: dict[str, Any], shapes: Mapping[str, Any]) -> dict[str, Any]:
    """An sdk-extras document restricted to the shapes a cut model kept."""
    merge = dict(extras.get("merge", {}))
    if "shapes" in merge:
        merge["shapes"] = {name: value for name, value in merge["shapes"].items() if name in shapes}
    return {**extras, "merge": merge}


def _undocumented(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _undocumented(value) for key, value in node.items() if key not in _DOC_KEYS}
    if isinstance(node, list):
        return [_undocumented(value) for value in node]
    return node


# Cut documents, shared by every loader of the process (they are small; the full ones take a
# second to parse and the collector makes one session per audit): (file, services kept) -> data.
_CUT: dict[tuple[str, frozenset[str]], Any] = {}
_CUT_LOCK = threading.Lock()


class SlimModelLoader(Loader):  # type: ignore[misc]
    """botocore's data loader, serving cut-down ``service-2`` models for the services given."""

    def __init__(self, operations: Mapping[str, Iterable[str]], search_paths: list[str]) -> None:
        super().__init__(extra_search_paths=list(search_paths), include_default_search_paths=False)
        self.operations = {service: frozenset(ops) for service, ops in operations.items()}

    def load_data_with_path(self, name: str) -> tuple[Any, str]:
        service, _, rest = name.partition("/")
        if name == "endpoints":
            services = frozenset(self.operations.keys() | CREDENTIAL_SERVICES)
            return self._cut(name, services, lambda data: slim_endpoints(data, services))
        if service in self.operations and rest.endswith("/service-2"):
            operations = self.operations[service]
            return self._cut(name, operations, lambda data: slim_model(data, operations))
        if service in self.operations and "/service-2." in rest and rest.endswith("-extras"):
            # Extras merge members into shapes; those of cut shapes would come back without a type.
            model, _ = self.load_data_with_path(name.rsplit(".", 1)[0])
            return self._cut(name, self.operations[service], lambda data: _extras_for(data, model["shapes"]))
        found_with_path: tuple[Any, str] = super().load_data_with_path(name)
        return found_with_path

    def _cut(self, name: str, kept: frozenset[str], cut: Callable[[Any], Any]) -> tuple[Any, str]:
        """The cut document, read once per process without botocore's cache (the full one is not kept)."""
        for base in self.search_paths:
            path = os.path.join(base, name)
            with _CUT_LOCK:
                if (path, kept) in _CUT:
                    return _CUT[path, kept], path
            found = self.file_loader.load_file(path)
            if found is not None:
                data = cut(found)
                with _CUT_LOCK:
                    return _CUT.setdefault((path, kept), data), path
        raise DataNotFoundError(data_path=name)
