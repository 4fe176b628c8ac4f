"""A client for the choreo backend: pure Python, pyzmq and numpy (no torch, no bpy).

Two ways to use it:

* the Blender add-on submits a job and calls ``poll_once()`` from a modal timer:
  it never blocks, returns whatever messages have arrived, and sends the
  heartbeat ``ping`` when one is due (the server drops jobs of clients that fall
  silent, so a crashed Blender does not keep the GPU busy). When the backend has
  said nothing for ``timeout`` seconds, it ends each open job with an ``error``
  ``timeout`` of its own making, so a caller never has to watch the clock;
* scripts call the blocking ``generate()`` and get the whole dance back.

Requests to a server with a key (its connection file's ``token``) are signed with
it (``protocol.messages.sign``); the key itself never goes on the wire.

A client object is not thread-safe (neither is the ZeroMQ socket under it): use
it from one thread.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import zmq

from protocol.connection import live_connection_info, runtime_dir, scan_connection_files
from protocol.errors import ChoreoError, ChoreoTimeout, ProtocolError
from protocol.messages import Message, decode, encode, frames_nbytes, sign

JOB_END_TYPES = frozenset({"done", "error", "cancelled"})


@dataclass(frozen=True)
class StreamedChunk:
    """One ``motion_chunk``: frames ``[start, start + n)`` of the requested range."""

    job_id: str
    start: int
    rotations: np.ndarray  # (n, 24, 4) float32 quaternions w, x, y, z
    root_translation: np.ndarray  # (n, 3) float32 metres, Z-up
    contacts: np.ndarray  # (n, C) float32 in [0, 1]
    contact_names: tuple[str, ...]
    fps: float

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


def assemble(job_id: str, chunks: list[StreamedChunk], done: Message) -> GenerationResult:
    """Concatenate chunks into one dance, checking they cover every frame exactly once.

    A dance's chunks cover [0, frames); an edit's cover [edit_start, edit_stop) of the motion.
    """
    summary = done.content.get("summary", {})
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
        summary=dict(summary), timings=dict(done.content.get("timings", {})))


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


class ChoreoClient:
    """One DEALER connection to a choreo backend.

    ``timeout`` (seconds) bounds how long blocking calls wait for the backend to
    say anything at all, and how long ``poll_once`` lets a job go without a word
    before it ends the job with ``timeout``; while a job runs the backend answers
    heartbeats, so a long dance does not time out, a dead backend does.
    ``token`` is the server's key: every request is signed with it.
    """

    def __init__(self, endpoint: str, token: str | None = None, timeout: float = 30.0,
                 heartbeat_interval: float = 2.0, max_message_bytes: int = 1 << 30,
                 context: zmq.Context | None = None) -> None:
        self.endpoint = endpoint
        self.token = token or None
        self.timeout = timeout
        self.heartbeat_interval = heartbeat_interval
        self.max_message_bytes = max_message_bytes
        self.server_limits: dict[str, Any] = {}
        self.last_pong: dict[str, Any] = {}
        self._socket = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 1000)  # let a last shutdown/cancel leave on close
        self._socket.connect(endpoint)
        self._inbox: deque[Message] = deque()
        self._open_jobs: dict[str, str | None] = {}  # generate msg_id -> job_id once accepted
        self._submitted: dict[str, float] = {}  # generate msg_id -> when it was sent
        self._heartbeats: set[str] = set()
        self._last_heartbeat = 0.0
        # time.monotonic() when the backend last said anything, pongs included: a
        # poll-driven caller (the add-on) compares it with ``timeout`` to spot a dead backend
        self.last_heard = time.monotonic()
        self._closed = False

    @classmethod
    def from_connection_file(cls, path: str | os.PathLike[str] | None = None,
                             **kwargs: Any) -> "ChoreoClient":
        """Connect to the backend a connection file describes (default: the newest one whose
        backend still runs).

        Raises ``ChoreoError`` ``no_backend`` when there is none, naming any stale file
        (left by a killed backend) it skipped and removed.
        """
        if path is None:
            found, stale = scan_connection_files()
            if not found:
                why = (f"removed stale connection file(s) {', '.join(map(str, stale))}: their backend "
                       "is not running" if stale else f"no connection file in {runtime_dir()}")
                raise ChoreoError("no_backend", f"no running backend ({why}); start one with "
                                  "`choreo serve`")
            path = found[0]
        info = live_connection_info(path)
        return cls(info["endpoint"], token=info.get("token"), **kwargs)

    # -- sending ---------------------------------------------------------------------

    def send(self, message: Message) -> str:
        """Send a request; returns its msg_id (replies carry it as ``reply_to``)."""
        if self._closed:
            raise ChoreoError("closed", "this client is closed")
        frames = encode(message)
        if self.token is not None:
            frames = sign(frames, self.token)
        limit = self.server_limits.get("max_message_bytes")
        if limit is not None and frames_nbytes(frames) > limit:
            raise ProtocolError("message_too_large", f"{message.type} is {frames_nbytes(frames)} "
                                f"bytes, the backend accepts at most {limit}")
        try:
            self._socket.send_multipart(frames, copy=False, flags=zmq.NOBLOCK)
        except zmq.Again:
            raise ChoreoTimeout(f"cannot send to {self.endpoint}: outgoing queue full") from None
        return message.msg_id

    def submit_generate(self, audio: bytes | bytearray | memoryview | str | os.PathLike[str], *,
                        model: str | None = None, seed: int | None = None, start: float = 0.0,
                        seconds: float | None = None, guidance: float | None = None,
                        steps: int | None = None, options: dict[str, Any] | None = None) -> str:
        """Queue a dance for ``audio`` (the raw bytes of a sound file, or a path to one).

        Returns the request's msg_id: every message about this job replies to it.
        None means the server's default (model, random seed, model's steps/guidance).
        """
        if isinstance(audio, (str, os.PathLike)):
            audio = Path(audio).read_bytes()
        content = {"model": model, "seed": seed, "start": start, "seconds": seconds,
                   "guidance": guidance, "steps": steps, "options": options or {}}
        msg = Message("generate", content, buffers={"audio": np.frombuffer(audio, dtype=np.uint8)})
        return self._submit(msg)

    def _submit(self, message: Message) -> str:
        msg_id = self.send(message)
        self._open_jobs[msg_id] = None
        self._submitted[msg_id] = time.monotonic()
        return msg_id

    def cancel(self, job_id: str) -> str:
        """Ask the backend to stop a job; it answers ``cancelled`` (or ``done`` if it won the race)."""
        return self.send(Message("cancel", {"job_id": job_id}, job_id=job_id))

    # -- receiving -------------------------------------------------------------------

    def poll_once(self) -> list[Message]:
        """Every message that has arrived, without blocking; sends a heartbeat when due.

        Pongs answering the automatic heartbeats are consumed here (they only prove
        the backend is alive); everything else is returned in arrival order. A job
        the backend has said nothing about for ``timeout`` seconds (nothing at all
        heard since it was submitted, or for ``timeout`` s since the last message)
        ends here with an ``error`` ``timeout`` made by this client: it replies to the
        job's request like the backend's own ``error`` would, and the job leaves
        ``open_jobs``.
        """
        self._heartbeat_if_due()
        out = list(self._inbox)
        self._inbox.clear()
        out.extend(self._read_available())
        out.extend(self._time_out_silent_jobs())
        return out

    def _time_out_silent_jobs(self) -> list[Message]:
        now = time.monotonic()
        ended = []
        for msg_id, job_id in list(self._open_jobs.items()):
            silent = now - max(self.last_heard, self._submitted.get(msg_id, now))
            if silent > self.timeout:
                self._forget(msg_id)
                ended.append(Message("error", {
                    "code": "timeout", "message": f"the backend at {self.endpoint} has said nothing "
                    f"for {silent:.1f} s (timeout {self.timeout:g} s)"}, reply_to=msg_id, job_id=job_id))
        return ended

    def _forget(self, msg_id: str) -> None:
        self._open_jobs.pop(msg_id, None)
        self._submitted.pop(msg_id, None)

    def _heartbeat_if_due(self) -> None:
        now = time.monotonic()
        if self._open_jobs and now - self._last_heartbeat >= self.heartbeat_interval:
            self._last_heartbeat = now
            self._heartbeats.add(self.send(Message("ping")))

    def _read_available(self) -> list[Message]:
        out = []
        while True:
            try:
                frames = self._socket.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return out
            self.last_heard = time.monotonic()
            try:
                msg = decode(frames, self.max_message_bytes)
            except ProtocolError as exc:  # shown to the caller rather than raised mid-poll
                msg = Message("error", {"code": exc.code, "message": f"from backend: {exc.message}"})
            if msg.type == "pong" and msg.reply_to in self._heartbeats:
                self._heartbeats.discard(msg.reply_to)
                self.last_pong = msg.content
                continue
            if msg.reply_to in self._open_jobs:
                if msg.type == "accepted":
                    self._open_jobs[msg.reply_to] = msg.job_id
                elif msg.type in JOB_END_TYPES:
                    self._forget(msg.reply_to)
            out.append(msg)

    def wait_for(self, match: Callable[[Message], bool], timeout: float | None = None) -> Message:
        """Block until a message ``match`` accepts arrives; others stay queued for ``poll_once``.

        Raises ``ChoreoTimeout`` when the backend says nothing for ``timeout`` seconds.
        """
        timeout = self.timeout if timeout is None else timeout
        started = time.monotonic()
        while True:
            for i, msg in enumerate(self._inbox):
                if match(msg):
                    del self._inbox[i]
                    return msg
            self._heartbeat_if_due()
            arrived = self._read_available()
            self._inbox.extend(arrived)
            if arrived:
                continue
            left = timeout - (time.monotonic() - max(self.last_heard, started))
            if left <= 0:
                raise ChoreoTimeout(f"the backend at {self.endpoint} has not answered for {timeout:.1f} s")
            wait = min(left, self.heartbeat_interval if self._open_jobs else left)
            self._socket.poll(max(1, int(wait * 1000)), zmq.POLLIN)

    def request(self, message: Message, timeout: float | None = None) -> Message:
        """Send a request and return its reply; an ``error`` reply raises ``ChoreoError``."""
        msg_id = self.send(message)
        answer = self.wait_for(lambda m: m.reply_to == msg_id, timeout)
        if answer.type == "error":
            raise ChoreoError(answer.content.get("code", "internal"), answer.content.get("message", ""),
                              reply_to=msg_id, job_id=answer.job_id)
        return answer

    # -- blocking helpers ------------------------------------------------------------

    def hello(self, timeout: float | None = None) -> dict[str, Any]:
        """The backend's capabilities (models, fps, joint names, limits, stats)."""
        content = self.request(Message("hello"), timeout).content
        self.server_limits = dict(content.get("limits", {}))
        client_timeout = self.server_limits.get("client_timeout_s")
        if isinstance(client_timeout, (int, float)) and client_timeout > 0:
            self.heartbeat_interval = min(self.heartbeat_interval, client_timeout / 4)
        return content

    def ping(self, timeout: float | None = None) -> dict[str, Any]:
        """``pong`` content: the server's time and job statistics."""
        return self.request(Message("ping"), timeout).content

    def shutdown(self, timeout: float | None = None) -> dict[str, Any]:
        """Ask the backend to stop (cancels its jobs); needs the token if it has one."""
        return self.request(Message("shutdown"), timeout).content

    def generate(self, audio: bytes | bytearray | memoryview | str | os.PathLike[str], *,
                 model: str | None = None, seed: int | None = None, start: float = 0.0,
                 seconds: float | None = None, guidance: float | None = None,
                 steps: int | None = None, options: dict[str, Any] | None = None,
                 on_chunk: Callable[[StreamedChunk], None] | None = None,
                 on_progress: Callable[[str, float], None] | None = None,
                 timeout: float | None = None) -> GenerationResult:
        """Generate a dance and wait for all of it.

        Raises ``ChoreoError`` with the backend's code on an ``error`` reply (code
        ``"cancelled"`` if the job was cancelled) and ``ChoreoTimeout`` if the
        backend stops answering. Ctrl-C cancels the job on the backend.
        """
        msg_id = self.submit_generate(audio, model=model, seed=seed, start=start, seconds=seconds,
                                      guidance=guidance, steps=steps, options=options)
        return assemble(*self._collect(msg_id, on_chunk, on_progress, timeout))

    def submit_inpaint(self, audio: bytes | bytearray | memoryview | str | os.PathLike[str] | None = None,
                       *, rotations: np.ndarray, root_translation: np.ndarray, keep: np.ndarray,
                       contacts: np.ndarray | None = None, audio_hash: str | None = None,
                       keyframe_frames: np.ndarray | None = None,
                       keyframe_rotations: np.ndarray | None = None,
                       keyframe_root_translation: np.ndarray | None = None,
                       model: str | None = None, seed: int | None = None, start: float = 0.0,
                       guidance: float | None = None, steps: int | None = None,
                       options: dict[str, Any] | None = None) -> str:
        """Queue an edit of a motion: regenerate what ``keep`` (frames x 25 bools) does not keep.

        The audio is the song's bytes (or a path), or ``audio_hash`` (``done.summary.
        content_hash`` of an earlier job) while the backend still holds it. The motion's
        frame 0 sits at ``start`` seconds in the song. Keyframe poses, if given, are hit
        exactly at their frames. Returns the request's msg_id.
        """
        buffers: dict[str, Any] = {"rotations": np.asarray(rotations, dtype=np.float32),
                                   "root_translation": np.asarray(root_translation, dtype=np.float32),
                                   "keep": np.asarray(keep, dtype=bool)}
        if audio is not None:
            if isinstance(audio, (str, os.PathLike)):
                audio = Path(audio).read_bytes()
            buffers["audio"] = np.frombuffer(audio, dtype=np.uint8)
        if contacts is not None:
            buffers["contacts"] = np.asarray(contacts, dtype=np.float32)
        if keyframe_frames is not None:
            if keyframe_rotations is None or keyframe_root_translation is None:
                raise ValueError("keyframe_frames needs keyframe_rotations and keyframe_root_translation")
            buffers["keyframe_frames"] = np.asarray(keyframe_frames, dtype=np.int32)
            buffers["keyframe_rotations"] = np.asarray(keyframe_rotations, dtype=np.float32)
            buffers["keyframe_root_translation"] = np.asarray(keyframe_root_translation, dtype=np.float32)
        content = {"model": model, "seed": seed, "start": start, "audio_hash": audio_hash,
                   "guidance": guidance, "steps": steps, "options": options or {}}
        return self._submit(Message("inpaint", content, buffers=buffers))

    def inpaint(self, audio: bytes | bytearray | memoryview | str | os.PathLike[str] | None = None, *,
                rotations: np.ndarray, root_translation: np.ndarray, keep: np.ndarray,
                contacts: np.ndarray | None = None,
                on_chunk: Callable[[StreamedChunk], None] | None = None,
                on_progress: Callable[[str, float], None] | None = None,
                timeout: float | None = None, **request: Any) -> GenerationResult:
        """Edit a motion and wait: the whole motion comes back, the kept parts as sent.

        ``request`` takes the other arguments of ``submit_inpaint``. Errors as ``generate``.
        """
        msg_id = self.submit_inpaint(audio, rotations=rotations, root_translation=root_translation,
                                     keep=keep, contacts=contacts, **request)
        edited = assemble(*self._collect(msg_id, on_chunk, on_progress, timeout))
        return merge_edit(edited, rotations, root_translation, contacts)

    def _collect(self, msg_id: str, on_chunk: Callable[[StreamedChunk], None] | None,
                 on_progress: Callable[[str, float], None] | None,
                 timeout: float | None) -> tuple[str, list[StreamedChunk], Message]:
        """Wait for a job's messages until ``done``: (job_id, its chunks, the ``done``)."""
        job_id = ""
        chunks: list[StreamedChunk] = []
        try:
            while True:
                msg = self.wait_for(lambda m: m.reply_to == msg_id, timeout)
                job_id = msg.job_id or job_id
                if msg.type == "progress" and on_progress is not None:
                    on_progress(str(msg.content.get("stage")), float(msg.content.get("fraction", 0.0)))
                elif msg.type == "motion_chunk":
                    chunk = StreamedChunk.from_message(msg)
                    chunks.append(chunk)
                    if on_chunk is not None:
                        on_chunk(chunk)
                elif msg.type == "done":
                    return job_id, chunks, msg
                elif msg.type == "error":
                    raise ChoreoError(msg.content.get("code", "internal"), msg.content.get("message", ""),
                                      reply_to=msg_id, job_id=msg.job_id)
                elif msg.type == "cancelled":
                    raise ChoreoError("cancelled", f"job {job_id} was cancelled "
                                      f"({msg.content.get('reason', 'cancel')})", reply_to=msg_id,
                                      job_id=job_id)
        except ChoreoTimeout:
            self._forget(msg_id)  # over for this client: poll_once must not report it again
            raise
        except KeyboardInterrupt:
            if msg_id in self._open_jobs and job_id:
                self.cancel(job_id)
            raise

    @property
    def open_jobs(self) -> dict[str, str | None]:
        """Jobs this client submitted that have not ended: generate/inpaint msg_id -> job_id."""
        return dict(self._open_jobs)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._socket.close()

    def __enter__(self) -> "ChoreoClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
