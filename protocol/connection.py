"""Connection files: how a client finds a running backend (as Jupyter kernels do).

The server writes a small JSON file once it is ready to answer: the endpoint to
connect to, its key (``token``: every request is signed with it), its pid and
protocol version. Clients (the Blender add-on, scripts) read it instead of being
told a port. The file holds a secret, so it is created readable by its owner only,
in a folder only its owner can enter, and written atomically so a reader never sees
half of it.

A backend killed with SIGKILL leaves its file behind. Clients check that the file's
process still lives (for a backend on this machine), skip and remove a stale file,
and say ``no_backend`` naming it instead of waiting for an answer that never comes.
"""

from __future__ import annotations

import ipaddress
import json
import os
import stat
from pathlib import Path
from typing import Any, Mapping

from .errors import ChoreoError, ProtocolError
from .messages import PROTOCOL_NAME, PROTOCOL_VERSION, SIGNATURE_SCHEME, check_version


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


def private_runtime_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``runtime_dir()``, created if missing and made 0700 even when it already existed.

    Refuses (``PermissionError``) a folder that belongs to another user: its owner could
    read or replace the connection files in it.
    """
    folder = runtime_dir(environ)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise PermissionError(f"the runtime folder {folder} belongs to another user (uid {info.st_uid})")
    if stat.S_IMODE(info.st_mode) != 0o700:
        folder.chmod(0o700)
    return folder


def default_connection_file(pid: int | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """``<runtime_dir>/backend-<pid>.json``: one file per server process."""
    return runtime_dir(environ) / f"backend-{pid if pid is not None else os.getpid()}.json"


def write_connection_file(path: str | Path, endpoint: str, token: str | None,
                          **extra: Any) -> Path:
    """Atomically write the connection file, readable by its owner only.

    ``token`` is the server's key (None: an open server). A file in the runtime folder
    makes that folder private (0700) first.
    """
    path = Path(path)
    if path.parent.resolve() == runtime_dir().resolve():
        private_runtime_dir()
    else:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = {"protocol": PROTOCOL_NAME, "version": PROTOCOL_VERSION, "endpoint": endpoint,
            "token": token, "signature_scheme": SIGNATURE_SCHEME if token else None,
            "pid": os.getpid(), **extra}
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


def _local_endpoint(endpoint: Any) -> bool:
    """True when ``endpoint`` is on this machine (loopback TCP, ipc): its pid means something here."""
    if not isinstance(endpoint, str):
        return False
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    host = endpoint[len("tcp://"):].rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _started_after(pid: int, when: float) -> bool:
    """True when process ``pid`` started after ``when`` (Unix time): the pid was reused.
    False when that cannot be told (not Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        start_ticks = int(fields[19])  # field 22 of the file: start time after boot, in ticks
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + start_ticks / os.sysconf("SC_CLK_TCK") > when + 2.0
    except (OSError, ValueError, IndexError, StopIteration):
        return False


def backend_alive(info: Mapping[str, Any], written: float | None = None) -> bool:
    """Whether the backend a connection file describes still runs.

    Only a backend on this machine can be checked (its ``pid`` is a process here);
    one elsewhere counts as alive. ``written`` (the file's mtime) catches a pid that
    a newer process has taken since.
    """
    pid = info.get("pid")
    if not _local_endpoint(info.get("endpoint")) or not isinstance(pid, int) or isinstance(pid, bool):
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists (another user's: not ours to judge)
    return written is None or not _started_after(pid, written)


def live_connection_info(path: str | os.PathLike[str], remove_stale: bool = True) -> dict[str, Any]:
    """``read_connection_file``, and ``ChoreoError`` ``no_backend`` naming the file when its
    backend is not running any more (the file is then removed, unless ``remove_stale`` is False)."""
    path = Path(path)
    try:
        written = path.stat().st_mtime
    except OSError:
        raise ChoreoError("no_backend", f"connection file {path} does not exist "
                          "(is the backend running?)") from None
    info = read_connection_file(path)
    if not backend_alive(info, written):
        if remove_stale:
            path.unlink(missing_ok=True)
        raise ChoreoError("no_backend", f"stale connection file {path}: its backend (pid "
                          f"{info.get('pid')}) is not running" + (" (file removed)" if remove_stale else ""))
    return info


def scan_connection_files() -> tuple[list[Path], list[Path]]:
    """Connection files in the default runtime dir: (live ones newest first, stale ones removed).

    A file that cannot be read is left alone and not listed (it may be half-written).
    """
    folder = runtime_dir()
    if not folder.is_dir():
        return [], []
    live: list[tuple[float, Path]] = []
    stale: list[Path] = []
    for path in folder.glob("backend-*.json"):
        try:
            live_connection_info(path)
            live.append((path.stat().st_mtime, path))
        except ChoreoError as exc:
            if exc.code == "no_backend":
                stale.append(path)
        except OSError:
            continue
    return [p for _, p in sorted(live, key=lambda item: item[0], reverse=True)], stale


def find_connection_files() -> list[Path]:
    """Connection files of running backends in the default runtime dir, newest first
    (stale ones, left by a killed backend, are removed on the way)."""
    return scan_connection_files()[0]
