"""What a backend server is told at start: address, auth, models, limits, timeouts.

The checks live here, before anything heavy is imported, so that a refused
configuration (a public address without auth) fails in a fraction of a second
with a clear message instead of after the models have loaded.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from protocol.errors import ChoreoError
from protocol.messages import DEFAULT_MAX_MESSAGE_BYTES

TOKEN_ENV = "CHOREO_SERVER_TOKEN"
"""Environment variable a key (token) can come from, so that it never shows in ``ps``."""


class ServerConfigError(ChoreoError):
    """A configuration the server refuses to start with (codes: remote_bind_refused, bad_config)."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals; names that need DNS count as remote."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def generate_token() -> str:
    """A random key: 256 bits, as hex (what every server gets unless it is told one, or is open)."""
    return secrets.token_hex(32)


@dataclass
class ServerConfig:
    """Everything ``serve`` needs; the defaults are a private local backend.

    models: generator names to load (empty: every registered model whose bundled
        checkpoint is present, so ``hello`` lists them all); a name may
        map to a checkpoint in ``checkpoints`` instead of its bundled weights.
    default_model: what a request naming no model gets (empty: the registry's
        ``DEFAULT_MODEL`` when it is loaded, else the first model loaded); a studio that
        works mostly with one model sets it once here instead of in every request.
    max_message_bytes: larger requests get a ``message_too_large`` reply.
    hard_max_message_bytes: a frame over this is refused by ZeroMQ itself, which
        drops the connection without reading it (no reply is possible then);
        default: four times ``max_message_bytes``.
    client_timeout: seconds without any message from a client (its heartbeat
        pings included) after which its jobs are dropped.
    token: the server's key; None (the default): a random one, made at start and
        written only into the connection file. Every request must be signed with it.
    open: no key at all: any local process may send requests (debugging only;
        loopback addresses only).
    """

    host: str = "127.0.0.1"
    port: int = 0
    allow_remote: bool = False
    token: str | None = None
    open: bool = False
    connection_file: Path | None = None
    models: tuple[str, ...] = ()
    checkpoints: dict[str, str] = field(default_factory=dict)
    default_model: str = ""
    device: str = "auto"
    max_audio_seconds: float = 600.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    hard_max_message_bytes: int | None = None
    max_queue: int = 8
    client_timeout: float = 10.0
    shutdown_grace: float = 10.0
    warm_up: bool = True
    log_level: str = "INFO"

    def validate(self) -> None:
        """Raise ``ServerConfigError`` for a configuration that is unsafe or meaningless."""
        if not is_loopback(self.host) and not (self.allow_remote and self.token):
            raise ServerConfigError(
                "remote_bind_refused",
                f"refusing to listen on {self.host!r}: it is not a loopback address, and a "
                "backend reachable from other machines needs both allow_remote "
                "(--allow-remote) and an auth token (--token or $" + TOKEN_ENV + ")")
        if self.open and not is_loopback(self.host):
            raise ServerConfigError("remote_bind_refused", f"an open server (--open, no key) listens on "
                                    f"loopback only, not on {self.host!r}")
        if self.open and self.token:
            raise ServerConfigError("bad_config", "an open server (--open) has no key: drop --token")
        if not 0 <= self.port <= 65535:
            raise ServerConfigError("bad_config", f"port must be 0-65535, got {self.port}")
        if self.max_audio_seconds <= 0 or self.max_message_bytes <= 0 or self.max_queue < 0:
            raise ServerConfigError("bad_config", "max_audio_seconds and max_message_bytes must be "
                                    "positive, max_queue non-negative")
        if self.default_model and self.models and self.default_model not in self.models:
            raise ServerConfigError("bad_config", f"the default model {self.default_model!r} is not among "
                                    f"the models to load ({', '.join(self.models)})")
        if self.client_timeout <= 0:
            raise ServerConfigError("bad_config", "client_timeout must be positive")
        if self.hard_limit < self.max_message_bytes:
            raise ServerConfigError("bad_config", "hard_max_message_bytes < max_message_bytes")

    @property
    def hard_limit(self) -> int:
        return self.hard_max_message_bytes or 4 * self.max_message_bytes

    def bind_address(self) -> str:
        """The ZeroMQ address to bind (``*`` port: the OS picks a free one)."""
        host = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port or '*'}"

    def to_args(self) -> list[str]:
        """Command-line arguments reproducing this config (the token is left out: pass it
        through $CHOREO_SERVER_TOKEN)."""
        args = ["--host", self.host, "--port", str(self.port), "--device", self.device,
                "--max-audio-seconds", repr(self.max_audio_seconds),
                "--max-message-bytes", str(self.max_message_bytes),
                "--max-queue", str(self.max_queue), "--client-timeout", repr(self.client_timeout),
                "--shutdown-grace", repr(self.shutdown_grace), "--log-level", self.log_level]
        if self.hard_max_message_bytes:
            args += ["--hard-max-message-bytes", str(self.hard_max_message_bytes)]
        if self.allow_remote:
            args.append("--allow-remote")
        if self.open:
            args.append("--open")
        if self.connection_file is not None:
            args += ["--connection-file", str(self.connection_file)]
        for name in self.models:
            ckpt = self.checkpoints.get(name)
            args += ["--model", f"{name}={ckpt}" if ckpt else name]
        if self.default_model:
            args += ["--default-model", self.default_model]
        if not self.warm_up:
            args.append("--no-warm-up")
        return args


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's command-line options, shared by ``python -m backend.server`` and ``choreo serve``."""
    d = ServerConfig()
    parser.add_argument("--host", default=d.host, help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=d.port, help="TCP port (0: pick a free one)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a non-loopback --host (also needs a token)")
    parser.add_argument("--token", default=None,
                        help=f"the key every request is signed with (default: ${TOKEN_ENV} if set, "
                        "else a random one, written only into the connection file)")
    parser.add_argument("--open", action="store_true",
                        help="no key: any local process may use the backend (debugging; loopback only)")
    parser.add_argument("--connection-file", type=Path, default=None,
                        help="where to write the connection file (default: runtime dir)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME[=CHECKPOINT]",
                        help="model to load; repeat for several (default: every bundled model)")
    parser.add_argument("--default-model", default="", metavar="NAME",
                        help="the model a request naming none gets (default: the bundled default, docs/models.md)")
    parser.add_argument("--device", default=d.device, help="cpu, cuda, cuda:1 or auto")
    parser.add_argument("--max-audio-seconds", type=float, default=d.max_audio_seconds)
    parser.add_argument("--max-message-bytes", type=int, default=d.max_message_bytes)
    parser.add_argument("--hard-max-message-bytes", type=int, default=None)
    parser.add_argument("--max-queue", type=int, default=d.max_queue)
    parser.add_argument("--client-timeout", type=float, default=d.client_timeout,
                        help="seconds of client silence after which its jobs are dropped")
    parser.add_argument("--shutdown-grace", type=float, default=d.shutdown_grace)
    parser.add_argument("--no-warm-up", action="store_true",
                        help="skip the warm-up run (faster start, slower first request)")
    parser.add_argument("--log-level", default=d.log_level)


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """A ``ServerConfig`` from parsed ``add_server_arguments`` options."""
    models, checkpoints = [], {}
    for item in args.model:
        name, _, ckpt = item.partition("=")
        models.append(name)
        if ckpt:
            checkpoints[name] = ckpt
    return ServerConfig(
        host=args.host, port=args.port, allow_remote=args.allow_remote,
        token=args.token or (None if args.open else os.environ.get(TOKEN_ENV)) or None, open=args.open,
        connection_file=args.connection_file, models=tuple(models), checkpoints=checkpoints,
        default_model=args.default_model, device=args.device, max_audio_seconds=args.max_audio_seconds,
        max_message_bytes=args.max_message_bytes,
        hard_max_message_bytes=args.hard_max_message_bytes, max_queue=args.max_queue,
        client_timeout=args.client_timeout, shutdown_grace=args.shutdown_grace,
        warm_up=not args.no_warm_up, log_level=args.log_level)
