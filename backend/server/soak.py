"""A soak of a running backend: many jobs from several clients at once, over every loaded model,
with cancels, mid-stream disconnects and silent clients, and the figures that say whether the
server kept its promises (issue 16).

* ``clients`` live clients each keep at most one job open (so together with the silent ones
  they stay within ``max_queue``: any ``queue_full`` to them is a failure); each job is run
  to its end, cancelled (``cancel_rate``) or abandoned by closing the client mid-stream
  (``disconnect_rate``; the client then reconnects as a new one);
* ``silent`` clients submit a job and then never ping, so the server must end it with
  ``client_timeout``; they submit again once told;
* every finished dance is checked: its chunks cover every frame once, in order; a job
  repeated with the same model, song and seed must give the same frames bit for bit;
* the server's resident memory and open file descriptors are read (``/proc``) before and
  after.

``run_soak`` needs only the endpoint, key and pid of a server; the benchmark that starts one
and reports the figures lives with the other benchmarks.
"""

from __future__ import annotations

import io
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from protocol.client import ChoreoClient, StreamedChunk
from protocol.messages import Message, decode, encode, sign


def click_song(seconds: float, seed: int, sample_rate: int = 22050) -> bytes:
    """A short synthetic song (clicks on a beat, a tone, a little noise) as WAV bytes."""
    import soundfile as sf
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    bpm = 100.0 + 10.0 * seed
    audio = 0.1 * np.sin(2 * np.pi * (200.0 + 20.0 * seed) * t)
    audio += 0.7 * np.exp(-np.mod(t, 60.0 / bpm) * 40.0) * np.sin(2 * np.pi * 880.0 * t)
    audio += 0.01 * rng.standard_normal(t.shape)
    out = io.BytesIO()
    sf.write(out, audio.astype(np.float32), sample_rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def process_usage(pid: int) -> dict[str, float | int | None]:
    """Resident memory (MiB) and open file descriptors of a process (None off Linux)."""
    rss = None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024.0
        fds: int | None = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError, IndexError):
        fds = None
    return {"rss_mb": rss, "open_fds": fds}


@dataclass
class SoakFigures:
    """What the soak counted. The promises: ``frames_lost``, ``jobs_without_terminal``,
    ``queue_full_to_live_clients``, ``internal_errors`` and ``same_seed_mismatches`` are 0."""

    jobs: int = 0
    jobs_done: int = 0
    jobs_cancelled: int = 0
    jobs_disconnected: int = 0
    jobs_failed: int = 0
    terminal_messages: int = 0
    jobs_without_terminal: int = 0
    frames_lost: int = 0
    same_seed_pairs: int = 0
    same_seed_mismatches: int = 0
    queue_full_to_live_clients: int = 0
    internal_errors: int = 0
    silent_jobs: int = 0
    silent_client_timeouts: int = 0
    per_model: dict[str, int] = field(default_factory=dict)
    usage_before: dict[str, Any] = field(default_factory=dict)
    usage_after: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Soak:
    def __init__(self, endpoint: str, key: str | None, pid: int | None, jobs: int, clients: int,
                 silent: int, cancel_rate: float, disconnect_rate: float, seed: int,
                 job_timeout: float) -> None:
        self.endpoint, self.key, self.pid = endpoint, key, pid
        self.total, self.clients, self.silent = jobs, clients, silent
        self.cancel_rate, self.disconnect_rate = cancel_rate, disconnect_rate
        self.seed, self.job_timeout = seed, job_timeout
        self.lock = threading.Lock()
        self.next_job = 0
        self.figures = SoakFigures()
        self.dances: dict[tuple[str, int, int], np.ndarray] = {}
        self.songs = [click_song(1.5 + 0.5 * k, k) for k in range(3)]
        self.done = threading.Event()

    def client(self) -> ChoreoClient:
        return ChoreoClient(self.endpoint, token=self.key, timeout=self.job_timeout, heartbeat_interval=0.5)

    def take(self) -> int | None:
        with self.lock:
            if self.next_job >= self.total:
                return None
            self.next_job += 1
            self.figures.jobs += 1
            return self.next_job - 1

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            setattr(self.figures, name, getattr(self.figures, name) + n)

    def problem(self, text: str) -> None:
        with self.lock:
            if len(self.figures.problems) < 50:
                self.figures.problems.append(text)

    # -- live clients ------------------------------------------------------------------------

    def live(self, index: int, models: list[dict[str, Any]]) -> None:
        rng = random.Random(self.seed * 1000 + index)
        client = self.client()
        try:
            while (number := self.take()) is not None:
                model = models[number % len(models)]
                options = {o["name"]: int(o["min"]) for o in model["options"]
                           if o["name"] == "steps" and o.get("min") is not None}
                song, seed = rng.randrange(len(self.songs)), rng.randrange(6)
                action = rng.random()
                action = ("disconnect" if action < self.disconnect_rate else
                          "cancel" if action < self.disconnect_rate + self.cancel_rate else "finish")
                with self.lock:
                    self.figures.per_model[model["name"]] = self.figures.per_model.get(model["name"], 0) + 1
                client = self.job(client, model["name"], song, seed, options, action)
        except Exception as exc:  # noqa: BLE001 - reported, not raised: the soak goes on
            self.problem(f"client {index}: {type(exc).__name__}: {exc}")
        finally:
            client.close()

    def job(self, client: ChoreoClient, model: str, song: int, seed: int, options: dict[str, Any],
            action: str) -> ChoreoClient:
        msg_id = client.submit_generate(self.songs[song], model=model, seed=seed, options=options)
        chunks: list[StreamedChunk] = []
        job_id = None
        cancelled = False
        deadline = time.monotonic() + self.job_timeout
        while time.monotonic() < deadline:
            msg = client.wait_for(lambda m: m.reply_to == msg_id, timeout=max(0.1, deadline - time.monotonic()))
            if msg.type == "accepted":
                job_id = msg.job_id
            elif msg.type == "motion_chunk":
                chunks.append(StreamedChunk.from_message(msg))
                if action == "disconnect":  # gone mid-stream: the server must drop the job itself
                    client.close()
                    self.count("jobs_disconnected")
                    return self.client()
            if action == "cancel" and job_id and not cancelled and msg.type in ("accepted", "progress",
                                                                                "motion_chunk"):
                client.cancel(job_id)
                cancelled = True
            if msg.type in ("done", "error", "cancelled"):
                self.count("terminal_messages")
                self.ended(msg, model, song, seed, chunks)
                return client
        self.count("jobs_without_terminal")
        self.problem(f"job {job_id} ({model}) had no terminal message within {self.job_timeout} s")
        client.close()
        return self.client()

    def ended(self, msg: Message, model: str, song: int, seed: int, chunks: list[StreamedChunk]) -> None:
        if msg.type == "cancelled":
            self.count("jobs_cancelled")
            return
        if msg.type == "error":
            code = msg.content.get("code")
            if code == "queue_full":
                self.count("queue_full_to_live_clients")
            elif code == "internal":
                self.count("internal_errors")
            self.count("jobs_failed")
            self.problem(f"{model}: error {code}: {msg.content.get('message')}")
            return
        self.count("jobs_done")
        frames = int(msg.content["summary"]["frames"])
        covered, expected = 0, 0
        for chunk in sorted(chunks, key=lambda c: c.start):
            if chunk.start == expected:
                covered += chunk.num_frames
                expected += chunk.num_frames
        if covered != frames or expected != frames:
            self.count("frames_lost", max(frames - covered, 1))
            self.problem(f"{model}: chunks cover {covered} of {frames} frames")
            return
        dance = np.concatenate([c.rotations for c in sorted(chunks, key=lambda c: c.start)])
        key = (model, song, seed)
        with self.lock:
            first = self.dances.setdefault(key, dance)
            if first is not dance:
                self.figures.same_seed_pairs += 1
                if first.shape != dance.shape or not np.array_equal(first, dance):
                    self.figures.same_seed_mismatches += 1

    # -- silent clients ----------------------------------------------------------------------

    def silent_client(self, index: int) -> None:
        import zmq
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        song = self.songs[index % len(self.songs)]
        try:
            while not self.done.is_set():
                frames = encode(Message("generate", {"seed": index, "options": {}},
                                        {"audio": np.frombuffer(song, np.uint8)}))
                sock.send_multipart(sign(frames, self.key) if self.key else frames)
                self.count("silent_jobs")
                while not self.done.is_set():  # read what comes, never ping
                    if not sock.poll(200):
                        continue
                    reply = decode(sock.recv_multipart())
                    if reply.type == "error" and reply.content.get("code") == "client_timeout":
                        self.count("silent_client_timeouts")
                        break
                    if reply.type in ("done", "cancelled", "error"):
                        self.done.wait(0.5)  # refused or over: submit again, not in a tight loop
                        break
        finally:
            sock.close()


def run_soak(endpoint: str, key: str | None, pid: int | None = None, *, jobs: int = 1000,
             clients: int = 6, silent: int = 2, cancel_rate: float = 0.15,
             disconnect_rate: float = 0.1, seed: int = 0, job_timeout: float = 300.0) -> SoakFigures:
    """Run the soak against the backend at ``endpoint`` (signing with ``key``); ``pid`` (a
    process on this machine) adds its memory and file descriptors before and after."""
    soak = _Soak(endpoint, key, pid, jobs, clients, silent, cancel_rate, disconnect_rate, seed, job_timeout)
    with soak.client() as probe:
        models = probe.hello()["models"]
    if pid is not None:
        soak.figures.usage_before = process_usage(pid)
    started = time.monotonic()
    silent_threads = [threading.Thread(target=soak.silent_client, args=(i,), daemon=True) for i in range(silent)]
    live_threads = [threading.Thread(target=soak.live, args=(i, models), daemon=True) for i in range(clients)]
    for thread in silent_threads + live_threads:
        thread.start()
    for thread in live_threads:
        thread.join()
    soak.done.set()
    for thread in silent_threads:
        thread.join(timeout=5.0)
    soak.figures.seconds = round(time.monotonic() - started, 1)
    if pid is not None:
        soak.figures.usage_after = process_usage(pid)
    return soak.figures
