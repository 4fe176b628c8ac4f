"""Stop the backend Blender started when Blender quits (disabling the add-on does too).

The stop is a SIGTERM, so the backend cancels its jobs and removes its connection
file cleanly; a backend we only connected to is left running.
"""

from __future__ import annotations

import atexit

from . import state


def _stop() -> None:
    state.LINK.disconnect(stop_local=True)


def register() -> None:
    atexit.register(_stop)


def unregister() -> None:
    atexit.unregister(_stop)
