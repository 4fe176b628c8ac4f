"""Foot-contact labels to planting targets (pure numpy; no bpy).

The backend sends, with every chunk, a contact label in [0, 1] per contact joint
(``left_ankle``, ``left_foot``, ``right_ankle``, ``right_foot``: the heel and the ball
of each foot). The add-on keeps them as animated custom properties and plants the
feet from them (``core.leg_ik``). This module holds the part that is only about time:

* ``contact_spans``: the runs of frames where a label is on (>= ``threshold``);
* ``held_positions``: where a joint is held during each span (the mean of its
  positions over the span, never below the floor), or, when a span reaches past the
  frames being planted, where the frames outside already hold it, so a partial
  re-plant joins the feet planted before;
* ``plant_offsets``: per frame, the correction that takes the joint from where the
  dance puts it to where it is held: the full correction inside a span, blended
  out over ``blend`` frames on either side with a smoothstep (continuous, with no
  jump at a span's edge; more frames for a larger correction), and its weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

THRESHOLD = 0.5
"""A label at or above this is a contact."""
BLEND_FRAMES = 4
"""Frames over which planting blends in before a span and out after it."""
MERGE_GAP = 2
"""Contacts off for at most this many frames between two spans are one span (flicker)."""
MAX_BLEND_STEP = 0.01
"""Metres: a larger correction blends over more frames, so that the blend moves the foot
by about this much per frame at most (a smoothstep's steepest slope is 1.5 / width)."""
CONTACT_PROPERTY_PREFIX = "choreo_contact_"
"""Custom property name on the armature object: prefix + contact joint name."""


def property_name(joint: str) -> str:
    return CONTACT_PROPERTY_PREFIX + joint


def joint_of_property(name: str) -> str | None:
    return name[len(CONTACT_PROPERTY_PREFIX):] if name.startswith(CONTACT_PROPERTY_PREFIX) else None


@dataclass(frozen=True)
class Span:
    """Frames ``[start, stop)`` (indices into the planted arrays) where a joint is on the floor."""

    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


def contact_spans(labels: Sequence[float] | np.ndarray, threshold: float = THRESHOLD,
                  min_frames: int = 1, max_gap: int = 0) -> list[Span]:
    """Runs of frames where ``labels >= threshold``, at least ``min_frames`` long; runs
    separated by at most ``max_gap`` frames off count as one (labels flicker)."""
    on = np.asarray(labels, dtype=np.float64) >= threshold
    if on.size == 0:
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    runs = [[int(a), int(b)] for a, b in zip(edges[0::2], edges[1::2])]
    merged: list[list[int]] = []
    for run in runs:
        if merged and run[0] - merged[-1][1] <= max_gap:
            merged[-1][1] = run[1]
        else:
            merged.append(run)
    return [Span(a, b) for a, b in merged if b - a >= min_frames]


def held_positions(positions: np.ndarray, spans: Sequence[Span], floor: float,
                   editable: np.ndarray | None = None) -> np.ndarray:
    """Where the joint is held during each span: (S, 3).

    The mean of its positions over the span, its height at least ``floor``. When
    ``editable`` (T,) bool is given and a span has frames that are not editable (they
    lie outside the frames being planted and keep their keys), the mean over those
    frames is used instead: the frames that are re-planted join the ones that are not.
    """
    positions = np.asarray(positions, dtype=np.float64)
    out = np.empty((len(spans), 3))
    for i, span in enumerate(spans):
        part = positions[span.start:span.stop]
        if editable is not None:
            fixed = ~editable[span.start:span.stop]
            if fixed.any():
                part = part[fixed]
        out[i] = part.mean(axis=0)
        out[i, 2] = max(out[i, 2], floor)
    return out


def span_mask(spans: Sequence[Span], frames: int) -> np.ndarray:
    """(T,) bool: frames inside any of the spans."""
    out = np.zeros(frames, dtype=bool)
    for span in spans:
        out[span.start:span.stop] = True
    return out


def smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def plant_offsets(positions: np.ndarray, spans: Sequence[Span], held: np.ndarray,
                  blend: int = BLEND_FRAMES, max_step: float = MAX_BLEND_STEP,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame corrections (T, 3) taking ``positions`` to the held ones, and their weights (T,).

    Inside a span the correction is ``held - position`` (weight 1). Outside, each
    neighbouring span contributes its correction at its nearest edge frame, scaled
    by a smoothstep falling from 1 next to the span to 0 ``blend`` frames away (more
    for a large correction); between two spans the two blends cross-fade, so the
    correction is continuous everywhere.
    """
    positions = np.asarray(positions, dtype=np.float64)
    t_count = positions.shape[0]
    offset = np.zeros((t_count, 3))
    weight = np.zeros(t_count)
    inside = np.zeros(t_count, dtype=bool)
    frames = np.arange(t_count)
    for span, target in zip(spans, held):
        offset[span.start:span.stop] = target - positions[span.start:span.stop]
        weight[span.start:span.stop] = 1.0
        inside[span.start:span.stop] = True
    if blend <= 0:
        return offset, weight
    def width_of(correction: np.ndarray) -> int:
        if max_step <= 0:
            return blend
        return max(blend, int(np.ceil(1.5 * float(np.linalg.norm(correction)) / max_step)))

    def ramp(span: Span, target: np.ndarray, edge: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, weights) over frames [lo, hi) of the blend away from ``span``'s ``edge``."""
        correction = target - positions[edge]
        w = smoothstep(1.0 - np.abs(frames[lo:hi] - edge) / (width_of(correction) + 1.0))
        return w[:, None] * correction, w

    order = sorted(range(len(spans)), key=lambda i: spans[i].start)
    bounds = [-1] + [i for i in order] + [-1]
    for prev, nxt in zip(bounds[:-1], bounds[1:]):
        lo = spans[prev].stop if prev >= 0 else 0
        hi = spans[nxt].start if nxt >= 0 else t_count
        if hi <= lo:
            continue
        out_off = np.zeros((hi - lo, 3))
        out_w = np.zeros(hi - lo)
        in_off, in_w = out_off, out_w
        if prev >= 0:
            out_off, out_w = ramp(spans[prev], held[prev], spans[prev].stop - 1, lo, hi)
        if nxt >= 0:
            in_off, in_w = ramp(spans[nxt], held[nxt], spans[nxt].start, lo, hi)
        if prev >= 0 and nxt >= 0:  # cross-fade from the span behind to the span ahead
            alpha = smoothstep((frames[lo:hi] - (lo - 1)) / (hi - lo + 1.0))
            c_out = held[prev] - positions[spans[prev].stop - 1]
            c_in = held[nxt] - positions[spans[nxt].start]
            if hi - lo <= width_of(c_out) + width_of(c_in):
                # The blends would meet: go straight from one correction to the other (no dip
                # back to the dance's own foot in between, which would only add travel).
                offset[lo:hi] = (1 - alpha)[:, None] * c_out + alpha[:, None] * c_in
                weight[lo:hi] = 1.0
                continue
        else:
            alpha = np.full(hi - lo, 1.0 if nxt >= 0 else 0.0)
        offset[lo:hi] = (1 - alpha)[:, None] * out_off + alpha[:, None] * in_off
        weight[lo:hi] = (1 - alpha) * out_w + alpha * in_w
    return offset, weight


__all__ = ["THRESHOLD", "BLEND_FRAMES", "CONTACT_PROPERTY_PREFIX", "Span", "contact_spans",
           "held_positions", "plant_offsets", "span_mask", "property_name", "joint_of_property",
           "smoothstep"]
