"""A local AWS emulator: moto's server as a child process on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from types import TracebackType

EMULATOR_ENV = {
    # Thousands of default AMIs and snapshots only slow every tool down.
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    # AWS-managed policies (AdministratorAccess …) exist in every real account.
    "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
}

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAEMULATOREXAMPLE1",
    "AWS_SECRET_ACCESS_KEY": "emulator-secret-not-a-real-key",
}


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoServer:
    """moto's server in its own process, reachable at ``endpoint_url``.

    ``extra_env`` is passed to the server process (for example
    ``INITIAL_NO_AUTH_ACTION_COUNT`` to make it enforce IAM policies).
    """

    port: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoServer:
        if not self.port:
            self.port = free_loopback_port()
        env = {**os.environ, **EMULATOR_ENV, **self.extra_env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with code {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/data.json", timeout=2):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.endpoint_url} within {timeout:.0f}s")

    def reset(self) -> None:
        """Forget every resource (moto's own reset endpoint)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def client_env(self) -> dict[str, str]:
        """Environment variables that point boto3 at this emulator."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, **DUMMY_CREDENTIALS}

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
