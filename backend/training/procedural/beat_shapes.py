"""Per-beat curves the moves are built from: an accent on every beat (``pulse``), a
swing from one side to the other (``snap``), and the smoothstep that eases between keys."""

from __future__ import annotations

import numpy as np


PULSE_TURN: float = 0.12
"""Softness of the turn-around half-way between beats in ``pulse`` (0: an instant rebound)."""


def pulse(x: np.ndarray, sharp: np.ndarray | float = 1.0) -> np.ndarray:
    """1 on every integer (beat), 0 half-way between: a triangle wave, crisper on the beat
    when sharp > 1 (up to 2), its turn-around half-way rounded by PULSE_TURN. It never
    rests half-way, so an every-beat accent (a dip, a nod) adds no off-beat stop; on the
    beat the warped pulse phase (BEAT_HOLD) does the slowing."""
    x = np.asarray(x, dtype=np.float64)
    tri = 2.0 * np.abs(np.mod(x, 2.0) - 1.0) - 1.0  # +1 on even beats, -1 on odd ones
    v = (np.sqrt(tri**2 + PULSE_TURN**2) - PULSE_TURN) / (np.sqrt(1.0 + PULSE_TURN**2) - PULSE_TURN)
    return 1.0 - np.maximum(1.0 - v, 0.0) ** (1.0 / np.clip(sharp, 1.0, 2.0))


def snap(x: np.ndarray, sharp: np.ndarray | float = 1.0) -> np.ndarray:
    """+1 on even beats, -1 on odd ones, still at each, quicker in between when sharp > 1."""
    c = np.cos(np.pi * x)
    steep = np.clip(2.0 * (np.asarray(sharp, dtype=np.float64) - 1.0), 1e-6, 2.5)
    return np.tanh(steep * c) / np.tanh(steep)  # finite speed half-way, however sharp


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)
