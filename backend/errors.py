"""The one shape of a refused input inside the backend: a stable code and a message.

Clients (the server, the CLI, the add-on) branch on ``code``, which never changes
meaning; ``message`` is for people and may change. Each component subclasses
``InputError`` so callers can catch its errors alone; the server maps the codes
that reach the wire onto the protocol's error codes (docs/protocol.md).
"""

from __future__ import annotations


class InputError(ValueError):
    """Input a backend component cannot use: ``code`` for programs, ``message`` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)  # both in args, so the error survives a copy
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
