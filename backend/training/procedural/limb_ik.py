"""Analytic two-bone IK for the legs and the arms, with the hinge bending one way only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.motion.skeleton import OFFSETS


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _frame(direction: np.ndarray, hinge: np.ndarray) -> np.ndarray:
    """Rotation matrix with columns (bone direction, hinge axis, their cross product)."""
    return np.stack([direction, hinge, np.cross(direction, hinge)], axis=-1)


@dataclass(frozen=True)
class Limb:
    """A two-bone chain and its rest frames. The hinge axis is set so that bending
    moves the lower bone towards ``bend`` (backwards for knees, forwards for elbows)."""

    upper: np.ndarray  # rest offset of the middle joint (knee/elbow) from the root joint
    lower: np.ndarray  # rest offset of the end joint (ankle/wrist) from the middle joint
    bend: np.ndarray
    max_stretch: float

    def rest_frame(self, bone: np.ndarray) -> np.ndarray:
        a = unit(bone)
        return _frame(a, unit(np.cross(a, self.bend)))

    def solve(self, root: np.ndarray, target: np.ndarray, pole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global rotations (T,3,3) of the root joint and of the middle joint."""
        l1, l2 = float(np.linalg.norm(self.upper)), float(np.linalg.norm(self.lower))
        d = target - root
        dist = np.linalg.norm(d, axis=-1, keepdims=True)
        direction = d / np.maximum(dist, 1e-9)
        dist = np.clip(dist, abs(l1 - l2) + 0.05, self.max_stretch * (l1 + l2))
        cos_a = np.clip((l1**2 + dist**2 - l2**2) / (2 * l1 * dist), -1.0, 1.0)
        sin_a = np.sqrt(1.0 - cos_a**2)
        perp = pole - np.sum(pole * direction, -1, keepdims=True) * direction
        fallback = np.cross(direction, np.array([0.0, 0.0, 1.0]))
        small = np.linalg.norm(perp, axis=-1, keepdims=True) < 1e-4
        perp = unit(np.where(small, fallback + 1e-6, perp))
        middle = root + l1 * (cos_a * direction + sin_a * perp)
        end = root + dist * direction
        hinge = unit(np.cross(perp, direction))
        g1 = _frame(unit(middle - root), hinge) @ self.rest_frame(self.upper).T
        g2 = _frame(unit(end - middle), hinge) @ self.rest_frame(self.lower).T
        return g1, g2


_BACK = np.array([0.0, 1.0, 0.0])
LEGS = (Limb(OFFSETS[4], OFFSETS[7], _BACK, 0.997), Limb(OFFSETS[5], OFFSETS[8], _BACK, 0.997))
ARMS = (Limb(OFFSETS[18], OFFSETS[20], -_BACK, 0.97), Limb(OFFSETS[19], OFFSETS[21], -_BACK, 0.97))
