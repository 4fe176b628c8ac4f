"""The one set of units and axes used everywhere inside the backend.

Written down once so that no module has to guess:

* lengths are metres, times are seconds;
* the world is Z-up and right-handed, as in Blender; a character in its rest
  pose faces -Y (Blender's "front" view looks at its face);
* motion is sampled at ``FPS`` frames per second unless a model's config says
  otherwise;
* the floor is the plane z = 0; a body in the rest pose stands on it.

Data that arrives in other conventions (AIST++ is Y-up at 60 fps, BVH files are
often Y-up in centimetres) is converted by its importer, at the edge.
"""

from __future__ import annotations

import numpy as np

FPS: int = 30
"""Default motion frame rate (frames per second)."""

UNKNOWN_STYLE: str = "unknown"
"""The style of a clip whose dataset does not say one, and "any style" when sampling: index 0
of every style vocabulary (training builds it; style-conditioned generators offer it)."""

Y_UP_TO_Z_UP: np.ndarray = np.array(
    [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=np.float64
)
"""Rotation taking Y-up coordinates to Z-up ones: +90 degrees about X.

It maps up (+Y) to up (+Z) and a Y-up character's forward (+Z) to -Y, which is
the way a Blender character faces. Vectors transform as ``C @ v``; local joint
rotations of a skeleton whose rest offsets are also converted transform as
``C @ R @ C.T``.
"""
