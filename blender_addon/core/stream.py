"""One generation or regeneration job as the add-on sees it: submit, then ``poll_once()``.

Headless Blender never fires timers, so nothing here waits: the UI's modal operator
calls ``poll_once()`` on each timer tick, a script or test calls it in a loop, and
either way each call returns at once with whatever chunks have arrived. Chunks are
handed over in frame order as they come, so keys appear while the dance streams in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from protocol.client import ChoreoClient, StreamedChunk
from protocol.errors import ProtocolError


@dataclass
class StreamUpdate:
    """What one ``poll_once`` brought: new chunks, and the job's state after them."""

    chunks: list[StreamedChunk] = field(default_factory=list)
    state: str = "running"  # running | done | error | cancelled
    message: str = ""


class MotionStream:
    """Follows one submitted job (``generate`` or ``inpaint``) to its end."""

    def __init__(self, client: ChoreoClient, msg_id: str, silence_timeout: float = 60.0) -> None:
        self.client = client
        self.msg_id = msg_id
        self.job_id: str | None = None
        self.state = "running"
        self.message = ""
        self.frames_total: int | None = None
        self.frames_received = 0
        self.fraction = 0.0
        self.stage = "queued"
        self.accepted: dict[str, Any] = {}
        self.summary: dict[str, Any] = {}
        self.timings: dict[str, Any] = {}
        self.silence_timeout = silence_timeout
        self._last_heard = time.monotonic()
        self._cancel_requested = False

    @property
    def finished(self) -> bool:
        return self.state != "running"

    @property
    def progress(self) -> float:
        """0..1 for the progress bar: analysis is the first 10 %, frames the rest."""
        if self.state == "done":
            return 1.0
        if self.frames_total:
            return 0.1 + 0.9 * min(1.0, self.frames_received / self.frames_total)
        return 0.1 * self.fraction if self.stage == "features" else 0.0

    def poll_once(self) -> StreamUpdate:
        """Messages that have arrived, turned into chunks and a state; never blocks."""
        update = StreamUpdate(state=self.state)
        if self.finished:
            return update
        try:
            messages = self.client.poll_once()
        except Exception as exc:  # a dead socket must end the job, not the UI
            return self._end(update, "error", f"lost the backend: {exc}")
        for msg in messages:
            if msg.reply_to != self.msg_id:
                continue
            self._last_heard = time.monotonic()
            if msg.type == "accepted":
                self.job_id = msg.job_id
                self.accepted = dict(msg.content)
                total = msg.content.get("frames_total")
                self.frames_total = int(total) if total is not None else None
                if self._cancel_requested:
                    self.client.cancel(self.job_id or "")
            elif msg.type == "progress":
                self.stage = str(msg.content.get("stage", self.stage))
                self.fraction = float(msg.content.get("fraction", 0.0))
                if msg.content.get("frames_total") is not None:
                    self.frames_total = int(msg.content["frames_total"])
            elif msg.type == "motion_chunk":
                try:
                    chunk = StreamedChunk.from_message(msg)
                except ProtocolError as exc:
                    self.cancel()
                    return self._end(update, "error", exc.message)
                self.stage = "sampling"
                self.frames_received += chunk.num_frames
                update.chunks.append(chunk)
            elif msg.type == "done":
                self.summary = dict(msg.content.get("summary", {}))
                self.timings = dict(msg.content.get("timings", {}))
                return self._end(update, "done", "")
            elif msg.type == "cancelled":
                return self._end(update, "cancelled", f"cancelled ({msg.content.get('reason', 'cancel')})")
            elif msg.type == "error":
                code = msg.content.get("code", "error")
                return self._end(update, "error", f"{code}: {msg.content.get('message', '')}")
        heard = max(self._last_heard, self.client.last_heard)  # heartbeat pongs count too
        if time.monotonic() - heard > self.silence_timeout:
            return self._end(update, "error", f"the backend has sent nothing for {self.silence_timeout:.0f} s")
        return update

    def _end(self, update: StreamUpdate, state: str, message: str) -> StreamUpdate:
        self.state, self.message = state, message
        update.state, update.message = state, message
        return update

    def cancel(self) -> None:
        """Ask the backend to stop; the stream ends when it answers ``cancelled`` (or ``done``)."""
        if not self.finished and self.job_id is not None:
            try:
                self.client.cancel(self.job_id)
            except Exception:
                self.state, self.message = "cancelled", "cancelled (backend unreachable)"
        elif not self.finished:
            self._cancel_requested = True  # sent as soon as ``accepted`` names the job
