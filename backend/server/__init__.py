"""The local inference backend server (see docs/protocol.md for what it speaks).

``serve(config)`` runs one in the foreground; ``start_server_process`` launches one
as a subprocess and waits until it is ready.
"""

from backend.server.config import (
    ServerConfig, ServerConfigError, add_server_arguments, config_from_args, generate_token,
    is_loopback,
)
from backend.server.process import ServerProcess, ServerStartError, start_server_process
from backend.server.server import Server, serve

__all__ = [
    "Server", "ServerConfig", "ServerConfigError", "ServerProcess", "ServerStartError",
    "add_server_arguments", "config_from_args", "generate_token", "is_loopback", "serve",
    "start_server_process",
]
