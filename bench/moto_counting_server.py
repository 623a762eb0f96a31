"""moto's server with a request counter in front of it, for the benchmark.

Run as ``python bench/moto_counting_server.py -p PORT``. It serves moto exactly as
``python -m moto.server`` does (same WSGI app, same threaded werkzeug server), and counts every
AWS request by the service and region named in its SigV4 credential scope. The counts are read
and reset over HTTP, so the benchmark can attribute requests to one tool at a time:

* ``GET  /__bench/ping``   -> ``ok`` (readiness probe that does not touch moto's state)
* ``GET  /__bench/counts`` -> ``{"total": n, "by_service": {...}, "by_region": {...}, "in_flight": k}``
* ``POST /__bench/reset``  -> zero the counters

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
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, CountingMiddleware(app), threaded=True)


if __name__ == "__main__":
    main()
