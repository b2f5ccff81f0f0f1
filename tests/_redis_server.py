"""A real `redis-server` on 127.0.0.1 for the `RedisState` tests: no persistence, own temp dir.

Without `redis-server` on PATH the tests are skipped, except in CI (the `CI` variable set),
where that is a failure: `.ci/run` installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def redis_server_binary() -> str:
    """The path of `redis-server`; skips the test without it (fails it in CI)."""
    path = shutil.which("redis-server")
    if path is None:
        reason = "redis-server is not on PATH (Debian/Ubuntu: apt-get install redis-server)"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"{reason}; CI must install it (.ci/run does)", pytrace=False)
        pytest.skip(reason)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the moment of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """One running `redis-server`."""

    process: subprocess.Popen[bytes]
    port: int
    directory: str

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> str:
        try:
            with open(os.path.join(self.directory, "redis.log"), encoding="utf-8") as file:
                return file.read()
        except OSError:
            return ""

    def stop(self) -> None:
        """Terminate it and wait; kill it if it does not stop in time. Idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)


def _start(binary: str, directory: str) -> RedisServer:
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
            "--logfile",
            "redis.log",
            "--daemonize",
            "no",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(process, port, directory)
    deadline = time.monotonic() + START_TIMEOUT
    while not _pings(port):
        if process.poll() is not None or time.monotonic() > deadline:
            log = server.log
            server.stop()
            raise RuntimeError(f"redis-server did not start on port {port}:\n{log[-2000:]}")
        time.sleep(0.02)
    return server


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A fresh `redis-server` for the block; stopped (and its temp dir removed) after it."""
    binary = redis_server_binary()
    with tempfile.TemporaryDirectory(prefix="httpx-resilience-redis-") as directory:
        # The port is free when asked and taken by the server a moment later: another process
        # may win that race, so a failed start is tried again on another port.
        for attempt in range(3):
            try:
                server = _start(binary, directory)
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        try:
            yield server
        finally:
            server.stop()
