"""One job (a dance or an edit) followed from its request to its end: the job state machine.

The backend answers a ``generate`` or ``inpaint`` with ``accepted``, then ``progress``
and ``motion_chunk`` messages, and ends the job with exactly one of ``done``, ``error``
or ``cancelled`` (docs/protocol.md, "Jobs"). ``JobStream.feed`` is the one place that
turns those messages into a job's state: the blocking ``ChoreoClient.generate`` and
the Blender add-on's timer both read the same ``JobStream``, and the client's own
bookkeeping (which jobs are open, so it sends heartbeats and ends silent ones) is
its ``finished``.

Nothing here touches a socket: the client reads messages and feeds each to the stream
of the job it replies to. ``poll()`` asks the client to read what has arrived and
returns the new chunks, without ever blocking, so a UI can call it from a timer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

import zmq

from .errors import ChoreoError, ChoreoTimeout, ProtocolError
from .messages import Message

_LOST = (zmq.ZMQError, ChoreoError, OSError)
"""What sending or reading raises once the backend or the socket is gone."""

if TYPE_CHECKING:  # the client imports this module; a JobStream only calls it back
    from .client import ChoreoClient

JOB_END_TYPES = frozenset({"done", "error", "cancelled"})
"""The messages that end a job: after one of them, the job sends nothing more."""


@dataclass(frozen=True)
class StreamedChunk:
    """One ``motion_chunk``: frames ``[start, start + n)`` of the requested range."""

    job_id: str
    start: int
    rotations: np.ndarray  # (n, 24, 4) float32 quaternions w, x, y, z
    root_translation: np.ndarray  # (n, 3) float32 metres, Z-up
    contacts: np.ndarray  # (n, C) float32 in [0, 1]
    contact_names: tuple[str, ...]
    fps: float  # the job's frame rate: its model's (hello_reply.models[i].fps)

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])

    @classmethod
    def from_message(cls, msg: Message) -> "StreamedChunk":
        """Read a ``motion_chunk`` message, checking that its arrays agree."""
        try:
            rot, root, contacts = (msg.buffers[k] for k in ("rotations", "root_translation", "contacts"))
            start, n = int(msg.content["start"]), int(msg.content["frames"])
            names = tuple(msg.content["contact_names"])
            fps = float(msg.content["fps"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError("bad_message", f"motion_chunk lacks {exc}") from None
        if (rot.shape != (n, 24, 4) or root.shape != (n, 3) or contacts.shape != (n, len(names))
                or start < 0):
            raise ProtocolError("bad_message", f"motion_chunk shapes disagree: rotations {rot.shape}, "
                                f"root_translation {root.shape}, contacts {contacts.shape}, frames {n}")
        if not (fps > 0 and np.isfinite(fps)):
            raise ProtocolError("bad_message", f"motion_chunk fps must be a positive rate, got {fps}")
        return cls(msg.job_id or "", start, rot, root, contacts, names, fps)


@dataclass
class GenerationResult:
    """A whole generated dance, assembled from its chunks."""

    job_id: str
    rotations: np.ndarray  # (T, 24, 4) float32
    root_translation: np.ndarray  # (T, 3) float32
    contacts: np.ndarray  # (T, C) float32
    fps: float
    contact_names: tuple[str, ...]
    summary: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])


def assemble(job_id: str, chunks: list[StreamedChunk], summary: dict[str, Any],
             timings: dict[str, Any] | None = None) -> GenerationResult:
    """Concatenate chunks into one dance, checking they cover every frame exactly once.

    A dance's chunks cover [0, frames); an edit's cover [edit_start, edit_stop) of the motion
    (``summary`` is the ``done`` message's).
    """
    frames = int(summary.get("frames", -1))
    first = int(summary.get("edit_start", 0))
    chunks = sorted(chunks, key=lambda c: c.start)
    expected = first
    for c in chunks:
        if c.start != expected:
            raise ProtocolError("bad_message", f"chunks leave a gap or overlap at frame {expected} "
                                f"(next chunk starts at {c.start})")
        expected += c.num_frames
    if expected - first != frames or not chunks:
        raise ProtocolError("bad_message", f"chunks cover {expected - first} frames, done says {frames}")
    return GenerationResult(
        job_id=job_id,
        rotations=np.concatenate([c.rotations for c in chunks]),
        root_translation=np.concatenate([c.root_translation for c in chunks]),
        contacts=np.concatenate([c.contacts for c in chunks]),
        fps=chunks[0].fps, contact_names=chunks[0].contact_names,
        summary=dict(summary), timings=dict(timings or {}))


def merge_edit(edited: GenerationResult, rotations: np.ndarray, root_translation: np.ndarray,
               contacts: np.ndarray | None) -> GenerationResult:
    """The whole motion after an edit: the sent motion with the returned span written in.

    Frames outside [edit_start, edit_stop) are the sent arrays, untouched (their contacts
    are 0 where none were sent).
    """
    first, stop = int(edited.summary["edit_start"]), int(edited.summary["edit_stop"])
    rot = np.array(rotations, dtype=np.float32)
    root = np.array(root_translation, dtype=np.float32)
    con = (np.zeros((rot.shape[0], edited.contacts.shape[1]), dtype=np.float32) if contacts is None
           else np.array(contacts, dtype=np.float32))
    rot[first:stop], root[first:stop], con[first:stop] = (
        edited.rotations, edited.root_translation, edited.contacts)
    return GenerationResult(edited.job_id, rot, root, con, edited.fps, edited.contact_names,
                            edited.summary, edited.timings)


class JobStream:
    """What this client knows of one job it submitted, kept up to date by ``feed``.

    ``state`` is ``running`` until the job's last message, then ``done``, ``error`` or
    ``cancelled`` (``failure`` then holds the error to raise, ``message`` says it in
    words). ``stage`` goes ``queued`` (until the backend starts on it), ``features``
    (music analysis), ``sampling`` (the model). ``fps`` is the job's frame rate: from
    ``accepted`` (protocol 1.4), else from the first chunk; every chunk must agree.
    """

    def __init__(self, client: "ChoreoClient", msg_id: str, submitted: float, followed: bool) -> None:
        self.client = client
        self.msg_id = msg_id
        self.submitted = submitted  # time.monotonic() when the request left
        self.followed = followed  # its messages go to this stream only, not to poll_once's list
        self.job_id: str | None = None
        self.state = "running"
        self.failure: ChoreoError | None = None
        self.message = ""  # how it ended, in words for a status line ('' while running or done)
        self.stage = "queued"
        self.fraction = 0.0
        self.frames_total: int | None = None
        self.frames_received = 0
        self.fps: float | None = None
        self.accepted: dict[str, Any] = {}
        self.summary: dict[str, Any] = {}
        self.timings: dict[str, Any] = {}
        self.updates = 0  # messages fed so far: a blocking caller waits for this to change
        self._new_chunks: list[StreamedChunk] = []
        self._new_progress: list[tuple[str, float]] = []
        self._cancel_requested = False

    # -- the state machine ------------------------------------------------------------

    def feed(self, msg: Message) -> None:
        """Apply one message that replies to this job's request. Nothing counts after the
        job's end (a late chunk after a client-side ``timeout``, say); types this client
        does not know are skipped, as a newer minor version may add some. A malformed
        message ends the job with its ``bad_message`` and stops it on the backend too."""
        if self.finished:
            return
        self.updates += 1
        self.job_id = msg.job_id or self.job_id
        try:
            try:
                self._apply(msg)
            except (TypeError, ValueError) as exc:  # a field of the wrong type
                raise ProtocolError("bad_message", f"{msg.type}: {exc}") from None
        except ProtocolError as exc:
            self._send_cancel()
            self._end("error", exc, f"{exc.code}: {exc.message}")

    def _apply(self, msg: Message) -> None:
        content = msg.content
        if msg.type == "accepted":
            self.accepted = dict(content)
            self.frames_total = _count(content.get("frames_total"))
            self._agree_on_rate(content.get("fps"), "accepted")
            if self._cancel_requested:
                self._send_cancel()
        elif msg.type == "progress":
            self.stage = str(content.get("stage", self.stage))
            self.fraction = float(content.get("fraction", 0.0))
            self._new_progress.append((self.stage, self.fraction))
            self.frames_total = _count(content.get("frames_total"), self.frames_total)
        elif msg.type == "motion_chunk":
            chunk = StreamedChunk.from_message(msg)
            self._agree_on_rate(chunk.fps, "motion_chunk")
            self.stage = "sampling"
            self.frames_received += chunk.num_frames
            self._new_chunks.append(chunk)
        elif msg.type == "done":
            self.summary = dict(content.get("summary", {}))
            self.timings = dict(content.get("timings", {}))
            self._agree_on_rate(self.summary.get("fps"), "done")
            self.state = "done"
        elif msg.type == "cancelled":
            reason = content.get("reason", "cancel")
            self._end("cancelled", ChoreoError("cancelled", f"job {self.job_id} was cancelled ({reason})",
                                               reply_to=self.msg_id, job_id=self.job_id),
                      f"cancelled ({reason})")
        elif msg.type == "error":
            code, text = str(content.get("code", "internal")), str(content.get("message", ""))
            error = (ChoreoTimeout(text) if code == "timeout"
                     else ChoreoError(code, text, reply_to=self.msg_id, job_id=self.job_id))
            self._end("error", error, f"{code}: {text}")

    def _agree_on_rate(self, fps: Any, where: str) -> None:
        """One job, one frame rate: the first one heard is the job's (None: not said here)."""
        if fps is None:
            return
        try:
            rate = float(fps)
        except (TypeError, ValueError):
            raise ProtocolError("bad_message", f"{where} fps must be a number, got {fps!r:.40}") from None
        if self.fps is None:
            self.fps = rate
        elif rate != self.fps:
            raise ProtocolError("bad_message", f"{where} says {rate:g} fps, the job runs at {self.fps:g}")

    def _end(self, state: str, failure: ChoreoError, words: str) -> None:
        self.state, self.failure, self.message = state, failure, words

    # -- what callers read --------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.state != "running"

    @property
    def progress(self) -> float:
        """0..1 for a progress bar: analysis is the first 10 %, frames the rest."""
        if self.state == "done":
            return 1.0
        if self.frames_total:
            return 0.1 + 0.9 * min(1.0, self.frames_received / self.frames_total)
        return 0.1 * self.fraction if self.stage == "features" else 0.0

    def take_chunks(self) -> list[StreamedChunk]:
        """The chunks that arrived since the last call, in arrival (= frame) order."""
        chunks, self._new_chunks = self._new_chunks, []
        return chunks

    def take_progress(self) -> list[tuple[str, float]]:
        """Every ``progress`` message (stage, fraction) since the last call, in order: a
        caller that reports each one (a progress bar's stage ends) loses none between polls."""
        progress, self._new_progress = self._new_progress, []
        return progress

    def poll(self) -> list[StreamedChunk]:
        """Read whatever has arrived, without blocking; the new chunks.

        Meant for a UI's timer: a backend that cannot be reached any more ends the job
        with an ``error`` rather than raising out of the timer.
        """
        if not self.finished:
            try:
                self.client.pump()
            except _LOST as exc:
                self._end("error", ChoreoError("no_backend", f"lost the backend: {exc}"),
                          f"lost the backend: {exc}")
        return self.take_chunks()

    def cancel(self) -> None:
        """Ask the backend to stop the job; it ends when the backend answers ``cancelled``
        (or ``done``, when the job won the race). Before ``accepted`` names the job, the
        cancel is sent as soon as it does."""
        if self.finished:
            return
        if self.job_id is None:
            self._cancel_requested = True
        else:
            self._send_cancel()

    def _send_cancel(self) -> None:
        if self.job_id is None:
            return
        try:
            self.client.cancel(self.job_id)
        except _LOST as exc:  # a dead socket: nobody is left to stop the job
            self._end("cancelled", ChoreoError("cancelled", f"job {self.job_id} was cancelled "
                                               f"(backend unreachable: {exc})"), "cancelled (backend unreachable)")


def _count(value: Any, default: int | None = None) -> int | None:
    return default if value is None else int(value)
