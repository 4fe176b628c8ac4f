"""Start a backend as a real subprocess and wait until it is ready (tests, CLI, add-on).

Readiness is the connection file: the server writes it only after loading and
warming up its models, so once it exists (with the child's pid in it) the first
request is served at full speed. The child's log goes to a file rather than a
pipe, so a chatty server can never block on a pipe nobody reads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.server.config import TOKEN_ENV, ServerConfig
from protocol.client import ChoreoClient
from protocol.connection import default_connection_file, read_connection_file
from protocol.errors import ProtocolError

REPO_ROOT = Path(__file__).resolve().parents[2]


class ServerStartError(RuntimeError):
    """The backend process exited or did not become ready; the message holds its log tail."""


@dataclass
class ServerProcess:
    """A running backend subprocess and how to reach it."""

    proc: subprocess.Popen[bytes]
    connection_file: Path
    log_path: Path
    info: dict[str, Any]

    @property
    def endpoint(self) -> str:
        return str(self.info["endpoint"])

    @property
    def token(self) -> str | None:
        return self.info.get("token")

    def client(self, **kwargs: Any) -> ChoreoClient:
        """A new client connected to this backend (with its token)."""
        return ChoreoClient(self.endpoint, token=self.token, **kwargs)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (a clean shutdown), then SIGKILL after ``timeout``; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server_process(config: ServerConfig | None = None, *, startup_timeout: float = 180.0,
                         log_path: str | Path | None = None, python: str = sys.executable,
                         env: dict[str, str] | None = None) -> ServerProcess:
    """Launch ``python -m backend.server`` with ``config`` and wait for its connection file.

    ``env`` adds environment variables for the child (e.g. ``CHOREO_RUNTIME_DIR``, which
    also decides where this function looks for a default-placed connection file).
    Raises ``ServerStartError`` (with the log's tail) if the process exits first or
    is not ready within ``startup_timeout`` seconds.
    """
    config = config or ServerConfig()
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="choreo-server-", suffix=".log")
        os.close(fd)
        log_path = name
    log_path = Path(log_path)
    env = {**os.environ, **(env or {})}
    env.pop(TOKEN_ENV, None)
    if config.token:
        env[TOKEN_ENV] = config.token
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    if config.connection_file is not None:
        Path(config.connection_file).unlink(missing_ok=True)  # never mistake a stale file for readiness
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([python, "-m", "backend.server", *config.to_args()], cwd=REPO_ROOT,
                                env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file)
    connection_file = Path(config.connection_file or default_connection_file(proc.pid, env))
    deadline = time.monotonic() + startup_timeout
    while True:
        if connection_file.exists():
            try:
                info = read_connection_file(connection_file)
            except ProtocolError:
                info = {}  # caught mid-replace; read again
            if info.get("pid") == proc.pid:
                return ServerProcess(proc, connection_file, log_path, info)
        if proc.poll() is not None:
            raise ServerStartError(f"the backend exited with status {proc.returncode} before it was "
                                   f"ready:\n{_tail(log_path)}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise ServerStartError(f"the backend was not ready after {startup_timeout:.0f} s:\n"
                                   f"{_tail(log_path)}")
        time.sleep(0.05)


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
