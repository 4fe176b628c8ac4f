"""Finding, starting and talking to a backend, for the add-on (pure Python, no bpy).

Two ways to reach a backend, chosen in the add-on's preferences:

* ``CONNECT``: an existing backend, through its connection file (or the newest one
  in the runtime folder whose backend still runs), or an endpoint typed in (with its
  key in ``token``);
* ``LOCAL``: the add-on starts one itself with the animator's command (or Python
  executable), waits for its connection file, and stops it when Blender exits.

Every backend has a key, read from its connection file (never typed, never on a
command line); the client signs every request with it. Every wait has a timeout,
and a backend that dies is reported with its log's tail: the panel must show an
error, never hang. A connection file left by a killed backend is named, removed and
skipped, not waited on.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..protocol.client import ChoreoClient
from ..protocol.connection import (
    live_connection_info, private_runtime_dir, runtime_dir, scan_connection_files,
)
from ..protocol.errors import ChoreoError, ChoreoTimeout, ProtocolError
from ..protocol.launch import BackendStartError, LaunchedBackend, launch_backend, log_tail


class LinkError(RuntimeError):
    """Why the add-on has no working backend, in words for the panel."""


@dataclass
class LinkSettings:
    """What the preferences say (copied out of bpy so this module never sees it)."""

    mode: str = "LOCAL"  # "LOCAL" or "CONNECT"
    connection_file: str = ""  # CONNECT: a file, or "" for the newest in the runtime folder
    endpoint: str = ""  # CONNECT: e.g. tcp://127.0.0.1:5555 (used when set, instead of a file)
    token: str = ""  # CONNECT by endpoint: the backend's key
    python: str = ""  # LOCAL: a Python with choreo installed; runs "-m backend.cli serve"
    command: str = "choreo serve"  # LOCAL: used when ``python`` is empty
    device: str = "auto"
    startup_timeout: float = 180.0
    request_timeout: float = 20.0
    extra_env: dict[str, str] = field(default_factory=dict)

    def local_command(self, connection_file: Path) -> list[str]:
        """The command line that starts a local backend writing ``connection_file``."""
        if self.python.strip():
            base = [self.python.strip(), "-m", "backend.cli", "serve"]
        else:
            base = shlex.split(self.command, posix=os.name != "nt")
            if not base:
                raise LinkError("no backend command set in the preferences")
        return base + ["--device", self.device, "--connection-file", str(connection_file)]


@dataclass
class BackendInfo:
    """What the panel shows about a connected backend (from ``hello``)."""

    endpoint: str
    version: str
    device: str
    protocol_version: str
    models: list[dict[str, Any]]
    default_model: str
    hello: dict[str, Any]

    @property
    def model_names(self) -> list[str]:
        return [str(m.get("name")) for m in self.models]

    def model(self, name: str | None) -> dict[str, Any]:
        """The description of model ``name`` (the default model when None or unknown)."""
        for m in self.models:
            if m.get("name") == name:
                return m
        return next((m for m in self.models if m.get("name") == self.default_model), self.models[0])

    def summary(self) -> str:
        return (f"choreo {self.version} on {self.device}, models: {', '.join(self.model_names)}")


class BackendLink:
    """The add-on's one connection to a backend, and the local process if it started one."""

    def __init__(self) -> None:
        self.client: ChoreoClient | None = None
        self.process: LaunchedBackend | None = None
        self.info: BackendInfo | None = None
        self.error: str = ""

    @property
    def connected(self) -> bool:
        return self.client is not None and self.info is not None

    def connect(self, settings: LinkSettings, should_stop: Callable[[], bool] | None = None) -> BackendInfo:
        """Reach a backend as ``settings`` say and ask its capabilities; raises ``LinkError``."""
        self.disconnect(stop_local=False)
        try:
            endpoint, token = self._endpoint(settings, should_stop)
            client = ChoreoClient(endpoint, token=token or None, timeout=settings.request_timeout)
            try:
                hello = client.hello(timeout=settings.request_timeout)
            except BaseException:
                client.close()
                raise
        except ChoreoTimeout:
            self.error = (f"the backend at {endpoint} did not answer within "
                          f"{settings.request_timeout:.0f} s{self._log_hint()}")
            raise LinkError(self.error) from None
        except (ChoreoError, ProtocolError, BackendStartError, OSError) as exc:
            self.error = str(exc)
            raise LinkError(self.error) from None
        except LinkError as exc:
            self.error = str(exc)
            raise
        self.client = client
        self.info = BackendInfo(
            endpoint=endpoint, version=str(hello.get("backend_version", "?")),
            device=str(hello.get("device", "?")), protocol_version=str(hello.get("protocol_version", "?")),
            models=list(hello.get("models", [])), default_model=str(hello.get("default_model", "")),
            hello=hello)
        if not self.info.models:
            self.disconnect(stop_local=False)
            self.error = "the backend has no models loaded"
            raise LinkError(self.error)
        self.error = ""
        return self.info

    def _endpoint(self, settings: LinkSettings, should_stop: Callable[[], bool] | None) -> tuple[str, str]:
        if settings.mode == "LOCAL":
            if self.process is None or not self.process.alive():
                folder = private_runtime_dir()
                connection = folder / f"blender-{os.getpid()}.json"
                log = Path(tempfile.gettempdir()) / f"choreo-backend-{os.getpid()}.log"
                env = {**os.environ, **settings.extra_env}
                self.process = launch_backend(settings.local_command(connection), connection, log_path=log,
                                              env=env, startup_timeout=settings.startup_timeout,
                                              should_stop=should_stop)
            return self.process.endpoint, self.process.token or ""
        if settings.endpoint.strip():
            return settings.endpoint.strip(), settings.token
        path = settings.connection_file.strip()
        if not path:
            found, stale = scan_connection_files()
            if not found:
                why = (f"removed the stale connection file(s) {', '.join(map(str, stale))} of backends "
                       "that are not running" if stale else f"no connection file in {runtime_dir()}")
                raise LinkError(f"no running backend found ({why}); start one with 'choreo serve' "
                                "or choose 'Start a local backend'")
            path = str(found[0])
        if not Path(path).is_file():
            raise LinkError(f"connection file {path} does not exist (is the backend running?)")
        info = live_connection_info(path)
        return str(info["endpoint"]), str(info.get("token") or settings.token or "")

    def check(self) -> str:
        """'' while the backend looks healthy, else why not (a local backend that exited)."""
        if self.process is not None and not self.process.alive():
            self.error = (f"the local backend exited with status {self.process.proc.returncode}:\n"
                          f"{log_tail(self.process.log_path, 12)}")
            self.client = None
            self.info = None
        return self.error

    def _log_hint(self) -> str:
        if self.process is None:
            return ""
        return f"; its log ({self.process.log_path}):\n{log_tail(self.process.log_path, 8)}"

    def disconnect(self, stop_local: bool = True) -> None:
        """Close the connection, and stop the backend if we started it (and ``stop_local``)."""
        if self.client is not None:
            self.client.close()
        self.client = None
        self.info = None
        if stop_local and self.process is not None:
            self.process.stop(timeout=10.0)
            self.process = None
