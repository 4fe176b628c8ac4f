"""Backend speed, measured the way an animator meets it; writes docs/benchmarks.md.

Run it with ``choreo bench`` (or ``python benchmarks/bench_backend.py``). Every figure
in docs/benchmarks.md comes from this script, on the machine that ran it.

What it measures:

1. cold start: from launching ``python -m backend.server`` to its connection file
   (models loaded and warmed up), budget 5 s;
2. a warm server, through the real socket: a 30 s song in, 30 s of dance out,
   music features included (each request sends audio the server has not cached),
   budget 10 s; and from the ``generate`` request to the first ``motion_chunk``,
   budget 1.5 s;
3. in-process generation speed of the default model for 10, 30 and 120 s of dance
   (is the cost linear in length?);
4. the same code in an EDGE-sized configuration (8 layers, width 512, 8 heads,
   50 DDIM steps, guidance on; random weights, since only time is measured), timed
   in the same run, to show what the small default model buys.
"""

from __future__ import annotations

import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BUDGETS = {
    "cold_start_s": 5.0,
    "warm_30s_dance_s": 10.0,
    "first_chunk_s": 1.5,
}


def _song_variant(samples: np.ndarray, sr: int, k: int) -> bytes:
    """The example song with inaudible noise, so each request misses the feature cache."""
    import soundfile as sf
    rng = np.random.default_rng(k)
    noisy = samples + 1e-4 * rng.standard_normal(samples.shape).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, noisy, sr, format="WAV", subtype="FLOAT")
    return buf.getvalue()


def bench_server(repeats: int) -> dict:
    import soundfile as sf

    from backend.cli import EXAMPLE_SONG
    from backend.server.config import ServerConfig
    from backend.server.process import start_server_process

    samples, sr = sf.read(EXAMPLE_SONG, dtype="float32", always_2d=True)
    samples = samples.mean(axis=1)
    t0 = time.perf_counter()
    server = start_server_process(ServerConfig(device="cpu"))
    cold = time.perf_counter() - t0
    totals, firsts, server_totals = [], [], []
    try:
        with server.client(timeout=120) as client:
            for k in range(repeats):
                audio = _song_variant(samples, sr, k)
                first: list[float] = []
                t0 = time.perf_counter()
                result = client.generate(audio, seed=k, seconds=30.0,
                                         on_chunk=lambda c: first or first.append(time.perf_counter() - t0))
                totals.append(time.perf_counter() - t0)
                firsts.append(first[0])
                server_totals.append(result.timings.get("total_s", float("nan")))
                assert result.num_frames == 900, result.num_frames
            editing = _bench_editing(client, result, audio, repeats)
    finally:
        server.stop()
    return {"cold_start_s": cold, "warm_30s_dance_s": statistics.median(totals),
            "first_chunk_s": statistics.median(firsts), "runs": repeats,
            "all_totals": totals, "all_firsts": firsts,
            "dance_generation_s": statistics.median(server_totals), **editing}


def _bench_editing(client, dance, audio: bytes, repeats: int) -> dict:
    """An edit of a 5 s range of the 30 s dance against generating 5 s, same server.

    Both are timed by the server (``timings.generation_s``: the model's work, no
    analysis, no transfer): the edit of frames 300:450 (audio by hash), a stand-alone
    5 s dance from 10 s into the same song, and 5 s at the rate of a 30 s dance.
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
        thirty = client.generate(audio, seed=k, seconds=30.0)
        thirties.append(thirty.timings["generation_s"])
    return {"edit_5s_s": statistics.median(edits), "generate_5s_s": statistics.median(fives),
            "dance_rate_5s_s": statistics.median(thirties) / 6.0}


def _time_generation(generator, seconds: float, options: dict, repeats: int = 1) -> float:
    from backend.models.base import GenerationRequest
    frames = int(seconds * generator.fps)
    features = np.random.default_rng(0).standard_normal((frames, 35)).astype(np.float32)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in generator.generate(GenerationRequest(features, seed=0, options=options),
                                    lambda: False, lambda s, f: None):
            pass
        best = min(best, time.perf_counter() - t0)
    return best


def bench_models(quick: bool) -> dict:
    import torch

    from backend.models.edge import EdgeConfig, EdgeDenoiser
    from backend.models.edge_generator import EdgeGenerator
    from backend.models.registry import load_generator
    from backend.motion.normalizer import Normalizer

    default = load_generator("edge", device="cpu")
    lengths = [10.0, 30.0] if quick else [10.0, 30.0, 120.0]
    scaling = {s: _time_generation(default, s, {}, repeats=1 if quick else 2) for s in lengths}

    edge_cfg = EdgeConfig(d_model=512, num_layers=8, num_heads=8, ff_mult=2,
                          window_frames=default.cfg.window_frames)
    torch.manual_seed(0)
    big = EdgeDenoiser(edge_cfg)
    channels = default.layout.num_channels
    identity = Normalizer(torch.zeros(channels), torch.ones(channels))
    edge_sized = EdgeGenerator(big, identity, name="edge-sized", device="cpu")
    edge_seconds = 5.0 if quick else 10.0
    edge_time = _time_generation(edge_sized, edge_seconds, {"steps": 50, "guidance": 2.0})
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return {
        "default_config": default.cfg.to_dict(),
        "default_params": params(default.model),
        "default_options": {o.name: o.default for o in default.options},
        "scaling": scaling,
        "edge_sized_params": params(big),
        "edge_sized_seconds": edge_seconds,
        "edge_sized_time": edge_time,
    }


def _machine() -> str:
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


def write_report(out: Path, server: dict, models: dict, command: str) -> bool:
    edit_ok = server["edit_5s_s"] <= server["dance_rate_5s_s"]
    ok = all(server[k] <= v for k, v in BUDGETS.items()) and edit_ok
    verdict = lambda k: "pass" if server[k] <= BUDGETS[k] else "FAIL"  # noqa: E731
    s = models["scaling"]
    lengths = sorted(s)
    per_second = {k: v / k for k, v in s.items()}
    linear = max(per_second.values()) / min(per_second.values())
    default_rate = s[lengths[0]] / lengths[0]
    edge_rate = models["edge_sized_time"] / models["edge_sized_seconds"]
    cfg = models["default_config"]
    lines = [
        "# Benchmarks",
        "",
        f"Made by `{command}` on {time.strftime('%Y-%m-%d')}; machine: {_machine()}.",
        "Every number below comes from that one run; rerun the command to check them.",
        "",
        "## Budgets (default model, CPU, warm server, through the real socket)",
        "",
        "| what | measured | budget | |",
        "|---|---|---|---|",
        f"| backend cold start to ready (models loaded, warmed up) | {server['cold_start_s']:.2f} s | "
        f"≤ {BUDGETS['cold_start_s']:.1f} s | {verdict('cold_start_s')} |",
        f"| 30 s of dance from a 30 s song, features included (median of {server['runs']}) | "
        f"{server['warm_30s_dance_s']:.2f} s | ≤ {BUDGETS['warm_30s_dance_s']:.1f} s | {verdict('warm_30s_dance_s')} |",
        f"| `generate` request to first `motion_chunk` (median of {server['runs']}) | "
        f"{server['first_chunk_s']:.2f} s | ≤ {BUDGETS['first_chunk_s']:.1f} s | {verdict('first_chunk_s')} |",
        "",
        "## Editing cost (default model, same server, model time as the server reports it)",
        "",
        "| what | seconds |",
        "|---|---|",
        f"| edit of a 5 s range (frames 300:450 of a 30 s dance, every joint; median of {server['runs']}) | "
        f"{server['edit_5s_s']:.3f} |",
        f"| 5 s of a 30 s dance (a sixth of its generation time; median of {server['runs']}) | "
        f"{server['dance_rate_5s_s']:.3f} |",
        f"| a stand-alone 5 s dance (one window, no overlap; median of {server['runs']}) | "
        f"{server['generate_5s_s']:.3f} |",
        "",
        f"Budget: an edit of 5 s costs no more than generating 5 s of dance: "
        f"{server['edit_5s_s']:.3f} s against {server['dance_rate_5s_s']:.3f} s, "
        f"{'pass' if edit_ok else 'FAIL'}. Same sampler, same 20 steps. The edit samples one "
        f"window of the 5 s plus 1 s of kept context on each side, so it costs "
        f"{server['edit_5s_s'] / server['generate_5s_s']:.2f}x a stand-alone 5 s window, which has "
        "no context at all (docs/editing.md).",
        "",
        "## Generation cost against dance length (default model, in process)",
        "",
        f"Default model: width {cfg['d_model']}, {cfg['num_layers']} layers, {cfg['num_heads']} heads, "
        f"{models['default_params'] / 1e6:.2f} M parameters, {cfg['window_frames']}-frame windows, "
        f"options {models['default_options']}.",
        "",
        "| dance length | wall clock | seconds of dance per second |",
        "|---|---|---|",
        *[f"| {k:.0f} s | {s[k]:.2f} s | {k / s[k]:.1f} |" for k in lengths],
        "",
        f"Cost per second of dance varies by a factor of {linear:.2f} across lengths (1.00 = exactly linear).",
        "",
        "## EDGE-sized reference, same code, same run",
        "",
        f"8 layers, width 512, 8 heads ({models['edge_sized_params'] / 1e6:.1f} M parameters), "
        f"50 DDIM steps, guidance 2: {models['edge_sized_time']:.1f} s for "
        f"{models['edge_sized_seconds']:.0f} s of dance, {edge_rate:.2f} s per second of dance, "
        f"{edge_rate / default_rate:.0f}x the default model's {default_rate:.3f} s per second.",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    return ok


def run(out: Path = REPO / "docs" / "benchmarks.md", quick: bool = False) -> int:
    server = bench_server(repeats=2 if quick else 5)
    print(f"server: {server}", flush=True)
    models = bench_models(quick)
    print(f"models: {models}", flush=True)
    command = "choreo bench" + (" --quick" if quick else "")
    ok = write_report(Path(out), server, models, command)
    print(f"wrote {out} ({'all budgets met' if ok else 'a budget was missed'})")
    return 0


if __name__ == "__main__":
    sys.exit(run(quick="--quick" in sys.argv))
