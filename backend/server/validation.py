"""Checks on a ``generate`` request, done before the job is accepted.

Everything that can be judged without decoding the audio is judged here, on the
I/O thread, so a typo in an option comes back at once as ``bad_option`` instead
of after a place in the queue. Whether ``start``/``seconds`` fall inside the song
needs the song's length, so ``resolve_range`` runs later, on the worker.
"""

from __future__ import annotations

import math
import secrets
from typing import Any, Mapping

import numpy as np

from backend.models.base import Generator, OptionSpec
from backend.server.jobs import GenerateSpec
from protocol.errors import ChoreoError
from protocol.messages import Message

MAX_SEED = 2**32 - 1
TOP_LEVEL_OPTIONS = ("steps", "guidance")
"""Request fields that are also model options: they are checked by the model's OptionSpec."""


MAX_SPAN_SECONDS = 1e6
"""start/seconds above this are refused as bad_range before any arithmetic (no song is that long)."""


def _is_number(value: Any) -> bool:
    """A finite JSON number (a huge integer such as 10**400 is not: it has no float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def check_option(spec: OptionSpec, value: Any) -> Any:
    """``value`` converted to the option's type, or ``bad_option`` saying what is wrong."""
    where = f"option {spec.name!r}"
    if spec.type == "bool":
        if not isinstance(value, bool):
            raise ChoreoError("bad_option", f"{where} must be true or false, got {value!r}")
        return value
    if spec.type == "choice":
        if value not in spec.choices:
            raise ChoreoError("bad_option", f"{where} must be one of {list(spec.choices)}, got {value!r}")
        return value
    if spec.type == "int":
        if not (isinstance(value, int) and not isinstance(value, bool)):
            raise ChoreoError("bad_option", f"{where} must be an integer, got {value!r}")
    elif spec.type == "float":
        if not _is_number(value):
            raise ChoreoError("bad_option", f"{where} must be a finite number, got {value!r}")
        value = float(value)
    else:
        raise ChoreoError("internal", f"{where} has an unknown type {spec.type!r}")
    if spec.minimum is not None and value < spec.minimum:
        raise ChoreoError("bad_option", f"{where} must be >= {spec.minimum}, got {value}")
    if spec.maximum is not None and value > spec.maximum:
        raise ChoreoError("bad_option", f"{where} must be <= {spec.maximum}, got {value}")
    return value


def check_options(specs: tuple[OptionSpec, ...], given: Mapping[str, Any]) -> dict[str, Any]:
    """All of a model's options: the given ones checked, the rest at their defaults."""
    known = {s.name: s for s in specs}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ChoreoError("bad_option", f"unknown option(s) {unknown}; this model has {sorted(known)}")
    return {name: check_option(spec, given[name]) if name in given else spec.default
            for name, spec in known.items()}


def audio_bytes(message: Message) -> bytes:
    """The ``audio`` buffer of a generate request as bytes (copied out of the frame)."""
    audio = message.buffers.get("audio")
    if audio is None:
        raise ChoreoError("bad_message", "generate needs an 'audio' buffer with the sound file's bytes")
    if audio.dtype != np.uint8 or audio.ndim != 1:
        raise ChoreoError("bad_message", f"the audio buffer must be 1-D |u1 bytes, got "
                          f"{audio.dtype.str}{list(audio.shape)}")
    if audio.size == 0:
        raise ChoreoError("audio_empty", "the audio buffer is empty")
    return audio.tobytes()


def parse_generate(message: Message, generators: Mapping[str, Generator],
                   default_model: str) -> GenerateSpec:
    """A ``GenerateSpec`` from a request's content, or a ``ChoreoError`` naming the bad field."""
    c = message.content
    model = c.get("model") or default_model
    if not isinstance(model, str) or model not in generators:
        raise ChoreoError("unknown_model", f"model {model!r} is not loaded; this backend has "
                          f"{sorted(generators)}")
    seed = c.get("seed")
    if seed is None:
        seed = secrets.randbelow(MAX_SEED + 1)
    elif not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED):
        raise ChoreoError("bad_option", f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")
    start = c.get("start", 0.0)
    start = 0.0 if start is None else start
    if not _is_number(start) or not 0 <= start <= MAX_SPAN_SECONDS:
        raise ChoreoError("bad_range", f"start must be a number of seconds >= 0, got {start!r:.40}")
    seconds = c.get("seconds")
    if seconds is not None and (not _is_number(seconds) or not 0 < seconds <= MAX_SPAN_SECONDS):
        raise ChoreoError("bad_range", f"seconds must be null (to the end) or > 0, got {seconds!r:.40}")
    options = c.get("options") or {}
    if not isinstance(options, dict):
        raise ChoreoError("bad_option", "options must be a JSON object")
    options = dict(options)
    specs = generators[model].options
    for name in TOP_LEVEL_OPTIONS:
        value = c.get(name)
        if value is None:
            continue
        if name not in {s.name for s in specs}:
            raise ChoreoError("bad_option", f"model {model!r} has no {name!r} (it is "
                              f"{generators[model].family}); leave it null")
        options[name] = value
    return GenerateSpec(model=model, seed=int(seed), start=float(start),
                        seconds=None if seconds is None else float(seconds),
                        options=check_options(specs, options))


def resolve_range(start: float, seconds: float | None, total_frames: int, fps: int,
                  num_frames: Any) -> tuple[int, int]:
    """``(first frame, frame count)`` of the requested span of a song of ``total_frames``.

    A span may overshoot the end by half a frame (rounding); beyond that it is a
    ``bad_range``, as is a start at or past the end.
    """
    duration = total_frames / fps
    first = int(round(start * fps))
    if first >= total_frames:
        raise ChoreoError("bad_range", f"start {start:g} s is at or past the end of the song "
                          f"({duration:.2f} s)")
    if seconds is None:
        return first, total_frames - first
    count = int(num_frames(seconds, fps))
    if first + count > total_frames:
        if start + seconds > duration + 0.5 / fps:
            raise ChoreoError("bad_range", f"start {start:g} s + seconds {seconds:g} s runs past the "
                              f"end of the song ({duration:.2f} s)")
        count = total_frames - first
    if count < 1:
        raise ChoreoError("bad_range", f"seconds {seconds:g} is shorter than one frame at {fps} fps")
    return first, count
