"""The worker thread: runs one job (a dance or an edit) at a time, from music analysis
to the last chunk.

It never touches the ROUTER socket (ZeroMQ sockets belong to one thread). Every
message it makes goes through its own inproc PAIR socket to the I/O thread as
``[job_id, client identity, *message frames]``; the I/O thread sends it on and
tells the job to stop if the client is gone.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import zmq

from backend.editing.masks import match_hemispheres, restore_kept
from backend.errors import InputError
from backend.models.base import Cancelled, EditRequest, GenerationRequest, Generator, MotionChunk
from backend.motion.skeleton import NUM_JOINTS
from backend.server.jobs import GenerateSpec, InpaintSpec, Job, JobBoard, Stats, client_timeout_error
from backend.server.validation import resolve_range
from protocol.errors import ERROR_CODES, ChoreoError
from protocol.messages import Message, encode, error

log = logging.getLogger("choreo.server")

PROGRESS_INTERVAL = 0.1
"""Seconds between two progress messages of a stage: enough for a progress bar,
few enough that a long song does not flood a client that reads slowly."""


class _Progress:
    """A job's ``progress`` messages: at most one per stage every PROGRESS_INTERVAL (a
    stage's end always goes), with ``frames_total`` once the span is known."""

    def __init__(self, emit: Callable[[Message], None]) -> None:
        self.emit = emit
        self.frames_total: int | None = None
        self._last_sent: dict[str, float] = {}

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_sent.get(stage, -1e9) < PROGRESS_INTERVAL:
            return
        self._last_sent[stage] = now
        content: dict[str, Any] = {"stage": stage, "fraction": float(fraction)}
        if self.frames_total is not None:
            content["frames_total"] = self.frames_total
        self.emit(Message("progress", content))


def _check_stop(job: Job) -> None:
    """Raise ``Cancelled`` once the job is to stop (cancel, client gone or silent, shutdown)."""
    if job.should_stop():
        raise Cancelled()


def _start_model(job: Job, generator: Generator, music: np.ndarray, span: tuple[int, int],
                 progress: Callable[[str, float], None]) -> Iterator[MotionChunk]:
    """The model's chunk iterator for the job: a dance from ``music``, or an edit of the sent motion."""
    spec = job.spec
    if isinstance(spec, InpaintSpec):
        return generator.edit(EditRequest(music, spec.rotations, spec.root_translation, spec.contacts,
                                          spec.keep, span, seed=spec.seed, options=dict(spec.options)),
                              job.should_stop, progress)
    return generator.generate(GenerationRequest(music_features=music, seed=spec.seed,
                                                options=dict(spec.options)), job.should_stop, progress)


def _summary(spec: GenerateSpec | InpaintSpec, generator: Generator, analysis: Any, first: int, count: int,
             span: tuple[int, int]) -> dict[str, Any]:
    """``done.summary``: what was made, at which rate, from which song (docs/protocol.md)."""
    fps = generator.fps
    tempo = float(analysis.tempo_bpm)
    frames = span[1] - span[0]
    summary = {
        "frames": frames, "seconds": frames / fps, "fps": fps, "start_frame": first,
        "model": generator.name, "seed": spec.seed, "options": spec.options,
        "tempo_bpm": tempo if np.isfinite(tempo) else None,
        "content_hash": analysis.content_hash, "song_seconds": float(analysis.duration),
        "contact_names": list(generator.contact_names),
        # Beats inside the span, seconds from the span's frame 0 (timeline markers).
        "beat_times": [round(float(b) - first / fps, 4) for b in analysis.beat_times
                       if first / fps <= b < (first + count) / fps],
    }
    if isinstance(spec, InpaintSpec):
        summary.update(edit_start=span[0], edit_stop=span[1], motion_frames=count)
    return summary


class Worker(threading.Thread):
    """Takes jobs from the board and streams their messages to the I/O thread."""

    def __init__(self, board: JobBoard, generators: Mapping[str, Generator], cache: Any,
                 stats: Stats, context: zmq.Context, outbox_address: str,
                 num_frames: Callable[[float, int], int], warm_up: Callable[[], None] | None = None) -> None:
        super().__init__(name="choreo-worker", daemon=True)
        self.warm_up = warm_up
        self.board = board
        self.generators = generators
        self.cache = cache
        self.stats = stats
        self.context = context
        self.outbox_address = outbox_address
        self.num_frames = num_frames
        self._outbox: zmq.Socket | None = None

    def run(self) -> None:
        self._outbox = self.context.socket(zmq.PAIR)
        self._outbox.setsockopt(zmq.LINGER, 0)
        self._outbox.connect(self.outbox_address)
        try:
            if self.warm_up is not None:  # first-call costs, paid before the first job
                try:
                    self.warm_up()
                except Exception:  # a failed warm-up only means a slower first job
                    log.exception("warm-up failed")
            while (job := self.board.take()) is not None:
                final = self._run(job)
                job.audio = b""
                # finished before the last message leaves: a client that has seen
                # ``done`` and cancels must get ``unknown_job``, not silence
                self.board.finish(job)
                if final is not None:
                    self._emit(job, final)
        finally:
            self._outbox.close()

    def _emit(self, job: Job, message: Message) -> None:
        message.reply_to, message.job_id = job.request_id, job.job_id
        assert self._outbox is not None
        self._outbox.send_multipart([job.job_id.encode(), job.identity, *encode(message)], copy=False)

    def _run(self, job: Job) -> Message | None:
        """Run a job, streaming its progress and chunks; returns its last message
        (``done``, ``error`` or ``cancelled``; None when nobody is left to tell)."""
        t_start = time.monotonic()
        timings = {"queue_s": t_start - job.submitted}
        progress = _Progress(lambda message: self._emit(job, message))
        try:
            _check_stop(job)
            progress("features", 0.0)
            analysis = self._analysis(job)
            timings["features_s"] = time.monotonic() - t_start
            generator = self.generators[job.spec.model]
            first, count, span = self._span(job.spec, analysis, generator.fps)
            progress.frames_total = span[1] - span[0]
            progress("features", 1.0)
            _check_stop(job)
            t_gen = time.monotonic()
            # a private writable copy: the cached analysis is shared and read-only
            chunks = _start_model(job, generator, np.array(analysis.features[first:first + count]),
                                  span, progress)
            self._stream(job, generator, chunks, span, timings)
            timings["generation_s"] = time.monotonic() - t_gen
            timings["total_s"] = time.monotonic() - job.submitted
            summary = _summary(job.spec, generator, analysis, first, count, span)
            self.stats.add("jobs_done")
            log.info("job %s done: %d frames in %.2f s", job.job_id, summary["frames"], timings["total_s"])
            return Message("done", {"summary": summary,
                                    "timings": {k: round(v, 4) for k, v in timings.items()}})
        except Cancelled:
            return self._stopped(job)
        except (ChoreoError, InputError) as exc:  # a code the protocol does not know is ours
            code = exc.code if exc.code in ERROR_CODES else "internal"
            return self._failed(job, code, exc.message)
        except Exception as exc:  # the server lives on whatever a job does
            log.exception("job %s failed", job.job_id)
            return self._failed(job, "internal", f"{type(exc).__name__}: {exc}")

    def _span(self, spec: GenerateSpec | InpaintSpec, analysis: Any,
              fps: int) -> tuple[int, int, tuple[int, int]]:
        """(first song frame, frame count) of the music the model hears, and the span of
        frames the job returns: the requested range of a dance, the edited span of an edit."""
        total = int(analysis.features.shape[0])
        if isinstance(spec, InpaintSpec):
            first, count = _motion_range(spec, total, fps)
            return first, count, (spec.edit_start, spec.edit_stop)
        first, count = resolve_range(spec.start, spec.seconds, total, fps, self.num_frames)
        return first, count, (0, count)

    def _stream(self, job: Job, generator: Generator, chunks: Iterator[MotionChunk], span: tuple[int, int],
                timings: dict[str, float]) -> None:
        """Send the model's chunks as they come, each checked (``_chunk_message``); they must
        cover the span exactly once. The time to the first chunk goes into ``timings``."""
        made = span[0]
        spec = job.spec
        # the frame before the next chunk, for quaternion signs: the client's, then ours
        previous = spec.rotations[made - 1] if isinstance(spec, InpaintSpec) and made > 0 else None
        for chunk in chunks:
            _check_stop(job)
            message = _chunk_message(generator, chunk, made, span[1], spec, previous)
            previous = message.buffers["rotations"][-1]
            self._emit(job, message)
            if made == span[0]:
                timings["first_chunk_s"] = time.monotonic() - job.submitted
            made += chunk.num_frames
        _check_stop(job)
        if made != span[1]:
            raise ChoreoError("internal", f"model {generator.name} made frames up to {made}, "
                              f"not to {span[1]}")

    def _analysis(self, job: Job) -> Any:
        """The music analysis of the job's audio: analysed now, or cached by hash."""
        if job.audio:
            return self.cache.analyse_bytes(job.audio)
        key = getattr(job.spec, "audio_hash", None)
        analysis = self.cache.get(key) if key else None
        if analysis is None:  # evicted while the job waited in the queue
            raise ChoreoError("audio_not_cached", f"the backend no longer holds audio {str(key)[:12]}…; "
                              "send the audio bytes again")
        return analysis

    def _stopped(self, job: Job) -> Message | None:
        if job.stop_reason == "dropped":
            log.info("job %s stopped: its client is gone", job.job_id)
            return None
        if job.stop_reason == "silent":
            log.info("job %s stopped: its client was silent too long", job.job_id)
            return client_timeout_error("the backend heard nothing from this client for too long")
        self.stats.add("jobs_cancelled")
        log.info("job %s cancelled (%s)", job.job_id, job.stop_reason)
        return Message("cancelled", {"reason": job.stop_reason or "cancel"})

    def _failed(self, job: Job, code: str, message: str) -> Message:
        self.stats.add("jobs_failed")
        log.info("job %s failed: %s: %s", job.job_id, code, message)
        return error(code, message)


def _motion_range(spec: InpaintSpec, total: int, fps: int) -> tuple[int, int]:
    """(first song frame, frame count) of the motion an edit sends: it must fit in the song."""
    first = int(round(spec.start * fps))
    if first + spec.frames > total:
        raise ChoreoError("bad_range", f"the motion ({spec.frames} frames from {spec.start:g} s) runs "
                          f"past the end of the song ({total} frames, {total / fps:.2f} s)")
    return first, spec.frames


def _chunk_message(generator: Generator, chunk: MotionChunk, made: int, end: int,
                   spec: GenerateSpec | InpaintSpec, previous: np.ndarray | None) -> Message:
    """A ``motion_chunk``, after checking the generator kept its contract; for an
    edit, the kept values are copied back bit for bit whatever the model made."""
    n, c = chunk.num_frames, len(generator.contact_names)
    if chunk.start != made or made + n > end or n < 1:
        raise ChoreoError("internal", f"model {generator.name} sent frames [{chunk.start}, "
                          f"{chunk.start + n}) where [{made}, ...) up to {end} was due")
    rotations = np.array(chunk.rotations, dtype=np.float32)
    root = np.array(chunk.root_translation, dtype=np.float32)
    contacts = np.array(chunk.contacts, dtype=np.float32)
    if rotations.shape != (n, NUM_JOINTS, 4) or root.shape != (n, 3) or contacts.shape != (n, c):
        raise ChoreoError("internal", f"model {generator.name} sent a chunk of shapes "
                          f"{rotations.shape}, {root.shape}, {contacts.shape}")
    if not (np.isfinite(rotations).all() and np.isfinite(root).all() and np.isfinite(contacts).all()):
        raise ChoreoError("internal", f"model {generator.name} made a NaN or infinite value")
    if isinstance(spec, InpaintSpec):
        restore_kept(chunk.start, rotations, root, contacts, spec.keep, spec.rotations,
                     spec.root_translation, spec.contacts)
        match_hemispheres(chunk.start, rotations, spec.keep, previous)
    return Message("motion_chunk",
                   {"start": chunk.start, "frames": n, "fps": generator.fps,
                    "contact_names": list(generator.contact_names)},
                   buffers={"rotations": rotations, "root_translation": root, "contacts": contacts})
