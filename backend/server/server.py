"""The backend server: a ROUTER socket, an I/O loop, one worker thread.

Threads and who owns what:

* the I/O thread (the one that calls ``run``) owns the ROUTER socket. It reads
  requests, answers the quick ones (hello, ping, cancel, shutdown) itself,
  checks ``generate`` and ``inpaint`` requests and queues them, forwards the worker's messages,
  and drops the jobs of clients that disconnected or fell silent;
* the worker thread runs queued jobs one at a time (see ``worker.py``) and hands
  its messages to the I/O thread over an inproc PAIR socket.

Every server has a key (random unless it is given one, none only when started
``open``), written only into its 0600 connection file; a request must be signed
with it (or carry it), else it is answered ``unauthorized``.

A client that disconnects is noticed when it happens: a socket monitor reports each
TCP connection's end, and the jobs of the client on that connection are dropped at
once, so their queue places are free for others. Sending also uses ROUTER_MANDATORY,
so a message to a client that has gone raises EHOSTUNREACH instead of vanishing.
Clients that stay connected but silent (a hung process) are caught by the heartbeat
timeout instead.
"""

from __future__ import annotations

import importlib.metadata
import logging
import signal
import threading
import time
import tomllib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from backend.motion.skeleton import JOINT_NAMES
from backend.server.config import ServerConfig, ServerConfigError, generate_token
from backend.server.jobs import Job, JobBoard, Stats, client_timeout_error
from backend.server.parent_watch import ParentWatch
from backend.server.validation import audio_bytes, parse_generate, parse_inpaint
from protocol.connection import default_connection_file, write_connection_file
from protocol.errors import ChoreoError, ProtocolError
from protocol.messages import (
    MAX_BUFFERS, PROTOCOL_NAME, PROTOCOL_VERSION, REQUEST_TYPES, RESERVED_TYPES, SIGNATURE_SCHEME, Message,
    decode, encode, error, new_id, peek_msg_id, reply, same_key, verify_signature,
)

log = logging.getLogger("choreo.server")

MAX_BACKLOG = 5000
"""Messages held for a client whose socket buffer is full before it counts as gone."""
POLL_MS = 100
"""How long the I/O loop sleeps when nothing happens (bounds signal and timeout latency)."""
SIGNATURE_HISTORY = 65536
"""Signatures remembered to refuse a replayed request (as Jupyter keeps a digest history)."""


def backend_version() -> str:
    """The installed package's version, or pyproject's when running from a checkout."""
    try:
        return importlib.metadata.version("choreo")
    except importlib.metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


def check_frame_rate(generator: Any, feature_fps: int) -> None:
    """Refuse, when it loads, a model this backend cannot feed.

    Each model makes motion at its own rate (``generator.fps``, from its checkpoint or
    motion library; ``hello`` lists it, every job's messages carry it), and it hears one
    row of music features per frame. The music analysis runs at ``feature_fps`` only, so
    a model at any other rate would dance too fast or too slow: it is refused here, at
    start-up, rather than on its first job.
    """
    if generator.fps != feature_fps:
        raise ChoreoError("bad_config", f"model {generator.name} makes motion at {generator.fps} fps, "
                          f"but this backend analyses music at {feature_fps} fps only")


class Server:
    """A choreo backend. ``run()`` serves in the foreground until shutdown or a signal."""

    def __init__(self, config: ServerConfig) -> None:
        config.validate()
        self.config = config
        self.stats = Stats()
        self.board = JobBoard(config.max_queue)
        self.generators: dict[str, Any] = {}
        self.default_model = ""
        self.device = ""
        self.endpoint = ""
        self.connection_file: Path | None = None
        # the key: never logged, never on a command line, only in the connection file
        self.key: str | None = None if config.open else (config.token or generate_token())
        self._signatures: set[str] = set()
        self._signature_order: deque[str] = deque()
        self._fd_of: dict[bytes, int] = {}  # client identity -> its connection's file descriptor
        self._on_fd: dict[int, set[bytes]] = {}
        self._stop_reason: str | None = None
        self._shutdown_request: tuple[bytes, Message] | None = None
        self._last_seen: dict[bytes, float] = {}
        self._backlog: dict[bytes, deque[tuple[str, list[Any]]]] = {}
        self._last_client_check = 0.0
        self.cache: Any = None
        self.num_frames: Any = None
        self.music_warm_up: Any = None  # the click track's analysis, running in a thread
        self._parent = ParentWatch.from_env()

    # -- life cycle ------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        """Ask the loop to shut down cleanly (safe from signal handlers and other threads)."""
        if self._stop_reason is None:
            self._stop_reason = reason

    def _load(self) -> None:
        """Load the models, the music cache, and warm everything up."""
        from backend.models.registry import DEFAULT_MODEL, available_models, load_generator, resolve_device
        from backend.music import features
        from backend.music.cache import MusicCache
        from backend.server.warmup import warm_music

        # librosa's first call (imports, numba kernels) needs no torch: it runs beside the
        # loading and the serving; the worker finishes the warm-up before its first job
        self.music_warm_up = (ThreadPoolExecutor(1, thread_name_prefix="choreo-warm-music").submit(
            warm_music, MusicCache(max_entries=1).analyse_bytes) if self.config.warm_up else None)
        self.device = resolve_device(self.config.device)
        for name in self.config.models or tuple(available_models()) or (DEFAULT_MODEL,):
            t0 = time.monotonic()
            self.generators[name] = load_generator(name, self.device, self.config.checkpoints.get(name))
            check_frame_rate(self.generators[name], features.FEATURE_FPS)
            log.info("loaded model %s on %s in %.1f s", name, self.device, time.monotonic() - t0)
        if self.config.default_model and self.config.default_model not in self.generators:
            raise ServerConfigError("bad_config", f"the default model {self.config.default_model!r} is not "
                                    f"among the loaded ones ({', '.join(self.generators)})")
        self.default_model = self.config.default_model or (
            DEFAULT_MODEL if DEFAULT_MODEL in self.generators else next(iter(self.generators)))
        self.cache = MusicCache(max_seconds=self.config.max_audio_seconds)
        self.num_frames = features.num_frames

    def _finish_warm_up(self) -> None:
        """On the worker thread, before its first job: wait for the music warm-up, then one
        short dance per model. The connection file is written without waiting for this: on a
        fresh install librosa compiles its numba kernels for about 25 s (its cache is empty),
        and the backend answers ``hello`` and queues jobs meanwhile."""
        from backend.server.warmup import warm_models

        t0 = time.monotonic()
        assert self.music_warm_up is not None
        warm_models(self.generators, self.music_warm_up.result())
        log.info("warm-up finished %.1f s after the worker started", time.monotonic() - t0)

    def _load_off_main_thread(self) -> None:
        """Run ``_load`` in a short-lived thread, so that no torch work ever runs here.

        All torch work must happen on one thread at a time that is not this one: once a
        thread has run parallel torch ops, its OpenMP team stays, and parallel ops on the
        worker thread then ran 2-3x slower on a 2-core machine (measured: the default
        model's 30 s of dance took 4.6 s on the worker against 1.6 s in one thread). A
        thread that has exited leaves nothing behind.
        """
        failure: list[BaseException] = []

        def load() -> None:
            try:
                self._load()
            except BaseException as exc:  # re-raised on the main thread below
                failure.append(exc)

        loader = threading.Thread(target=load, name="choreo-loader")
        loader.start()
        while loader.is_alive():
            loader.join(0.1)  # stay responsive to SIGINT/SIGTERM
            self._check_parent()
        if failure:
            raise failure[0]

    def run(self) -> int:
        """Load, bind, write the connection file, serve; returns the exit status (0: clean).

        SIGINT and SIGTERM (when run on the main thread) stop it like ``shutdown`` does,
        also while the models are still loading.
        """
        old_handlers = self._install_signal_handlers()
        try:
            self._load_off_main_thread()
            if self._stop_reason is None:
                self._serve()
            else:
                log.info("stopped before serving: %s", self._stop_reason)
        finally:
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
        return 0

    def _serve(self) -> None:
        from backend.server.worker import Worker

        context = zmq.Context()
        router = context.socket(zmq.ROUTER)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        router.setsockopt(zmq.MAXMSGSIZE, self.config.hard_limit)
        router.setsockopt(zmq.SNDHWM, 10000)
        router.setsockopt(zmq.LINGER, 0)
        if ":" in self.config.host:
            router.setsockopt(zmq.IPV6, 1)
        outbox = context.socket(zmq.PAIR)
        outbox_address = f"inproc://choreo-outbox-{new_id()}"
        outbox.bind(outbox_address)
        worker = Worker(self.board, self.generators, self.cache, self.stats, context, outbox_address,
                        self.num_frames, warm_up=self._finish_warm_up if self.music_warm_up else None)
        self._router, self._outbox = router, outbox
        # connection ends, as they happen: the jobs of a client that is gone free their places
        self._monitor = router.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        try:
            router.bind(self.config.bind_address())
            self.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT).replace("0.0.0.0", "127.0.0.1")
            worker.start()
            self.connection_file = write_connection_file(
                self.config.connection_file or default_connection_file(), self.endpoint,
                self.key, backend_version=backend_version(), device=self.device,
                models=sorted(self.generators))
            log.info("choreo backend ready on %s (connection file %s)", self.endpoint, self.connection_file)
            if self.key is None:
                log.warning("open server: no key, any local process may send requests (debugging only)")
            self._loop()
            log.info("shutting down: %s", self._stop_reason)
            self._finish(worker)
        finally:  # also after a crash of the loop: stop the worker, close, clean up
            for job in self.board.close() + ([self.board.running] if self.board.running else []):
                job.stop("shutdown")
            router.disable_monitor()
            self._monitor.close(linger=0)
            router.close(linger=1000)  # lets the last replies (shutdown_reply) leave
            outbox.close(linger=0)
            if worker.ident is not None:
                worker.join(timeout=1.0)
            if not worker.is_alive():
                context.term()
            if self.connection_file is not None:
                self.connection_file.unlink(missing_ok=True)
                log.info("removed connection file %s", self.connection_file)

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda signum, _frame: self.request_stop(
                f"signal {signal.Signals(signum).name}"))
        return old

    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._outbox, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        while self._stop_reason is None:
            events = dict(poller.poll(10 if self._backlog else POLL_MS))
            if self._monitor in events:
                self._connection_events()
            if self._router in events:
                for _ in range(64):
                    if not self._receive():
                        break
            if self._outbox in events:
                self._forward_outbox(256)
            self._flush_backlogs()
            self._check_clients()
            self._check_parent()

    def _finish(self, worker: threading.Thread) -> None:
        """Cancel queued and running jobs, let the worker say so, then answer ``shutdown``."""
        for job in self.board.close():
            job.stop("shutdown")
            self.stats.add("jobs_cancelled")
            self._send_job(job, Message("cancelled", {"reason": "shutdown"}))
        running = self.board.running
        if running is not None:
            running.stop("shutdown")
        deadline = time.monotonic() + self.config.shutdown_grace
        while worker.is_alive() and time.monotonic() < deadline:
            if self._outbox.poll(50, zmq.POLLIN):
                self._forward_outbox(256)
            self._flush_backlogs()
        self._forward_outbox(10_000)
        self._flush_backlogs()
        if worker.is_alive():
            log.warning("the running job did not stop within %.0f s; exiting anyway",
                        self.config.shutdown_grace)
        if self._shutdown_request is not None:
            identity, request = self._shutdown_request
            self._send(identity, reply(request, "shutdown_reply", {"reason": self._stop_reason}))

    # -- receiving -------------------------------------------------------------------

    def _read_frames(self) -> tuple[bytes, int, list[zmq.Frame], ProtocolError | None] | None:
        """One multipart message from the ROUTER, read part by part so that at most
        ``max_message_bytes`` of it is kept, and the file descriptor of the connection it
        came on (-1 if unknown); None when nothing is waiting.

        A message over a limit is still read to its end (ZeroMQ delivers it whole),
        but only its header is kept, to name it in the ``error`` reply.
        """
        try:
            identity_frame = self._router.recv(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return None
        identity = identity_frame.bytes
        try:
            fd = int(identity_frame.get(zmq.SRCFD))
        except (zmq.ZMQError, AttributeError, TypeError, ValueError):
            fd = -1
        parts: list[zmq.Frame] = []
        total, count, refusal = 0, 0, None
        while self._router.getsockopt(zmq.RCVMORE):
            part = self._router.recv(copy=False)
            count += 1
            total += len(part.buffer)
            if refusal is None and count > MAX_BUFFERS + 1:
                refusal = ProtocolError("bad_message", f"more than {MAX_BUFFERS} buffers")
            elif refusal is None and total > self.config.max_message_bytes:
                refusal = ProtocolError("message_too_large", f"the message is over "
                                        f"{self.config.max_message_bytes} bytes (the server's limit)")
            if refusal is None:
                parts.append(part)
            else:
                parts = parts[:1]
        if refusal is not None and parts:
            refusal.reply_to = peek_msg_id(parts[0].buffer)
        return identity, fd, parts, refusal

    def _receive(self) -> bool:
        got = self._read_frames()
        if got is None:
            return False
        identity, fd, frames, refusal = got
        # connection ends reported before this message are handled before its sender is
        # tied to its connection: a new connection can reuse a closed one's descriptor
        self._connection_events()
        self._bind_connection(identity, fd)
        self._last_seen[identity] = time.monotonic()
        message: Message | None = None
        try:
            if refusal is not None:
                raise refusal
            message = decode(frames, self.config.max_message_bytes)
            self._check_auth(message, frames)
            self._dispatch(identity, message)
        except ChoreoError as exc:
            log.info("refused a message from %s: %s", identity.hex(), exc)
            reply_to = exc.reply_to or (message.msg_id if message else None)
            self._send(identity, error(exc.code, exc.message, reply_to, exc.job_id))
        except Exception as exc:  # a bug must not take the server down
            log.exception("failed to handle a message from %s", identity.hex())
            reply_to = message.msg_id if message else (peek_msg_id(frames[0].buffer) if frames else None)
            self._send(identity, error("internal", f"{type(exc).__name__}: {exc}", reply_to))
        return True

    def _check_auth(self, message: Message, frames: list[Any]) -> None:
        """A request must be signed with the key (or carry it as ``token``); a signature
        seen before is a replay. Nothing about the key goes into the error or the log."""
        key = self.key
        if key is None:
            return
        if message.signature is not None:
            if not verify_signature(frames, key):
                raise ChoreoError("unauthorized", "bad signature: the request must be signed with this "
                                  f"backend's key ({SIGNATURE_SCHEME}, see docs/protocol.md)")
            if message.signature in self._signatures:
                raise ChoreoError("unauthorized", "this signed request was seen before (a replay)")
            self._signatures.add(message.signature)
            self._signature_order.append(message.signature)
            if len(self._signature_order) > SIGNATURE_HISTORY:
                self._signatures.discard(self._signature_order.popleft())
        elif message.token is None:
            raise ChoreoError("unauthorized", "this backend needs every request signed with its key "
                              "(the connection file's token)")
        elif not same_key(message.token, key):
            raise ChoreoError("unauthorized", "wrong key")

    def _dispatch(self, identity: bytes, message: Message) -> None:
        kind = message.type
        if kind == "hello":
            self._send(identity, reply(message, "hello_reply", self._hello_content()))
        elif kind == "ping":
            self._send(identity, reply(message, "pong", {"time": time.time(),
                                                          "stats": self.stats.snapshot(self.board)}))
        elif kind == "generate":
            self._on_generate(identity, message)
        elif kind == "inpaint":
            self._on_inpaint(identity, message)
        elif kind == "cancel":
            self._on_cancel(identity, message)
        elif kind == "shutdown":
            self._shutdown_request = (identity, message)
            self.request_stop("shutdown requested")
        elif kind in RESERVED_TYPES:
            raise ChoreoError("unknown_type", f"{kind!r} is reserved for a later protocol version; "
                              f"this server speaks {PROTOCOL_VERSION}")
        else:
            raise ChoreoError("unknown_type", f"unknown message type {kind!r}; requests are "
                              f"{sorted(REQUEST_TYPES)}")

    def _hello_content(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL_NAME, "protocol_version": PROTOCOL_VERSION,
            "backend_version": backend_version(), "device": self.device,
            "fps": self.generators[self.default_model].fps,  # 1.3 clients read this; 1.4, models[i].fps
            "joint_names": list(JOINT_NAMES),
            "models": [g.describe() for g in self.generators.values()],
            "default_model": self.default_model,
            "contact_names": {n: list(g.contact_names) for n, g in self.generators.items()},
            "limits": {"max_audio_seconds": self.config.max_audio_seconds,
                       "max_message_bytes": self.config.max_message_bytes,
                       "max_queue": self.config.max_queue,
                       "client_timeout_s": self.config.client_timeout,
                       "max_buffers": MAX_BUFFERS},
            "requests": sorted(REQUEST_TYPES), "reserved": sorted(RESERVED_TYPES),
            "auth": self.key is not None,
            "signature_scheme": SIGNATURE_SCHEME if self.key is not None else None,
            "stats": self.stats.snapshot(self.board),
        }

    def _on_generate(self, identity: bytes, message: Message) -> None:
        spec = parse_generate(message, self.generators, self.default_model)
        job = Job(job_id=new_id(), identity=identity, request_id=message.msg_id, spec=spec,
                  audio=audio_bytes(message))
        ahead = self.board.submit(job)
        self.stats.add("jobs_accepted")
        fps = self.generators[spec.model].fps
        frames = self.num_frames(spec.seconds, fps) if spec.seconds is not None else None
        log.info("job %s accepted for %s: model %s, seed %d, %d ahead", job.job_id, identity.hex(),
                 spec.model, spec.seed, ahead)
        self._send(identity, reply(message, "accepted", {
            "queue_position": ahead, "frames_total": frames, "fps": fps, "model": spec.model,
            "seed": spec.seed, "options": spec.options}, job_id=job.job_id))

    def _on_inpaint(self, identity: bytes, message: Message) -> None:
        spec, audio = parse_inpaint(message, self.generators, self.default_model,
                                    lambda key: key in self.cache, self.config.max_audio_seconds)
        job = Job(job_id=new_id(), identity=identity, request_id=message.msg_id, spec=spec, audio=audio)
        ahead = self.board.submit(job)
        self.stats.add("jobs_accepted")
        log.info("edit job %s accepted for %s: model %s, frames %d:%d of %d, %d ahead", job.job_id,
                 identity.hex(), spec.model, spec.edit_start, spec.edit_stop, spec.frames, ahead)
        self._send(identity, reply(message, "accepted", {
            "queue_position": ahead, "frames_total": spec.edit_stop - spec.edit_start,
            "fps": self.generators[spec.model].fps, "edit_start": spec.edit_start,
            "edit_stop": spec.edit_stop, "model": spec.model,
            "seed": spec.seed, "options": spec.options}, job_id=job.job_id))

    def _on_cancel(self, identity: bytes, message: Message) -> None:
        job_id = message.content.get("job_id") or message.job_id
        job = self.board.find(job_id, identity) if isinstance(job_id, str) else None
        if job is None:
            raise ChoreoError("unknown_job", f"no queued or running job {job_id!r} of this client "
                              "(it may have finished)")
        if job.stop("cancel") and self.board.remove_queued(job):
            self.stats.add("jobs_cancelled")
            log.info("job %s cancelled before it started", job.job_id)
            self._send_job(job, Message("cancelled", {"reason": "cancel"}))
        # a running job: the worker sees the flag within one sampling step and says ``cancelled``

    # -- sending ---------------------------------------------------------------------

    def _send_job(self, job: Job, message: Message) -> None:
        message.reply_to, message.job_id = job.request_id, job.job_id
        self._send(job.identity, message, job.job_id)

    def _send(self, identity: bytes, message: Message, job_id: str = "") -> None:
        try:
            frames = encode(message)
        except ProtocolError as exc:  # our own reply is not valid JSON: a bug, not the client's
            raise ChoreoError("internal", f"cannot encode {message.type}: {exc.message}",
                              reply_to=message.reply_to) from exc
        self._send_frames(identity, frames, job_id)

    def _send_frames(self, identity: bytes, frames: list[Any], job_id: str) -> None:
        backlog = self._backlog.get(identity)
        if backlog is not None:
            backlog.append((job_id, frames))
            if len(backlog) > MAX_BACKLOG:
                self._client_gone(identity, f"it has not read {MAX_BACKLOG} messages")
            return
        outcome = self._try_send(identity, frames)
        if outcome == "again":
            self._backlog[identity] = deque([(job_id, frames)])
        elif outcome == "gone":
            self._client_gone(identity, "it disconnected")

    def _try_send(self, identity: bytes, frames: list[Any]) -> str:
        try:
            self._router.send_multipart([identity, *frames], flags=zmq.NOBLOCK, copy=False)
            return "sent"
        except zmq.Again:
            return "again"
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                return "gone"
            raise

    def _flush_backlogs(self) -> None:
        for identity in list(self._backlog):
            backlog = self._backlog[identity]
            while backlog:
                outcome = self._try_send(identity, backlog[0][1])
                if outcome == "again":
                    break
                backlog.popleft()
                if outcome == "gone":
                    self._client_gone(identity, "it disconnected")
                    break
            if not backlog:
                self._backlog.pop(identity, None)

    def _forward_outbox(self, limit: int) -> None:
        """Send on what the worker produced: ``[job_id, identity, *frames]`` each."""
        for _ in range(limit):
            try:
                job_id, identity, *frames = self._outbox.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            identity_bytes = identity.bytes
            job = self.board.find(job_id.bytes.decode(), identity_bytes)
            if job is not None and job.stop_reason == "dropped":
                continue  # its client is gone: nobody to tell
            self._send_frames(identity_bytes, frames, job_id.bytes.decode())

    # -- vanished clients ------------------------------------------------------------

    def _bind_connection(self, identity: bytes, fd: int) -> None:
        if fd < 0 or self._fd_of.get(identity) == fd:
            return
        old = self._fd_of.get(identity)
        if old is not None:
            self._on_fd.get(old, set()).discard(identity)
        self._fd_of[identity] = fd
        self._on_fd.setdefault(fd, set()).add(identity)

    def _connection_events(self) -> None:
        """Drop the jobs of every client whose connection the monitor says has ended."""
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if event["event"] != zmq.EVENT_DISCONNECTED:
                continue
            for identity in self._on_fd.pop(int(event["value"]), set()):
                self._fd_of.pop(identity, None)
                self._client_gone(identity, "it disconnected")

    def _client_gone(self, identity: bytes, why: str) -> None:
        self._backlog.pop(identity, None)
        self._last_seen.pop(identity, None)
        fd = self._fd_of.pop(identity, None)
        if fd is not None:
            self._on_fd.get(fd, set()).discard(identity)
        for job in self.board.active():
            if job.identity == identity:
                self._drop(job, f"client {identity.hex()} is gone: {why}")

    def _drop(self, job: Job, why: str, silent: bool = False) -> None:
        """Stop a job whose client is gone, or (``silent``) has said nothing for too long.

        A gone client cannot be told anything. A silent one may only be slow (a frozen
        UI, a loaded machine), so it gets an ``error`` ``client_timeout`` and knows its
        job is over instead of waiting for it forever.
        """
        if job.state == "finished" or not job.stop("silent" if silent else "dropped"):
            return
        removed = self.board.remove_queued(job)
        self.stats.add("jobs_dropped")
        log.warning("dropping job %s: %s", job.job_id, why)
        if silent and removed:  # a running one is told by the worker when it stops
            self._send_job(job, client_timeout_error(why))

    def _check_parent(self) -> None:
        """Shut down once the program that launched this backend has exited (parent_watch.py)."""
        if self._parent is not None and self._parent.gone():
            self.request_stop(f"the launching process {self._parent.pid} has exited")

    def _check_clients(self) -> None:
        """Drop the jobs of clients silent for longer than ``client_timeout``."""
        now = time.monotonic()
        if now - self._last_client_check < 0.2:
            return
        self._last_client_check = now
        for job in self.board.active():
            silent = now - max(self._last_seen.get(job.identity, 0.0), job.submitted)
            if silent > self.config.client_timeout:
                self._drop(job, f"client {job.identity.hex()} silent for {silent:.1f} s "
                                f"(client_timeout {self.config.client_timeout:g} s)", silent=True)
        busy = {job.identity for job in self.board.active()}
        for identity, seen in list(self._last_seen.items()):
            if identity not in busy and now - seen > 600:
                del self._last_seen[identity]


def serve(config: ServerConfig) -> int:
    """Run a backend in the foreground (what ``choreo serve`` calls); returns the exit status."""
    logging.basicConfig(level=getattr(logging, config.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        server = Server(config)
    except ChoreoError as exc:
        log.error("%s", exc.message)
        return 2
    try:
        return server.run()
    except Exception:
        log.exception("the backend failed")
        return 1
