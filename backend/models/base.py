"""What every generator offers the server: one small interface, whatever the family.

The server knows nothing of diffusion or autoregression. It hands a generator the
music features of the requested span and a seed, and streams whatever
``MotionChunk``s come back. Generators check ``should_stop`` between sampling
steps, which is how ``cancel`` and a vanished client stop a job within one step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class MotionChunk:
    """Finished frames ``[start, start + n)`` of a dance, ready to stream.

    rotations: (n, 24, 4) float32 local joint rotations, unit quaternions (w, x, y, z)
    root_translation: (n, 3) float32 pelvis world position, metres, Z-up
    contacts: (n, C) float32 contact probabilities in [0, 1], one column per contact joint
    """

    start: int
    rotations: np.ndarray
    root_translation: np.ndarray
    contacts: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])


@dataclass(frozen=True)
class OptionSpec:
    """One model option as ``hello`` advertises it (the add-on builds its UI from this)."""

    name: str
    type: str  # "int" | "float" | "bool" | "choice"
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "default": self.default,
                               "description": self.description}
        if self.minimum is not None:
            out["min"] = self.minimum
        if self.maximum is not None:
            out["max"] = self.maximum
        if self.choices:
            out["choices"] = list(self.choices)
        return out


@dataclass
class GenerationRequest:
    """Everything a generator needs for one dance.

    music_features: (T, D) float32 per-frame music features at the generator's fps;
        the dance has exactly T frames.
    seed: makes the run reproducible.
    options: model options, already validated against ``Generator.options``.
    """

    music_features: np.ndarray
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class EditRequest:
    """Everything a generator needs to regenerate part of an existing dance.

    music_features: (T, D) float32 music features of the motion's frames.
    rotations: (T, 24, 4) float32 current local rotations, unit quaternions w-first.
    root_translation: (T, 3) float32 current pelvis position, metres, Z-up.
    contacts: (T, C) float32 current contact labels, or None (the model derives them).
    keep: (T, 25) bool, True where the current value stays (backend.editing.masks);
        keyframe poses are already written into the motion and kept.
    span: (first, stop) of the frames to make and stream: ``edited_span`` of the mask
        before its keyframes were added (a keyframe on a border stays inside it).
    """

    music_features: np.ndarray
    rotations: np.ndarray
    root_translation: np.ndarray
    contacts: np.ndarray | None
    keep: np.ndarray
    span: tuple[int, int]
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)


ProgressCallback = Callable[[str, float], None]
StopCheck = Callable[[], bool]


class Generator(Protocol):
    """A loaded model that turns music features into streamed motion."""

    name: str
    family: str  # "diffusion" | "autoregressive"
    fps: int
    contact_names: tuple[str, ...]
    options: tuple[OptionSpec, ...]

    def describe(self) -> dict[str, Any]:
        """Capabilities for ``hello``: family, fps, options, and ``editing``:
        ``{"inpaint": bool, "abilities": [...]}`` (backend.editing.masks.ABILITIES)."""
        ...

    def generate(
        self, request: GenerationRequest, should_stop: StopCheck, on_progress: ProgressCallback
    ) -> Iterator[MotionChunk]:
        """Yield finished chunks in frame order, covering frames [0, T) exactly once."""
        ...

    def edit(
        self, request: EditRequest, should_stop: StopCheck, on_progress: ProgressCallback
    ) -> Iterator[MotionChunk]:
        """Yield finished chunks covering ``request.span`` exactly once, in frame order,
        ``start`` counted from the motion's frame 0.

        Only called for masks within ``describe()["editing"]["abilities"]``; the server
        copies kept values back bit for bit, so a model only has to make the rest fit.
        """
        ...


def description(generator: Generator, abilities: Sequence[str], **extra: Any) -> dict[str, Any]:
    """``describe()`` as every model shares it: what ``hello`` lists and the Blender panel
    builds its options from; ``extra`` adds the model's own facts (window length,
    checkpoint, ...). Every model edits by keeping values (inpaint), within ``abilities``."""
    return {
        "name": generator.name,
        "family": generator.family,
        "fps": generator.fps,
        "contact_names": list(generator.contact_names),
        "options": [o.to_dict() for o in generator.options],
        "editing": {"inpaint": True, "abilities": list(abilities)},
        **extra,
    }


class Cancelled(Exception):
    """Raised inside a generator when ``should_stop`` turned true."""
