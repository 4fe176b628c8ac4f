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
from typing import Any, Callable, Mapping

import numpy as np
import zmq

from backend.conventions import FPS
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
        last_sent: dict[str, float] = {}

        def progress(stage: str, fraction: float, **extra: Any) -> None:
            now = time.monotonic()
            if fraction < 1.0 and now - last_sent.get(stage, -1e9) < PROGRESS_INTERVAL:
                return
            last_sent[stage] = now
            self._emit(job, Message("progress", {"stage": stage, "fraction": float(fraction), **extra}))

        try:
            if job.should_stop():
                raise Cancelled()
            progress("features", 0.0)
            analysis = self._analysis(job)
            timings["features_s"] = time.monotonic() - t_start
            generator = self.generators[job.spec.model]
            if generator.fps != FPS:
                raise ChoreoError("internal", f"model {generator.name} runs at {generator.fps} fps, "
                                  f"the music features at {FPS}")
            total = int(analysis.features.shape[0])
            if isinstance(job.spec, InpaintSpec):
                first, count = self._motion_range(job.spec, total)
                span = (job.spec.edit_start, job.spec.edit_stop)
            else:
                first, count = resolve_range(job.spec.start, job.spec.seconds, total, FPS, self.num_frames)
                span = (0, count)
            progress("features", 1.0, frames_total=span[1] - span[0])
            if job.should_stop():
                raise Cancelled()

            t_gen = time.monotonic()
            # a private writable copy: the cached analysis is shared and read-only
            music = np.array(analysis.features[first:first + count])

            def report(stage: str, fraction: float) -> None:
                progress(stage, fraction, frames_total=span[1] - span[0])

            if isinstance(job.spec, InpaintSpec):
                spec = job.spec
                chunks = generator.edit(
                    EditRequest(music, spec.rotations, spec.root_translation, spec.contacts, spec.keep,
                                span, seed=spec.seed, options=dict(spec.options)), job.should_stop, report)
            else:
                chunks = generator.generate(
                    GenerationRequest(music_features=music, seed=job.spec.seed,
                                      options=dict(job.spec.options)), job.should_stop, report)
            made = span[0]
            # the frame before the next chunk, for quaternion signs: the client's, then ours
            previous = (job.spec.rotations[made - 1]
                        if isinstance(job.spec, InpaintSpec) and made > 0 else None)
            for chunk in chunks:
                if job.should_stop():
                    raise Cancelled()
                message = self._chunk_message(generator, chunk, made, span[1], job.spec, previous)
                previous = message.buffers["rotations"][-1]
                self._emit(job, message)
                if made == span[0]:
                    timings["first_chunk_s"] = time.monotonic() - job.submitted
                made += chunk.num_frames
            if job.should_stop():
                raise Cancelled()
            if made != span[1]:
                raise ChoreoError("internal", f"model {generator.name} made frames up to {made}, "
                                  f"not to {span[1]}")
            timings["generation_s"] = time.monotonic() - t_gen
            timings["total_s"] = time.monotonic() - job.submitted
            tempo = float(analysis.tempo_bpm)
            frames = span[1] - span[0]
            summary = {
                "frames": frames, "seconds": frames / FPS, "fps": FPS, "start_frame": first,
                "model": generator.name, "seed": job.spec.seed, "options": job.spec.options,
                "tempo_bpm": tempo if np.isfinite(tempo) else None,
                "content_hash": analysis.content_hash, "song_seconds": float(analysis.duration),
                "contact_names": list(generator.contact_names),
                # Beats inside the span, seconds from the span's frame 0 (timeline markers).
                "beat_times": [round(float(b) - first / FPS, 4) for b in analysis.beat_times
                               if first / FPS <= b < (first + count) / FPS],
            }
            if isinstance(job.spec, InpaintSpec):
                summary.update(edit_start=span[0], edit_stop=span[1], motion_frames=count)
            self.stats.add("jobs_done")
            log.info("job %s done: %d frames in %.2f s", job.job_id, frames, timings["total_s"])
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

    @staticmethod
    def _motion_range(spec: InpaintSpec, total: int) -> tuple[int, int]:
        """(first song frame, frame count) of the motion an edit sends: it must fit in the song."""
        first = int(round(spec.start * FPS))
        if first + spec.frames > total:
            raise ChoreoError("bad_range", f"the motion ({spec.frames} frames from {spec.start:g} s) runs "
                              f"past the end of the song ({total} frames, {total / FPS:.2f} s)")
        return first, spec.frames

    def _chunk_message(self, generator: Generator, chunk: MotionChunk, made: int, end: int,
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
