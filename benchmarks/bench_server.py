"""The backend as an animator meets it: a real server process, through the real socket.

One ``python -m backend.server`` process on the CPU, the default model:

0. first run after a fresh install (``bench_first_run``): numba's cache empty;
1. cold start: from launching it to its connection file (models loaded; the warm-up
   goes on in the background and a first untimed dance waits it out);
2. 30 s of dance from a 30 s song, music features included (every request sends
   audio the server has not cached), and from the ``generate`` request to the first
   ``motion_chunk``;
3. editing cost: an edit of 5 s against generating 5 s (model time as the server
   reports it);
   Then every model the server loaded, the same way (``per_model``);
4. ``ping`` round trips, idle and while a generation job runs (``bench_protocol``);
5. the server's peak resident memory: ``VmHWM`` from ``/proc/<pid>/status``, read
   just before it is stopped (Linux only).

It also keeps the chunks of its last 30 s dance: the protocol benchmark streams
exactly those.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_protocol import busy_ping_latencies, ping_latencies

DANCE_SECONDS = 30.0


def song_variant(samples: np.ndarray, rate: int, k: int) -> bytes:
    """The example song with inaudible noise, so each request misses the feature cache."""
    import soundfile as sf
    rng = np.random.default_rng(k)
    noisy = samples + 1e-4 * rng.standard_normal(samples.shape).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, noisy, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def peak_rss_mb(pid: int) -> float | None:
    """A process's peak resident set size (``VmHWM``) in MiB; None where /proc has no such line."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # the kernel writes kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _editing(client: Any, dance: Any, audio: bytes, repeats: int) -> dict[str, float]:
    """An edit of a 5 s range of the 30 s dance against generating 5 s, same server.

    All timed by the server (``timings.generation_s``: the model's work, no analysis,
    no transfer): the edit of frames 300:450 (audio by hash), a stand-alone 5 s dance
    from 10 s into the same song, and 5 s at the rate of a 30 s dance.
    """
    from backend.editing.masks import range_mask

    edits, fives, thirties = [], [], []
    audio_hash = dance.summary["content_hash"]
    for k in range(repeats):
        edited = client.inpaint(rotations=dance.rotations, root_translation=dance.root_translation,
                                contacts=dance.contacts, keep=range_mask(900, 300, 450), seed=k,
                                audio_hash=audio_hash)
        edits.append(edited.timings["generation_s"])
        five = client.generate(audio, seed=k, start=10.0, seconds=5.0)
        fives.append(five.timings["generation_s"])
        thirty = client.generate(audio, seed=k, seconds=DANCE_SECONDS)
        thirties.append(thirty.timings["generation_s"])
    return {"edit_5s_s": statistics.median(edits), "generate_5s_s": statistics.median(fives),
            "dance_rate_5s_s": statistics.median(thirties) / 6.0}


def timed_dance(client: Any, audio: bytes, **request: Any) -> tuple[Any, float, float, list[Any]]:
    """One 30 s dance through the socket: (result, seconds to the first chunk, seconds to
    the last, the chunks as streamed), timed from the ``generate`` request."""
    chunks: list[Any] = []
    first: list[float] = []
    t0 = time.perf_counter()

    def on_chunk(chunk: Any) -> None:
        if not chunks:
            first.append(time.perf_counter() - t0)
        chunks.append(chunk)

    result = client.generate(audio, seconds=DANCE_SECONDS, on_chunk=on_chunk, **request)
    total = time.perf_counter() - t0
    if result.num_frames != int(DANCE_SECONDS * result.fps):
        raise RuntimeError(f"asked for {DANCE_SECONDS} s, got {result.num_frames} frames")
    return result, first[0], total, chunks


def _per_model(client: Any, samples: np.ndarray, rate: int, repeats: int) -> dict[str, dict[str, Any]]:
    """Each loaded model's 30 s dance, from the request to the first and to the last chunk.

    Fresh audio every time (features included, as for an animator's new song), each
    model's default options: what the Generate button costs with that model chosen.
    """
    out = {}
    for k, model in enumerate(client.hello()["models"]):
        firsts, totals = [], []
        for r in range(repeats):
            _, first, total, _ = timed_dance(client, song_variant(samples, rate, 100 * (k + 1) + r),
                                             model=model["name"], seed=r)
            firsts.append(first)
            totals.append(total)
        out[model["name"]] = {"family": model["family"], "first_chunk_s": statistics.median(firsts),
                              "total_s": statistics.median(totals), "all_firsts": firsts}
    return out


def bench_first_run(samples: np.ndarray, rate: int) -> dict[str, float]:
    """The first start after a fresh install: numba's compile cache empty (a new
    ``NUMBA_CACHE_DIR``), so librosa compiles its kernels. Launch to ready, and launch to
    the first chunk of a 30 s dance requested at once (the warm-up finishes first)."""
    import tempfile

    from backend.server.config import ServerConfig
    from backend.server.process import start_server_process

    with tempfile.TemporaryDirectory(prefix="choreo-numba-") as cache:
        t0 = time.perf_counter()
        server = start_server_process(ServerConfig(device="cpu"), env={"NUMBA_CACHE_DIR": cache})
        ready = time.perf_counter() - t0
        try:
            with server.client(timeout=300) as client:
                first: list[float] = []
                client.generate(song_variant(samples, rate, 500), seed=0,
                                on_chunk=lambda c: first.append(time.perf_counter()) if not first else None)
        finally:
            server.stop()
    return {"first_run_ready_s": ready, "first_run_first_chunk_s": first[0] - t0}


def bench_server(repeats: int, pings: int) -> dict[str, Any]:
    """Everything measured on one warm CPU server; see the module docstring."""
    import soundfile as sf

    from backend.examples import EXAMPLE_SONG
    from backend.server.config import ServerConfig
    from backend.server.process import start_server_process

    samples, rate = sf.read(EXAMPLE_SONG, dtype="float32", always_2d=True)
    samples = samples.mean(axis=1)
    first_run = bench_first_run(samples, rate)
    t0 = time.perf_counter()
    server = start_server_process(ServerConfig(device="cpu"))
    cold = time.perf_counter() - t0
    totals, firsts, generation, chunks = [], [], [], []
    peak = None
    try:
        with server.client(timeout=120) as client:
            client.generate(song_variant(samples, rate, 999)[:200_000], seed=0)  # waits out the warm-up
            for k in range(repeats):
                audio = song_variant(samples, rate, k)
                result, first, total, chunks = timed_dance(client, audio, seed=k)
                firsts.append(first)
                totals.append(total)
                generation.append(result.timings.get("generation_s", float("nan")))
            editing = _editing(client, result, audio, repeats)
            per_model = _per_model(client, samples, rate, repeats)
            idle = ping_latencies(client, pings)
            busy, jobs = busy_ping_latencies(client, song_variant(samples, rate, 1000), pings, DANCE_SECONDS)
        peak = peak_rss_mb(server.proc.pid)
    finally:
        server.stop()
    return {"cold_start_s": cold, **first_run, "warm_30s_dance_s": statistics.median(totals),
            "first_chunk_s": statistics.median(firsts), "runs": repeats,
            "all_totals": totals, "all_firsts": firsts,
            "dance_generation_s": statistics.median(generation), **editing, "per_model": per_model,
            "ping_idle_s": idle, "ping_busy_s": busy, "ping_busy_jobs": jobs,
            "peak_rss_mb": peak, "chunk_frames": [c.num_frames for c in chunks],
            "chunks": chunks}
