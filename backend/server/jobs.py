"""Jobs, the bounded FIFO that holds them, and the server's counters.

Two threads share these: the I/O thread submits, cancels and drops jobs, the
worker takes them one at a time. Everything that both touch is behind one lock;
a job's stop flag is a ``threading.Event`` so the generator can poll it cheaply
at every sampling step.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protocol.errors import ChoreoError
from protocol.messages import Message, error


def client_timeout_error(why: str) -> Message:
    """What a silent client hears about the job the server stopped for it."""
    return error("client_timeout", f"job stopped: {why}. A client with a job open must send "
                 "something (ping) at least every client_timeout_s / 4 seconds")


@dataclass(frozen=True)
class GenerateSpec:
    """A checked ``generate`` request (see ``validation.parse_generate``)."""

    model: str
    seed: int
    start: float
    seconds: float | None
    options: dict[str, Any]


@dataclass(frozen=True, eq=False)
class InpaintSpec:
    """A checked ``inpaint`` request (see ``validation.parse_inpaint``).

    The motion arrays are private float32 copies with any keyframe poses written in;
    ``keep`` (T, 25) bool already keeps those keyframes. ``audio_hash`` names cached
    audio when the request sent none.
    """

    model: str
    seed: int
    start: float
    options: dict[str, Any]
    rotations: np.ndarray
    root_translation: np.ndarray
    contacts: np.ndarray | None
    keep: np.ndarray
    edit_start: int
    edit_stop: int
    audio_hash: str | None = None

    @property
    def frames(self) -> int:
        return int(self.rotations.shape[0])


@dataclass
class Job:
    """One dance to make or edit for one client (``identity`` is its ROUTER identity).

    ``audio`` is empty for an edit that names cached audio by ``spec.audio_hash``.
    """

    job_id: str
    identity: bytes
    request_id: str
    spec: GenerateSpec | InpaintSpec
    audio: bytes
    submitted: float = field(default_factory=time.monotonic)
    state: str = "queued"  # queued | running | finished
    stop_reason: str | None = None  # cancel | dropped (client gone) | silent (client_timeout) | shutdown
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def stop(self, reason: str) -> bool:
        """Ask the job to stop; the first reason wins. False if it was already stopping."""
        if self._stop.is_set():
            return False
        self.stop_reason = reason
        self._stop.set()
        return True

    def should_stop(self) -> bool:
        return self._stop.is_set()


class JobBoard:
    """The queued jobs (FIFO, at most ``max_queue`` waiting) and the running one."""

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self._lock = threading.Condition()
        self._queue: deque[Job] = deque()
        self._running: Job | None = None
        self._closed = False

    def submit(self, job: Job) -> int:
        """Queue a job; returns how many jobs are ahead of it (the running one included)."""
        with self._lock:
            if self._closed:
                raise ChoreoError("internal", "the server is shutting down")
            if len(self._queue) >= self.max_queue:
                raise ChoreoError("queue_full", f"{len(self._queue)} jobs are already waiting "
                                  f"(max_queue {self.max_queue}); try again when one finishes")
            ahead = len(self._queue) + (self._running is not None)
            self._queue.append(job)
            self._lock.notify()
            return ahead

    def take(self) -> Job | None:
        """Block until a job is queued and mark it running; None once the board is closed."""
        with self._lock:
            while not self._queue and not self._closed:
                self._lock.wait()
            if self._closed:
                return None
            job = self._queue.popleft()
            job.state = "running"
            self._running = job
            return job

    def finish(self, job: Job) -> None:
        with self._lock:
            job.state = "finished"
            if self._running is job:
                self._running = None

    def remove_queued(self, job: Job) -> bool:
        """Take a job out of the queue if it has not started; True if it was removed."""
        with self._lock:
            if job.state == "queued" and job in self._queue:
                self._queue.remove(job)
                job.state = "finished"
                return True
            return False

    def find(self, job_id: str, identity: bytes) -> Job | None:
        """A queued or running job of this client (other clients' jobs are invisible)."""
        with self._lock:
            for job in self.active():
                if job.job_id == job_id and job.identity == identity:
                    return job
        return None

    def active(self) -> list[Job]:
        """The running job (if any) and the queued ones, in order."""
        with self._lock:
            return ([self._running] if self._running else []) + list(self._queue)

    def close(self) -> list[Job]:
        """Stop handing out jobs; returns the queued ones (now removed) for the caller to end."""
        with self._lock:
            self._closed = True
            left = list(self._queue)
            self._queue.clear()
            for job in left:
                job.state = "finished"
            self._lock.notify_all()
            return left

    @property
    def running(self) -> Job | None:
        return self._running

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)


class Stats:
    """Counters that ``hello_reply`` and ``pong`` report, so clients and tests can see
    what the server did (a dropped job, say) without reading its log."""

    FIELDS = ("jobs_accepted", "jobs_done", "jobs_failed", "jobs_cancelled", "jobs_dropped")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(self.FIELDS, 0)
        self.started = time.monotonic()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self, board: JobBoard) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = dict(self._counts)
        running = board.running
        out.update(queue_length=len(board), running_job=running.job_id if running else None,
                   uptime_s=round(time.monotonic() - self.started, 3))
        return out
