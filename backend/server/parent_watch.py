"""A backend started for one program (Blender, ``choreo demo``) ends when that program does.

``protocol.launch.launch_backend`` puts the launcher's process id into the child's
environment (``PARENT_PID_ENV``). Without this, a Blender that crashes or a
``choreo demo`` that is killed leaves its backend running, holding a port, memory and
perhaps a GPU, with nobody left who knows its key. A backend started by hand
(``choreo serve``) has no such variable and runs until it is told to stop.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from protocol.launch import PARENT_PID_ENV

CHECK_EVERY_S = 1.0
"""How often the server looks; a second of delay is nothing next to a crashed Blender."""


class ParentWatch:
    """Says when the process that launched this one has exited."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        # launched directly: when the launcher dies, this process is handed to another parent
        self._direct = os.getppid() == pid
        self._last_check = 0.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "ParentWatch | None":
        """The watch the launcher asked for, or None (no variable, or not a process id)."""
        text = env.get(PARENT_PID_ENV, "").strip()
        return cls(int(text)) if text.isdigit() and int(text) > 0 else None

    def gone(self) -> bool:
        """True once the launcher has exited (checked at most every ``CHECK_EVERY_S``)."""
        now = time.monotonic()
        if now - self._last_check < CHECK_EVERY_S:
            return False
        self._last_check = now
        if self._direct and os.getppid() != self.pid:
            return True
        return os.name == "posix" and not _exists(self.pid)  # os.kill on Windows would end it


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process is there
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # there, but someone else's
    return True
