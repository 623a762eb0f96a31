"""moto's server with a request counter in front of it, for the benchmark.

Run as ``python bench/moto_counting_server.py -p PORT``. It serves moto exactly as
``python -m moto.server`` does (same WSGI app, same threaded werkzeug server), and counts every
AWS request by the service and region named in its SigV4 credential scope. The counts are read
and reset over HTTP, so the benchmark can attribute requests to one tool at a time:

* ``GET  /__bench/ping``   -> ``ok`` (readiness probe that does not touch moto's state)
* ``GET  /__bench/counts`` -> ``{"total": n, "by_service": {...}, "by_region": {...}, "in_flight": k}``
* ``POST /__bench/reset``  -> zero the counters
* ``POST /__bench/tag-index?on=1`` (or ``on=0``) -> look EC2 tags up by resource id (see below)

The tag index. moto looks up the tags of every EC2 resource it renders by scanning *all* the
region's tags with one regular expression per tag (``TagBackend.describe_tags`` with a
``resource-id`` filter), so a response of n groups costs O(n x all tags): 4,500 security groups
take moto ~35 s to render, whichever client asks. With the index on, a lookup whose only filter
is one literal resource id reads that resource's own tags from moto's dictionary (same tags,
same order); every other ``describe_tags`` call takes moto's own path. AWS has no such cost, so
the benchmark measures the clients both ways (``run_bench.py --emulator``).

Counting in the server is the same method for every client (outsidein, Prowler): one count per
HTTP request that reaches the emulator, retries included. Werkzeug's per-request log line is
switched off, so the server does no console I/O per request.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

_WILDCARD = re.compile(r"[*?\\\[]")
_TAG_INDEX = {"on": False}


def install_tag_index() -> None:
    """Wrap moto's EC2 ``describe_tags`` with an exact resource-id fast path, switched by ``_TAG_INDEX``."""
    from moto.ec2.models.tags import TagBackend
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    scan = TagBackend.describe_tags

    def describe_tags(self: Any, filters: dict[str, list[str]] | None = None) -> list[dict[str, str]]:
        ids = (filters or {}).get("resource-id")
        if (not _TAG_INDEX["on"] or filters is None or set(filters) != {"resource-id"} or ids is None
                or len(ids) != 1 or _WILDCARD.search(ids[0])):
            return scan(self, filters)
        resource_id = ids[0]
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
        return [{"resource_id": resource_id, "key": key, "value": value, "resource_type": kind}
                for key, value in dict(self.tags.get(resource_id) or {}).items()]

    TagBackend.describe_tags = describe_tags  # type: ignore[method-assign]


_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
# boto3 signs s3 requests with "s3" and IAM with region us-east-1; sts, s3control likewise.


class CountingMiddleware:
    """WSGI middleware: count each request by SigV4 service/region, answer the /__bench endpoints."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.by_service: Counter[str] = Counter()
        self.by_region: Counter[str] = Counter()
        self.total = 0
        self.in_flight = 0  # AWS requests being answered right now (a client may have given up on them)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total": self.total,
                "by_service": dict(sorted(self.by_service.items())),
                "by_region": dict(sorted(self.by_region.items())),
                "in_flight": self.in_flight,
            }

    def reset(self) -> None:
        with self.lock:
            self.by_service.clear()
            self.by_region.clear()
            self.total = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/__bench/"):
            return self._bench(path, environ, start_response)
        if not path.startswith("/moto-api"):
            match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
            service, region = (match.group(2), match.group(1)) if match else ("unsigned", "-")
            with self.lock:
                self.total += 1
                self.by_service[service] += 1
                self.by_region[region] += 1
                self.in_flight += 1
            try:
                # moto (Flask) builds the whole body inside this call, so it is over when the call returns.
                return self.app(environ, start_response)
            finally:
                with self.lock:
                    self.in_flight -= 1
        return self.app(environ, start_response)

    def _bench(self, path: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if path == "/__bench/reset" and environ.get("REQUEST_METHOD") == "POST":
            self.reset()
            body = b"{}"
        elif path == "/__bench/counts":
            body = json.dumps(self.snapshot()).encode()
        elif path == "/__bench/tag-index" and environ.get("REQUEST_METHOD") == "POST":
            _TAG_INDEX["on"] = environ.get("QUERY_STRING", "") == "on=1"
            body = json.dumps({"tag_index": _TAG_INDEX["on"]}).encode()
        elif path == "/__bench/ping":
            body = b"ok"
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"unknown bench endpoint"]
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    parser.add_argument("--tag-index", action="store_true", help="start with the EC2 tag index on")
    args = parser.parse_args(argv)
    install_tag_index()
    _TAG_INDEX["on"] = args.tag_index
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, CountingMiddleware(app), threaded=True)


if __name__ == "__main__":
    main()
