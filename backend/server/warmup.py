"""A warm-up run at start, so that the first real request does not pay first-call costs.

The first librosa call compiles numba kernels (about 25 s on a fresh install, whose
numba cache is empty; a few seconds later on) and the first model forward allocates
and (on a GPU) picks kernels. The server pays it once: it analyses a short synthetic
click track in a thread from the moment it starts loading its models (``warm_music``),
writes its connection file as soon as the models are loaded, and its worker runs each
model for one sampling step on the click track (``warm_models``) before it takes the
first job. So "ready" comes fast even on a first run, and no job pays the warm-up
twice: a job sent meanwhile waits in the queue.
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any, Callable, Mapping

import numpy as np
import soundfile as sf

from backend.models.base import GenerationRequest, Generator

log = logging.getLogger("choreo.server")


def click_track_wav(seconds: float = 3.0, sample_rate: int = 22050, bpm: float = 120.0) -> bytes:
    """WAV bytes of clicks on the beat over a quiet tone: something with a clear tempo."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = 0.1 * np.sin(2 * np.pi * 220.0 * t)
    beat = 60.0 / bpm
    since_beat = np.mod(t, beat)
    audio += 0.8 * np.exp(-since_beat * 60.0) * np.sin(2 * np.pi * 1000.0 * t)
    out = io.BytesIO()
    sf.write(out, audio.astype(np.float32), sample_rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def _fastest_options(generator: Generator) -> dict[str, Any]:
    """The model's defaults, with ``steps`` at its minimum: a warm-up only needs one forward."""
    options = {o.name: o.default for o in generator.options}
    for o in generator.options:
        if o.name == "steps" and o.minimum is not None:
            options["steps"] = int(o.minimum)
    return options


def warm_up(generators: Mapping[str, Generator], analyse: Callable[[bytes], Any],
            analysis: Any = None) -> float:
    """Run features and every model once on a click track; returns the seconds it took.

    ``analyse`` takes the same path as an upload (decode, resample, features), so it
    compiles everything ``backend.music.features.warm_up`` would; no need to run both.
    ``analysis``: the click track already analysed (``warm_music``, run beside the
    model loading), so only the models are left to warm up.
    """
    t0 = time.monotonic()
    if analysis is None:
        analysis = warm_music(analyse)
    warm_models(generators, analysis)
    return time.monotonic() - t0


def warm_music(analyse: Callable[[bytes], Any]) -> Any:
    """Analyse the click track: librosa's imports and numba kernels, no torch. The server
    runs this in a thread while it loads the models, so the two costs overlap."""
    return analyse(click_track_wav())


def warm_models(generators: Mapping[str, Generator], analysis: Any) -> None:
    """One short dance per model on the analysed click track."""
    for name, generator in generators.items():
        request = GenerationRequest(music_features=np.array(analysis.features), seed=0,
                                    options=_fastest_options(generator))
        for _ in generator.generate(request, lambda: False, lambda stage, fraction: None):
            pass
        log.info("warmed up model %s", name)
