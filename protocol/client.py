"""A client for the choreo backend: pure Python, pyzmq and numpy (no torch, no bpy).

Three ways to use it:

* the Blender add-on starts a job (``start_generate``, ``start_inpaint``) and calls
  the returned ``JobStream``'s ``poll()`` from a modal timer: it never blocks, returns
  the chunks that have arrived, and the stream says how far the job is and how it
  ended (``protocol.job_stream`` holds the job state machine, once);
* scripts call the blocking ``generate()`` / ``inpaint()``, which follow the same
  ``JobStream`` to its end, and get the whole motion back;
* tests and tools that want the raw messages ``submit_*`` a job and read them with
  ``poll_once()`` or ``wait_for()``.

Whichever way, every read sends the heartbeat ``ping`` when one is due (the server
drops jobs of clients that fall silent, so a crashed Blender does not keep the GPU
busy), and the non-blocking reads end a job the backend has said nothing about for
``timeout`` seconds with an ``error`` ``timeout`` of the client's own making, so a
caller never has to watch the clock.

Requests to a server with a key (its connection file's ``token``) are signed with
it (``protocol.messages.sign``); the key itself never goes on the wire.

A client object is not thread-safe (neither is the ZeroMQ socket under it): use
it from one thread.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import numpy as np
import zmq

from .connection import live_connection_info, runtime_dir, scan_connection_files
from .errors import ChoreoError, ChoreoTimeout, ProtocolError
from .job_stream import GenerationResult, JobStream, StreamedChunk, assemble, merge_edit
from .messages import Message, decode, encode, frames_nbytes, sign

__all__ = ["ChoreoClient", "GenerationResult", "JobStream", "StreamedChunk", "assemble", "merge_edit"]


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
        self._inbox: deque[Message] = deque()  # read, not yet handed out (poll_once, wait_for)
        self._jobs: dict[str, JobStream] = {}  # open jobs: generate/inpaint msg_id -> its stream
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
                        seconds: float | None = None, options: dict[str, Any] | None = None) -> str:
        """Queue a dance for ``audio``; returns the request's msg_id, which every message about
        the job replies to (read them with ``poll_once`` or ``wait_for``)."""
        return self._submit(_generate_request(audio, model, seed, start, seconds, options), False).msg_id

    def start_generate(self, audio: bytes | bytearray | memoryview | str | os.PathLike[str], *,
                       model: str | None = None, seed: int | None = None, start: float = 0.0,
                       seconds: float | None = None, options: dict[str, Any] | None = None) -> JobStream:
        """Queue a dance for ``audio`` (the raw bytes of a sound file, or a path to one) and
        follow it: the job's messages go to the returned stream, not to ``poll_once``.

        None means the server's default (model, random seed). ``options`` are the model's
        (``hello_reply.models[i].options``: ``steps`` and ``guidance`` among them).
        """
        return self._submit(_generate_request(audio, model, seed, start, seconds, options), True)

    def submit_inpaint(self, audio: bytes | bytearray | memoryview | str | os.PathLike[str] | None = None,
                       **request: Any) -> str:
        """``start_inpaint``, read through ``poll_once``/``wait_for``: returns the request's msg_id."""
        return self._submit(_inpaint_request(audio, **request), False).msg_id

    def start_inpaint(self, audio: bytes | bytearray | memoryview | str | os.PathLike[str] | None = None,
                      **request: Any) -> JobStream:
        """Queue an edit of a motion and follow it: regenerate what ``keep`` does not keep.

        Keywords: ``rotations`` (T, 24, 4), ``root_translation`` (T, 3), ``keep`` (T, 25)
        bools, optional ``contacts`` (T, C); the audio as bytes or a path, or ``audio_hash``
        (``done.summary.content_hash`` of an earlier job) while the backend still holds it;
        ``start`` (seconds: where the motion's frame 0 sits in the song); optional
        ``keyframe_frames`` with ``keyframe_rotations`` and ``keyframe_root_translation``
        (poses hit exactly at those frames); ``model``, ``seed`` and ``options`` as for
        ``start_generate``.
        """
        return self._submit(_inpaint_request(audio, **request), True)

    def _submit(self, message: Message, follow: bool) -> JobStream:
        stream = JobStream(self, message.msg_id, time.monotonic(), followed=follow)
        self.send(message)
        self._jobs[message.msg_id] = stream
        return stream

    def cancel(self, job_id: str) -> str:
        """Ask the backend to stop a job; it answers ``cancelled`` (or ``done`` if it won the race)."""
        return self.send(Message("cancel", {"job_id": job_id}, job_id=job_id))

    # -- receiving -------------------------------------------------------------------

    def pump(self) -> None:
        """Read every message that has arrived, without blocking, and send a heartbeat when due.

        Each message about a job goes to that job's ``JobStream`` (its state machine); the
        messages of jobs nobody follows, and the replies to other requests, wait for
        ``poll_once``. Pongs answering the automatic heartbeats are consumed here. A job the
        backend has said nothing about for ``timeout`` seconds (nothing at all heard since it
        was submitted, or for ``timeout`` s since the last message) ends here with an
        ``error`` ``timeout`` made by this client: it replies to the job's request like the
        backend's own ``error`` would, and the job is no longer open.
        """
        self._heartbeat_if_due()
        self._read_available()
        self._time_out_silent_jobs()

    def poll_once(self) -> list[Message]:
        """``pump``, then every message it left for the caller, in arrival order."""
        self.pump()
        out = list(self._inbox)
        self._inbox.clear()
        return out

    def _time_out_silent_jobs(self) -> None:
        now = time.monotonic()
        for msg_id, stream in list(self._jobs.items()):
            silent = now - max(self.last_heard, stream.submitted)
            if silent > self.timeout:
                self._deliver(Message("error", {
                    "code": "timeout", "message": f"the backend at {self.endpoint} has said nothing "
                    f"for {silent:.1f} s (timeout {self.timeout:g} s)"}, reply_to=msg_id,
                    job_id=stream.job_id))

    def _heartbeat_if_due(self) -> None:
        now = time.monotonic()
        if self._jobs and now - self._last_heartbeat >= self.heartbeat_interval:
            self._last_heartbeat = now
            self._heartbeats.add(self.send(Message("ping")))

    def _read_available(self) -> bool:
        """Read and deliver what has arrived; True when anything did."""
        arrived = False
        while True:
            try:
                frames = self._socket.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return arrived
            arrived = True
            self.last_heard = time.monotonic()
            try:
                msg = decode(frames, self.max_message_bytes)
            except ProtocolError as exc:  # shown to the caller rather than raised mid-poll
                msg = Message("error", {"code": exc.code, "message": f"from backend: {exc.message}"})
            if msg.type == "pong" and msg.reply_to in self._heartbeats:
                self._heartbeats.discard(msg.reply_to)
                self.last_pong = msg.content
                continue
            self._deliver(msg)

    def _deliver(self, msg: Message) -> None:
        """Hand a message to its job's stream (which may end the job), or to the inbox."""
        stream = self._jobs.get(msg.reply_to or "")
        if stream is not None:
            stream.feed(msg)
            if stream.finished:
                del self._jobs[stream.msg_id]
            if stream.followed:
                return
        self._inbox.append(msg)

    def _wait(self, ready: Callable[[], bool], timeout: float | None) -> None:
        """Block until ``ready()``, reading and heartbeating meanwhile.

        Raises ``ChoreoTimeout`` when the backend says nothing for ``timeout`` seconds.
        """
        timeout = self.timeout if timeout is None else timeout
        started = time.monotonic()
        while not ready():
            self._heartbeat_if_due()
            if self._read_available():
                continue
            left = timeout - (time.monotonic() - max(self.last_heard, started))
            if left <= 0:
                raise ChoreoTimeout(f"the backend at {self.endpoint} has not answered for {timeout:.1f} s")
            wait = min(left, self.heartbeat_interval if self._jobs else left)
            self._socket.poll(max(1, int(wait * 1000)), zmq.POLLIN)

    def wait_for(self, match: Callable[[Message], bool], timeout: float | None = None) -> Message:
        """Block until a message ``match`` accepts arrives; others stay queued for ``poll_once``.

        Raises ``ChoreoTimeout`` when the backend says nothing for ``timeout`` seconds.
        """
        def take() -> bool:
            for i, msg in enumerate(self._inbox):
                if match(msg):
                    found.append(msg)
                    del self._inbox[i]
                    return True
            return False

        found: list[Message] = []
        self._wait(take, timeout)
        return found[0]

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
        """The backend's capabilities (models and their frame rates, joint names, limits, stats)."""
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
                 seconds: float | None = None, options: dict[str, Any] | None = None,
                 on_chunk: Callable[[StreamedChunk], None] | None = None,
                 on_progress: Callable[[str, float], None] | None = None,
                 timeout: float | None = None) -> GenerationResult:
        """Generate a dance and wait for all of it.

        Raises ``ChoreoError`` with the backend's code on an ``error`` reply (code
        ``"cancelled"`` if the job was cancelled) and ``ChoreoTimeout`` if the
        backend stops answering. Ctrl-C cancels the job on the backend.
        """
        stream = self.start_generate(audio, model=model, seed=seed, start=start, seconds=seconds,
                                     options=options)
        return assemble(stream.job_id or "", self._follow(stream, on_chunk, on_progress, timeout),
                        stream.summary, stream.timings)

    def inpaint(self, audio: bytes | bytearray | memoryview | str | os.PathLike[str] | None = None, *,
                rotations: np.ndarray, root_translation: np.ndarray, keep: np.ndarray,
                contacts: np.ndarray | None = None,
                on_chunk: Callable[[StreamedChunk], None] | None = None,
                on_progress: Callable[[str, float], None] | None = None,
                timeout: float | None = None, **request: Any) -> GenerationResult:
        """Edit a motion and wait: the whole motion comes back, the kept parts as sent.

        ``request`` takes the other arguments of ``start_inpaint``. Errors as ``generate``.
        """
        stream = self.start_inpaint(audio, rotations=rotations, root_translation=root_translation,
                                    keep=keep, contacts=contacts, **request)
        chunks = self._follow(stream, on_chunk, on_progress, timeout)
        edited = assemble(stream.job_id or "", chunks, stream.summary, stream.timings)
        return merge_edit(edited, rotations, root_translation, contacts)

    def _follow(self, stream: JobStream, on_chunk: Callable[[StreamedChunk], None] | None,
                on_progress: Callable[[str, float], None] | None,
                timeout: float | None) -> list[StreamedChunk]:
        """Wait for a followed job to end; its chunks, or the error it ended with raised."""
        chunks: list[StreamedChunk] = []
        try:
            while True:
                for stage, fraction in stream.take_progress():
                    if on_progress is not None:
                        on_progress(stage, fraction)
                for chunk in stream.take_chunks():
                    chunks.append(chunk)
                    if on_chunk is not None:
                        on_chunk(chunk)
                if stream.finished:
                    break
                seen = stream.updates
                self._wait(lambda: stream.updates != seen, timeout)
        except ChoreoTimeout:
            self._jobs.pop(stream.msg_id, None)  # over for this client: pump must not end it again
            raise
        except KeyboardInterrupt:
            if not stream.finished and stream.job_id:
                self.cancel(stream.job_id)
            raise
        if stream.failure is not None:
            raise stream.failure
        return chunks

    @property
    def open_jobs(self) -> dict[str, str | None]:
        """Jobs this client submitted that have not ended: generate/inpaint msg_id -> job_id."""
        return {msg_id: stream.job_id for msg_id, stream in self._jobs.items()}

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._socket.close()

    def __enter__(self) -> "ChoreoClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _audio_buffer(audio: bytes | bytearray | memoryview | str | os.PathLike[str]) -> np.ndarray:
    """The ``audio`` buffer: the raw bytes of a sound file, or of the file at a path."""
    if isinstance(audio, (str, os.PathLike)):
        audio = Path(audio).read_bytes()
    return np.frombuffer(audio, dtype=np.uint8)


def _generate_request(audio: bytes | bytearray | memoryview | str | os.PathLike[str], model: str | None,
                      seed: int | None, start: float, seconds: float | None,
                      options: dict[str, Any] | None) -> Message:
    content = {"model": model, "seed": seed, "start": start, "seconds": seconds, "options": options or {}}
    return Message("generate", content, buffers={"audio": _audio_buffer(audio)})


def _inpaint_request(audio: bytes | bytearray | memoryview | str | os.PathLike[str] | None = None, *,
                     rotations: np.ndarray, root_translation: np.ndarray, keep: np.ndarray,
                     contacts: np.ndarray | None = None, audio_hash: str | None = None,
                     keyframe_frames: np.ndarray | None = None,
                     keyframe_rotations: np.ndarray | None = None,
                     keyframe_root_translation: np.ndarray | None = None,
                     model: str | None = None, seed: int | None = None, start: float = 0.0,
                     options: dict[str, Any] | None = None) -> Message:
    """An ``inpaint`` request. The audio is the song's bytes (or a path), or ``audio_hash``
    (``done.summary.content_hash`` of an earlier job) while the backend still holds it. The
    motion's frame 0 sits at ``start`` seconds in the song. Keyframe poses, if given, are hit
    exactly at their frames."""
    buffers: dict[str, Any] = {"rotations": np.asarray(rotations, dtype=np.float32),
                               "root_translation": np.asarray(root_translation, dtype=np.float32),
                               "keep": np.asarray(keep, dtype=bool)}
    if audio is not None:
        buffers["audio"] = _audio_buffer(audio)
    if contacts is not None:
        buffers["contacts"] = np.asarray(contacts, dtype=np.float32)
    if keyframe_frames is not None:
        if keyframe_rotations is None or keyframe_root_translation is None:
            raise ValueError("keyframe_frames needs keyframe_rotations and keyframe_root_translation")
        buffers["keyframe_frames"] = np.asarray(keyframe_frames, dtype=np.int32)
        buffers["keyframe_rotations"] = np.asarray(keyframe_rotations, dtype=np.float32)
        buffers["keyframe_root_translation"] = np.asarray(keyframe_root_translation, dtype=np.float32)
    content = {"model": model, "seed": seed, "start": start, "audio_hash": audio_hash,
               "options": options or {}}
    return Message("inpaint", content, buffers=buffers)
