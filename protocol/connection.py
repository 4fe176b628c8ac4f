"""Connection files: how a client finds a running backend (as Jupyter kernels do).

The server writes a small JSON file once it is ready to answer: the endpoint to
connect to, the auth token if any, its pid and protocol version. Clients (the
Blender add-on, scripts) read it instead of being told a port. The file holds a
secret, so it is created readable by its owner only, and written atomically so a
reader never sees half of it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from protocol.errors import ProtocolError
from protocol.messages import PROTOCOL_NAME, PROTOCOL_VERSION, check_version


def runtime_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where connection files go by default.

    ``$CHOREO_RUNTIME_DIR`` if set, else ``$XDG_RUNTIME_DIR/choreo`` (a per-user,
    per-login tmpfs on Linux), else ``~/.local/share/choreo/runtime``. ``environ``
    (default: this process's) lets a parent compute where its child will write.
    """
    env = os.environ if environ is None else environ
    if env.get("CHOREO_RUNTIME_DIR"):
        return Path(env["CHOREO_RUNTIME_DIR"])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "choreo"
    return Path.home() / ".local" / "share" / "choreo" / "runtime"


def default_connection_file(pid: int | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """``<runtime_dir>/backend-<pid>.json``: one file per server process."""
    return runtime_dir(environ) / f"backend-{pid if pid is not None else os.getpid()}.json"


def write_connection_file(path: str | Path, endpoint: str, token: str | None,
                          **extra: Any) -> Path:
    """Atomically write the connection file, readable by its owner only."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = {"protocol": PROTOCOL_NAME, "version": PROTOCOL_VERSION, "endpoint": endpoint,
            "token": token, "pid": os.getpid(), **extra}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
    os.replace(tmp, path)
    return path


def read_connection_file(path: str | Path) -> dict[str, Any]:
    """The connection file's fields, checked: an ``endpoint`` string and our protocol."""
    path = Path(path)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProtocolError("bad_message", f"cannot read connection file {path}: {exc}") from None
    if not isinstance(info, dict) or not isinstance(info.get("endpoint"), str):
        raise ProtocolError("bad_message", f"connection file {path} has no endpoint")
    if info.get("protocol") != PROTOCOL_NAME:
        raise ProtocolError("bad_message", f"connection file {path} is not a {PROTOCOL_NAME} file")
    check_version(info.get("version"))
    return info


def find_connection_files() -> list[Path]:
    """Connection files in the default runtime dir, newest first."""
    folder = runtime_dir()
    if not folder.is_dir():
        return []
    return sorted(folder.glob("backend-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
