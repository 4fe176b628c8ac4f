"""Checks on a ``generate`` or ``inpaint`` request, done before the job is accepted.

Everything that can be judged without decoding the audio is judged here, on the
I/O thread, so a typo in an option comes back at once as ``bad_option`` instead
of after a place in the queue. Whether ``start``/``seconds`` fall inside the song
needs the song's length, so ``resolve_range`` runs later, on the worker.
"""

from __future__ import annotations

import math
import secrets
from typing import Any, Callable, Mapping

import numpy as np

from backend.editing import masks
from backend.errors import InputError
from backend.models.base import Generator, OptionSpec
from backend.music.cache import content_hash
from backend.server.jobs import GenerateSpec, InpaintSpec
from protocol.errors import ChoreoError
from protocol.messages import Message

MAX_SEED = 2**32 - 1
RETIRED_FIELDS = ("steps", "guidance")
"""Model options that protocol 1.0-1.3 also took at the top level of a request. Since 1.4
they go in ``options`` only; a top-level value is refused, never silently dropped."""


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
        raise ChoreoError("bad_message", f"{message.type} needs an 'audio' buffer with the sound file's bytes")
    if audio.dtype != np.uint8 or audio.ndim != 1:
        raise ChoreoError("bad_message", f"the audio buffer must be 1-D |u1 bytes, got "
                          f"{audio.dtype.str}{list(audio.shape)}")
    if audio.size == 0:
        raise ChoreoError("audio_empty", "the audio buffer is empty")
    return audio.tobytes()


def _model_seed_options(c: dict[str, Any], generators: Mapping[str, Generator],
                        default_model: str) -> tuple[str, int, dict[str, Any]]:
    """The model, seed and checked options of a generate or inpaint request."""
    model = c.get("model")
    if model is None:
        model = default_model
    elif not isinstance(model, str) or not model:  # false, 0, "", [] or {} is no model name
        raise ChoreoError("bad_option", f"model must be a model's name or null (the default), "
                          f"got {model!r:.80}")
    if model not in generators:
        raise ChoreoError("unknown_model", f"model {model!r:.80} is not loaded; this backend has "
                          f"{sorted(generators)}")
    seed = c.get("seed")
    if seed is None:
        seed = secrets.randbelow(MAX_SEED + 1)
    elif not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED):
        raise ChoreoError("bad_option", f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")
    options = c.get("options")
    if options is None:
        options = {}
    elif not isinstance(options, dict):  # false, 0, "" or [] is not "no options"
        raise ChoreoError("bad_option", f"options must be a JSON object, got {options!r:.80}")
    _refuse_retired_fields(c)
    specs = generators[model].options
    return model, int(seed), check_options(specs, options)


def _refuse_retired_fields(c: dict[str, Any]) -> None:
    """``bad_option`` naming a top-level ``steps`` or ``guidance`` (see RETIRED_FIELDS).

    A null is let through: 1.3 clients send ``"steps": null`` with every request, and it
    meant "the model's default", as leaving the option out of ``options`` does. Any
    other value is refused, so an older client that asked for 4 steps learns that it
    did not get them instead of silently getting the model's default.
    """
    for name in RETIRED_FIELDS:
        if c.get(name) is not None:
            raise ChoreoError("bad_option", f"{name!r} is no longer read at the top level of a request "
                              f"(protocol 1.4): send it in options, as {{\"options\": {{\"{name}\": ...}}}}")


def _start(c: dict[str, Any]) -> float:
    start = c.get("start", 0.0)
    start = 0.0 if start is None else start
    if not _is_number(start) or not 0 <= start <= MAX_SPAN_SECONDS:
        raise ChoreoError("bad_range", f"start must be a number of seconds >= 0, got {start!r:.40}")
    return float(start)


def parse_generate(message: Message, generators: Mapping[str, Generator],
                   default_model: str) -> GenerateSpec:
    """A ``GenerateSpec`` from a request's content, or a ``ChoreoError`` naming the bad field."""
    c = message.content
    model, seed, options = _model_seed_options(c, generators, default_model)
    start = _start(c)
    seconds = c.get("seconds")
    if seconds is not None and (not _is_number(seconds) or not 0 < seconds <= MAX_SPAN_SECONDS):
        raise ChoreoError("bad_range", f"seconds must be null (to the end) or > 0, got {seconds!r:.40}")
    return GenerateSpec(model=model, seed=seed, start=start,
                        seconds=None if seconds is None else float(seconds), options=options)


def _float_buffer(message: Message, name: str, required: bool = True) -> np.ndarray | None:
    """A motion buffer as a private float32 array (``<f4`` or ``<f8`` on the wire)."""
    array = message.buffers.get(name)
    if array is None:
        if required:
            raise ChoreoError("bad_message", f"inpaint needs a {name!r} buffer")
        return None
    if array.dtype.str not in ("<f4", "<f8"):
        raise ChoreoError("bad_motion", f"{name} must be <f4 (or <f8), got {array.dtype.str}")
    return np.array(array, dtype=np.float32)


def _editing_abilities(generator: Generator) -> list[str]:
    editing = generator.describe().get("editing") or {}
    return list(editing.get("abilities", [])) if editing.get("inpaint") else []


def parse_inpaint(message: Message, generators: Mapping[str, Generator], default_model: str,
                  cached: Callable[[str], bool], max_seconds: float) -> tuple[InpaintSpec, bytes]:
    """An ``InpaintSpec`` and the audio bytes (empty when named by hash) of an inpaint
    request, or a ``ChoreoError`` naming what is wrong.

    ``cached(hash)`` says whether the server still holds that audio's analysis;
    ``max_seconds`` (the longest song) bounds the motion before any copy of it is made.
    The arrays in the spec are read-only: the server copies kept values back from them.
    """
    c = message.content
    model, seed, options = _model_seed_options(c, generators, default_model)
    start = _start(c)
    generator = generators[model]
    max_frames = int(max_seconds * generator.fps) + 1
    sent = message.buffers.get("rotations")
    if sent is not None and sent.ndim >= 1 and sent.shape[0] > max_frames:
        raise ChoreoError("bad_motion", f"the motion has {sent.shape[0]} frames; no song this backend "
                          f"accepts is longer than {max_frames}")
    rotations = _float_buffer(message, "rotations")
    root = _float_buffer(message, "root_translation")
    contacts = _float_buffer(message, "contacts", required=False)
    if "keep" not in message.buffers:
        raise ChoreoError("bad_message", "inpaint needs a 'keep' buffer: (frames, 25) booleans")
    try:
        frames = masks.check_motion(rotations, root, contacts, len(generator.contact_names))
        keep = masks.check_keep(message.buffers["keep"], frames)
        first, stop = masks.edited_span(keep)  # the span returned: keyframes lie inside it
        keyframe_buffers = ("keyframe_frames", "keyframe_rotations", "keyframe_root_translation")
        given = [name in message.buffers for name in keyframe_buffers]
        if any(given) and not all(given):
            raise ChoreoError("bad_message", f"keyframes need all three buffers {list(keyframe_buffers)}")
        if all(given):
            rotations, root, keep = masks.apply_keyframes(
                rotations, root, keep, message.buffers["keyframe_frames"],
                _float_buffer(message, "keyframe_rotations"),
                _float_buffer(message, "keyframe_root_translation"))
        masks.check_unit(rotations, keep)
        masks.check_abilities(model, _editing_abilities(generator), keep)
    except InputError as exc:
        raise ChoreoError(exc.code, exc.message) from None
    audio_hash = c.get("audio_hash")
    if "audio" in message.buffers:
        audio = audio_bytes(message)
        if audio_hash is not None and audio_hash != content_hash(audio):
            raise ChoreoError("bad_message", "audio_hash is not the sha256 of the audio buffer "
                              "(send one or the other)")
        audio_hash = None
    elif audio_hash is None:
        raise ChoreoError("bad_message", "inpaint needs the audio: an 'audio' buffer, or 'audio_hash' "
                          "naming audio the server analysed before")
    elif not (isinstance(audio_hash, str) and len(audio_hash) == 64
              and all(ch in "0123456789abcdef" for ch in audio_hash)):
        raise ChoreoError("bad_message", f"audio_hash must be 64 lowercase hex digits (sha256), "
                          f"got {audio_hash!r:.80}")
    elif not cached(audio_hash):
        raise ChoreoError("audio_not_cached", f"the backend no longer holds audio {audio_hash[:12]}…; "
                          "send the audio bytes again")
    else:
        audio = b""
    for array in (rotations, root, contacts, keep):
        if array is not None:
            array.setflags(write=False)
    spec = InpaintSpec(model=model, seed=seed, start=start, options=options, rotations=rotations,
                       root_translation=root, contacts=contacts, keep=keep, edit_start=first,
                       edit_stop=stop, audio_hash=audio_hash)
    return spec, audio


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
