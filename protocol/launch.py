"""Start a backend as a child process and wait until its connection file says it is ready.

Shared by the backend's own tools (tests, CLI, benchmarks) and the Blender add-on, which
starts a local backend with whatever command the animator configured. Readiness is the
connection file: the server writes it only after loading and warming up its models,
and it holds the child's pid, so a stale file from an earlier run is never mistaken
for this one. The child's log goes to a file, not a pipe, so a chatty server can never
block on a pipe nobody reads. The child is told our process id (``PARENT_PID_ENV``) and
ends when we do, so a crashed Blender leaves no backend behind (docs/protocol.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .connection import read_connection_file
from .errors import ProtocolError


PARENT_PID_ENV = "CHOREO_PARENT_PID"
"""Environment variable holding the launcher's process id: a backend that has it shuts
down once that process is gone (``backend/server/parent_watch.py``)."""


class BackendStartError(RuntimeError):
    """The backend exited or did not become ready; the message holds its log's tail."""


@dataclass
class LaunchedBackend:
    """A running backend child process and how to reach it."""

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

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (a clean shutdown), then a kill after ``timeout``; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def launch_backend(command: Sequence[str], connection_file: str | Path | Callable[[int], Path], *,
                   log_path: str | Path, env: dict[str, str] | None = None, cwd: str | Path | None = None,
                   startup_timeout: float = 180.0,
                   should_stop: Callable[[], bool] | None = None) -> LaunchedBackend:
    """Run ``command`` and wait until ``connection_file`` names the child's pid.

    ``connection_file`` is a path, or a function of the child's pid for servers that
    choose their own file name. ``env`` is the child's whole environment (default: ours).
    ``should_stop`` is polled while waiting, so a caller (a UI) can give up early.
    Raises ``BackendStartError`` with the log's tail if the child exits first, is not
    ready within ``startup_timeout`` seconds, or the command cannot be run at all.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if not callable(connection_file):
        Path(connection_file).unlink(missing_ok=True)
    try:
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(list(command), cwd=cwd, env={**(os.environ if env is None else env),
                                                                  PARENT_PID_ENV: str(os.getpid())},
                                    stdin=subprocess.DEVNULL,
                                    stdout=log_file, stderr=log_file)
    except OSError as exc:
        raise BackendStartError(f"cannot run {command[0]!r}: {exc}") from None
    path = Path(connection_file(proc.pid) if callable(connection_file) else connection_file)
    deadline = time.monotonic() + startup_timeout
    while True:
        if path.exists():
            try:
                info = read_connection_file(path)
            except ProtocolError:
                info = {}  # caught mid-replace; read again
            if info.get("pid") == proc.pid:
                return LaunchedBackend(proc, path, log_path, info)
        if proc.poll() is not None:
            raise BackendStartError(f"the backend exited with status {proc.returncode} before it was "
                                    f"ready:\n{log_tail(log_path)}")
        if time.monotonic() > deadline or (should_stop is not None and should_stop()):
            proc.kill()
            proc.wait()
            why = "was stopped" if time.monotonic() <= deadline else f"was not ready after {startup_timeout:.0f} s"
            raise BackendStartError(f"the backend {why}:\n{log_tail(log_path)}")
        time.sleep(0.05)


def log_tail(path: str | Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file ('' if it cannot be read)."""
    try:
        return "\n".join(Path(path).read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
