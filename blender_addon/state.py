"""The add-on's process-wide state: one backend link, at most one running job.

Kept apart from the operators so the panel, the operators and the exit handler see
the same objects, and so a reload of the add-on stops the backend it started.
"""

from __future__ import annotations

import threading
from typing import Any

from .core.backend_link import BackendLink, BackendInfo, LinkError, LinkSettings

LINK = BackendLink()
JOB: Any = None  # the running GenerateJob or RegenerateJob
CANCEL_REQUESTED = False


class Connector:
    """Connects in a worker thread, so starting a local backend never freezes the UI.

    The thread only waits on a process and a socket (no bpy calls); the modal
    operator that started it reads ``done``/``error`` on its timer.
    """

    def __init__(self, settings: LinkSettings) -> None:
        self.info: BackendInfo | None = None
        self.error = ""
        self.stop = False
        self._thread = threading.Thread(target=self._run, args=(settings,), daemon=True)
        self._thread.start()

    def _run(self, settings: LinkSettings) -> None:
        try:
            self.info = LINK.connect(settings, should_stop=lambda: self.stop)
        except LinkError as exc:
            self.error = str(exc)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()
