"""Generation speed of every registered model, in process, on the CPU and on CUDA if present.

For each model in ``available_models()`` and each device, after one untimed warm-up
window, it times whole dances of several lengths: wall clock from the ``generate``
call to the last chunk, and to the first chunk. The music features are real: the
bundled example song's, analysed once and repeated to the length asked for (a model's
cost may depend on the music, e.g. where a window commits, so random numbers would
not do). Options are each model's defaults. Nothing here knows a model family, so a
new registry entry is benchmarked without a change.

The EDGE-sized reference (``bench_edge_sized``) is the exception: it rebuilds the
default diffusion model at EDGE's published size (random weights: only time is
measured) to show what the small default model buys.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

LENGTHS_FULL = (10.0, 30.0, 120.0, 600.0)
LENGTHS_QUICK = (10.0, 30.0)
GPU_BUDGET_SECONDS = 60.0  # the GPU budget's dance length, added to the lengths on CUDA


def devices() -> list[str]:
    """The CPU, and CUDA when torch sees a GPU."""
    import torch
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@lru_cache(maxsize=1)
def _song_features() -> np.ndarray:
    from backend.examples import EXAMPLE_SONG
    from backend.music.audio import decode_audio
    from backend.music.features import FEATURE_SAMPLE_RATE, analyse_music
    return np.array(analyse_music(decode_audio(EXAMPLE_SONG.read_bytes(), FEATURE_SAMPLE_RATE)).features)


def music_features(frames: int) -> np.ndarray:
    """(frames, D) float32 features of the example song, repeated as often as needed."""
    song = _song_features()
    return np.ascontiguousarray(np.resize(song, (frames, song.shape[1])), dtype=np.float32)


def default_options(generator: Any) -> dict[str, Any]:
    return {o.name: o.default for o in generator.options}


def _fastest_options(generator: Any) -> dict[str, Any]:
    """Defaults with ``steps`` (if the model has it) at its minimum: enough to warm up."""
    options = default_options(generator)
    for o in generator.options:
        if o.name == "steps" and o.minimum is not None:
            options["steps"] = int(o.minimum)
    return options


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch
        torch.cuda.synchronize()


def time_generation(generator: Any, seconds: float, options: dict[str, Any], device: str,
                    repeats: int = 1) -> dict[str, Any]:
    """Best-of-``repeats`` seconds to the last and to the first chunk of a dance of ``seconds``.

    On CUDA also the peak of ``torch.cuda.max_memory_allocated`` over the repeats (MB).
    """
    from backend.models.base import GenerationRequest
    import torch

    cuda = device.startswith("cuda")
    features = music_features(int(round(seconds * generator.fps)))
    walls, firsts, chunks = [], [], 0
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for _ in range(repeats):
        first = None
        chunks = 0
        _sync(device)
        t0 = time.perf_counter()
        for _chunk in generator.generate(GenerationRequest(features, seed=0, options=dict(options)),
                                         lambda: False, lambda stage, fraction: None):
            chunks += 1
            if first is None:
                _sync(device)
                first = time.perf_counter() - t0
        _sync(device)
        walls.append(time.perf_counter() - t0)
        firsts.append(first if first is not None else float("nan"))
    return {"seconds": float(seconds), "wall_s": min(walls), "first_chunk_s": min(firsts),
            "all_wall_s": walls, "repeats": repeats, "chunks": chunks,
            "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None}


def _parameters(generator: Any) -> int | None:
    model = getattr(generator, "model", None)
    if model is None or not hasattr(model, "parameters"):
        return None
    return int(sum(p.numel() for p in model.parameters()))


def warm_up(generator: Any, device: str) -> None:
    """One short untimed dance, so first-call costs (allocations, kernel choice) stay out."""
    from backend.models.base import GenerationRequest
    features = music_features(int(5 * generator.fps))
    for _ in generator.generate(GenerationRequest(features, seed=0, options=_fastest_options(generator)),
                                lambda: False, lambda stage, fraction: None):
        pass
    _sync(device)


def _best_of(timed: list[dict[str, Any]]) -> dict[str, Any]:
    """One length's repeats (``time_generation`` rows of one repeat each) as one best-of row."""
    walls = [w for t in timed for w in t["all_wall_s"]]
    peaks = [t["cuda_peak_mb"] for t in timed if t["cuda_peak_mb"] is not None]
    return {**timed[0], "wall_s": min(walls), "first_chunk_s": min(t["first_chunk_s"] for t in timed),
            "all_wall_s": walls, "repeats": len(walls), "cuda_peak_mb": max(peaks) if peaks else None}


def bench_model(name: str, device: str, lengths: Sequence[float], repeats: int) -> dict[str, Any]:
    """One model on one device: a row per dance length."""
    from backend.models.registry import MODELS, load_generator

    generator = load_generator(name, device=device)
    warm_up(generator, device)
    options = default_options(generator)
    # The repeats go round the lengths (10, 30, 120, 600, 10, 30, ...), not one length at a
    # time: this 2-core machine has slow spells (the same 30 s dance took 1.75 s or 2.55 s in
    # one process, for tens of seconds at a stretch), and back-to-back repeats of one length
    # can both fall in one, which reads as cost growing with length when it does not.
    rounds = [[time_generation(generator, s, options, device, 1) for s in lengths] for _ in range(repeats)]
    rows = [_best_of([r[i] for r in rounds]) for i in range(len(lengths))]
    return {"model": name, "family": MODELS[name].family, "device": device,
            "parameters": _parameters(generator), "options": options, "lengths": rows}


def bench_edge_sized(device: str, seconds: float) -> dict[str, Any]:
    """The default diffusion model's code at EDGE's size: 8 layers, width 512, 8 heads,
    50 DDIM steps, guidance 2 (random weights), timed for ``seconds`` of dance."""
    import torch

    from backend.models.edge import EdgeConfig, EdgeDenoiser
    from backend.models.edge_generator import EdgeGenerator
    from backend.models.registry import load_generator
    from backend.motion.normalizer import Normalizer

    default = load_generator("edge", device=device)
    config = EdgeConfig(d_model=512, num_layers=8, num_heads=8, ff_mult=2,
                        window_frames=default.cfg.window_frames)
    torch.manual_seed(0)
    big = EdgeDenoiser(config)
    channels = default.layout.num_channels
    identity = Normalizer(torch.zeros(channels), torch.ones(channels))
    edge_sized = EdgeGenerator(big, identity, name="edge-sized", device=device)
    warm_up(edge_sized, device)
    timed = time_generation(edge_sized, seconds, {"steps": 50, "guidance": 2.0}, device)
    return {"device": device, "parameters": _parameters(edge_sized), "seconds": seconds,
            "wall_s": timed["wall_s"], "s_per_dance_s": timed["wall_s"] / seconds,
            "default_config": default.cfg.to_dict(), "default_parameters": _parameters(default)}


def bench_models(quick: bool, models: Sequence[str] | None = None) -> dict[str, Any]:
    """Every registered model (or ``models``) on every device, and the EDGE-sized reference."""
    from backend.models.registry import DEFAULT_MODEL, available_models

    lengths = LENGTHS_QUICK if quick else LENGTHS_FULL
    repeats = 1 if quick else 3
    runs = []
    for device in devices():
        device_lengths = sorted(set(lengths) | ({GPU_BUDGET_SECONDS} if device == "cuda" else set()))
        for name in models or available_models():
            print(f"  model {name} on {device}: {', '.join(f'{s:g}' for s in device_lengths)} s", flush=True)
            runs.append(bench_model(name, device, device_lengths, repeats))
    edge_seconds = 5.0 if quick else 10.0
    edge_sized = [bench_edge_sized(device, edge_seconds) for device in devices()]
    return {"default_model": DEFAULT_MODEL, "runs": runs, "edge_sized": edge_sized}
