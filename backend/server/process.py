"""Start a backend as a real subprocess and wait until it is ready (tests, CLI, add-on).

The waiting (for the connection file that names the child's pid) is
``protocol.launch``, shared with the Blender add-on; this module adds the backend's
own command line and the repository on the child's ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from backend.server.config import TOKEN_ENV, ServerConfig
from protocol.client import ChoreoClient
from protocol.connection import default_connection_file
from protocol.launch import BackendStartError, LaunchedBackend, launch_backend

REPO_ROOT = Path(__file__).resolve().parents[2]

ServerStartError = BackendStartError
"""The backend process exited or did not become ready; the message holds its log tail."""


class ServerProcess(LaunchedBackend):
    """A running backend subprocess and how to reach it."""

    def client(self, **kwargs: object) -> ChoreoClient:
        """A new client connected to this backend, signing with its key (from its connection file)."""
        return ChoreoClient(self.endpoint, token=self.token, **kwargs)  # type: ignore[arg-type]

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
    env = {**os.environ, **(env or {})}
    env.pop(TOKEN_ENV, None)
    if config.token:
        env[TOKEN_ENV] = config.token
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    connection_file = (config.connection_file if config.connection_file is not None
                       else (lambda pid: default_connection_file(pid, env)))
    launched = launch_backend([python, "-m", "backend.server", *config.to_args()], connection_file,
                              log_path=log_path, env=env, cwd=REPO_ROOT, startup_timeout=startup_timeout)
    return ServerProcess(launched.proc, launched.connection_file, launched.log_path, launched.info)
