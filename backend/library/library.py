"""The motion library as the ``graph`` generator loads it: frames, segments, transitions.

One npz file, plain arrays only (``allow_pickle=False``). Frames are SMPL motion at
30 fps in our conventions (metres, Z-up, docs/motion.md). Every source clip is stored
once; its left-right mirror is made again at load time (``mirror_clip``), which halves
the file. Segments and transition edges are stored for both.

=====================  ================  ===========================================
key                    shape / dtype     meaning
=====================  ================  ===========================================
rotations              (N, 24, 4) i16    local rotations, w-first quaternions x 32767
root                   (N, 3) f32        pelvis position, metres
contacts               (N, 4) u8         foot contacts (FOOT_CONTACT_JOINTS), 0 or 1
clip_names             (K,) str          source trial, ``60_11``
clip_starts            (K + 1,) i64      frame offsets of the source clips in N
clip_styles            (K,) i64          index into ``sources.STYLES``
seg_clip               (S,) i64          clip of each segment; >= K: the mirror of clip - K
seg_start, seg_stop    (S,) i64          first and last frame (a kinematic beat each),
                                         counted inside the clip
seg_speed              (S,) f32          mean joint speed over the segment, m/s
seg_skate              (S,) f32          share of its frames with a low toe sliding (> 0.5 m/s)
seg_early_peak         (S,) f32          fastest mean joint speed in its first 0.4 s, m/s
seg_sole               (S,) f32          median height of its lowest joint above the floor, m
seg_start_pose/_stop_  (S, 2, 24, 3) f16 ``pose_features`` at its first and last frame
seg_feet_start/_stop   (S, 2) bool       left / right foot planted at the segment's ends
seg_travel             (S, 3) f32        root x, y moved (start's heading frame), yaw turned
seg_next               (S,) i64          the segment that follows in its clip, or -1
seg_twin               (S,) i64          the same segment in the mirrored clip
edge_offsets           (S + 1,) i64      CSR: transitions out of segment s are
edge_to, edge_cost     (E,) i64, f32     edge_to[edge_offsets[s]:edge_offsets[s + 1]]
meta                   () str            JSON: version, source hash, thresholds
=====================  ================  ===========================================
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import InputError
from backend.motion import rotations as rot
from backend.motion.clip import MotionClip
from backend.motion.kinematics import forward_kinematics_np
from backend.motion.skeleton import FOOT_CONTACT_JOINTS, JOINT_NAMES

LIBRARY_FORMAT = "choreo-motion-library"
LIBRARY_VERSION = 1
QUATERNION_SCALE = 32767.0
"""Rotations are stored as int16: a step of 3e-5 per component, far below capture noise."""

FOOT_CONTACT_NAMES: tuple[str, ...] = tuple(JOINT_NAMES[j] for j in FOOT_CONTACT_JOINTS)
LEFT_FOOT_COLUMNS = (0, 1)  # left_ankle, left_foot in FOOT_CONTACT_JOINTS
RIGHT_FOOT_COLUMNS = (2, 3)

VELOCITY_WEIGHT_S = 0.1
"""Pose distance weighs joint velocity by 0.1 s: 1 m/s of difference counts as 10 cm."""


class LibraryError(InputError):
    """A file that is not a motion library this backend reads, or no capture to build one from."""

    def __init__(self, message: str, code: str = "bad_library") -> None:
        super().__init__(code, message)


def heading(pelvis_rotation: np.ndarray) -> np.ndarray:
    """Yaw (radians) of the body's facing: 0 when it faces -Y as the rest pose does.

    pelvis_rotation: (..., 4) w-first world rotation of the pelvis. The facing is the
    pelvis's -Y axis laid flat; yaw is the turn about +Z that takes -Y onto it.
    """
    m = rot.np_.quaternion_to_matrix(np.asarray(pelvis_rotation, dtype=np.float64))
    forward = -m[..., :, 1]
    return np.arctan2(forward[..., 0], -forward[..., 1])


def yaw_quaternion(yaw: np.ndarray | float) -> np.ndarray:
    """(..., 4) w-first rotation about +Z by ``yaw`` radians."""
    yaw = np.asarray(yaw, dtype=np.float64)
    q = np.zeros(yaw.shape + (4,))
    q[..., 0], q[..., 3] = np.cos(yaw / 2), np.sin(yaw / 2)
    return q


def turn_xy(xy: np.ndarray, yaw: np.ndarray | float) -> np.ndarray:
    """Rotate (..., 2) or (..., 3) vectors about +Z by ``yaw`` (z untouched)."""
    yaw = np.asarray(yaw, dtype=np.float64)
    c, s = np.cos(yaw), np.sin(yaw)
    out = np.array(xy, dtype=np.float64, copy=True)
    x, y = out[..., 0].copy(), out[..., 1].copy()
    out[..., 0], out[..., 1] = c * x - s * y, s * x + c * y
    return out


def pose_features(positions: np.ndarray, root: np.ndarray, yaw: np.ndarray, frames: np.ndarray,
                  fps: float) -> np.ndarray:
    """(F, 2, 24, 3) body-frame joint positions and velocities at ``frames``.

    Positions are relative to the pelvis's spot on the floor (heights kept), turned so
    the body faces -Y; velocities (m/s, central differences, one-sided at the ends) are
    turned the same way. Two poses match when these are close, wherever and whichever
    way the dancers stood.
    """
    frames = np.asarray(frames, dtype=np.int64)
    n = len(positions)
    before, after = np.maximum(frames - 1, 0), np.minimum(frames + 1, n - 1)
    span = np.maximum(after - before, 1)[:, None, None]
    floor_spot = np.zeros((len(frames), 1, 3))
    floor_spot[:, 0, :2] = root[frames, :2]
    rel = turn_xy(positions[frames] - floor_spot, -yaw[frames][:, None])
    vel = turn_xy((positions[after] - positions[before]) * fps / span, -yaw[frames][:, None])
    return np.stack([rel, vel], axis=1).astype(np.float32)


def pose_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean joint distance (m) plus ``VELOCITY_WEIGHT_S`` x mean joint velocity difference.

    a: (..., 2, 24, 3), b broadcastable to it (``pose_features``).
    """
    d = np.linalg.norm(a - b, axis=-1).mean(axis=-1)  # (..., 2)
    return d[..., 0] + VELOCITY_WEIGHT_S * d[..., 1]


@dataclass
class MotionLibrary:
    """Everything the generator needs, mirrored clips included (see the module docstring)."""

    rotations: np.ndarray  # (N2, 24, 4) float32, originals then mirrors
    root: np.ndarray  # (N2, 3) float32
    contacts: np.ndarray  # (N2, 4) float32
    clip_names: list[str]  # (K2,) mirrors named "<name>_mirror"
    clip_starts: np.ndarray  # (K2 + 1,)
    clip_styles: np.ndarray  # (K2,)
    seg_clip: np.ndarray
    seg_start: np.ndarray  # global frame index into rotations
    seg_stop: np.ndarray  # global frame index (inclusive: the next beat)
    seg_speed: np.ndarray
    seg_skate: np.ndarray
    seg_early_peak: np.ndarray
    seg_sole: np.ndarray
    seg_start_pose: np.ndarray  # (S, 2, 24, 3) float32
    seg_stop_pose: np.ndarray
    seg_feet_start: np.ndarray
    seg_feet_stop: np.ndarray
    seg_travel: np.ndarray
    seg_next: np.ndarray
    seg_twin: np.ndarray
    edge_offsets: np.ndarray
    edge_to: np.ndarray
    edge_cost: np.ndarray
    meta: dict[str, Any]
    fps: float = 30.0

    @property
    def num_segments(self) -> int:
        return int(len(self.seg_start))

    @property
    def seg_frames(self) -> np.ndarray:
        """(S,) length of each segment in library frames (stop - start)."""
        return self.seg_stop - self.seg_start

    @property
    def seg_tempo_bpm(self) -> np.ndarray:
        """(S,) each segment's own tempo: one kinematic beat per segment, so 60 / its seconds."""
        return 60.0 * self.fps / self.seg_frames

    def clip_range(self, clip: int) -> tuple[int, int]:
        return int(self.clip_starts[clip]), int(self.clip_starts[clip + 1])

    def successors(self, segment: int) -> tuple[np.ndarray, np.ndarray]:
        """(targets, costs) of the transitions out of ``segment`` (its natural next not included)."""
        a, b = self.edge_offsets[segment], self.edge_offsets[segment + 1]
        return self.edge_to[a:b], self.edge_cost[a:b]

    def world_positions(self, first: int, stop: int) -> np.ndarray:
        """(n, 24, 3) joint positions of library frames [first, stop), as captured."""
        positions, _ = forward_kinematics_np(
            rot.np_.quaternion_to_matrix(self.rotations[first:stop].astype(np.float64)),
            self.root[first:stop].astype(np.float64))
        return positions


def save_library(path: Path, originals: list[MotionClip], names: list[str], styles: list[int],
                 segments: dict[str, np.ndarray], edges: tuple[np.ndarray, np.ndarray, np.ndarray],
                 meta: dict[str, Any]) -> Path:
    """Write the npz; ``segments`` index frames *within* their clip (``seg_start``/``seg_stop``)."""
    starts = np.cumsum([0] + [c.num_frames for c in originals])
    rotations = np.concatenate([c.rotations for c in originals])
    path.parent.mkdir(parents=True, exist_ok=True)
    offsets, to, cost = edges
    np.savez_compressed(
        path,
        rotations=np.round(rotations * QUATERNION_SCALE).astype(np.int16),
        root=np.concatenate([c.root_translation for c in originals]).astype(np.float32),
        contacts=np.concatenate([c.contacts for c in originals]).round().astype(np.uint8),
        clip_names=np.array(names, dtype=str), clip_starts=starts.astype(np.int64),
        clip_styles=np.array(styles, dtype=np.int64),
        edge_offsets=offsets.astype(np.int64), edge_to=to.astype(np.int64), edge_cost=cost.astype(np.float32),
        meta=np.array(json.dumps({"format": LIBRARY_FORMAT, **meta})),
        **{k: v for k, v in segments.items()},
    )
    return path


def read_meta(path: Path) -> dict[str, Any]:
    """The library's meta dict alone (the build's cache check reads only this)."""
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["meta"]))


def load_library(path: str | Path) -> MotionLibrary:
    """Read a library file and add the mirrored clips (``backend.motion.mirror``).

    Loaded once per file version and shared (the ``graph`` model and FACT's seed motion
    both read the bundled one): callers must not change its arrays.
    """
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except OSError as err:
        raise LibraryError(f"{path}: not a motion library ({err})") from err
    return _load_library(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _load_library(path: Path, mtime_ns: int, size: int) -> MotionLibrary:
    from backend.motion.mirror import mirror_clip

    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise LibraryError(f"{path}: not a motion library ({err})") from err
    with data:
        if "meta" not in data:
            raise LibraryError(f"{path}: not a motion library (no meta); build one with choreo library build")
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != LIBRARY_FORMAT or meta.get("version") != LIBRARY_VERSION:
            raise LibraryError(f"{path}: library format {meta.get('format')} v{meta.get('version')}, "
                               f"this backend reads {LIBRARY_FORMAT} v{LIBRARY_VERSION}; rebuild it "
                               "(choreo library build)")
        q = data["rotations"].astype(np.float32) / QUATERNION_SCALE
        q /= np.linalg.norm(q, axis=-1, keepdims=True)
        root = data["root"].astype(np.float32)
        contacts = data["contacts"].astype(np.float32)
        starts = data["clip_starts"]
        names = [str(n) for n in data["clip_names"]]
        styles = data["clip_styles"]
        arrays = {k: data[k] for k in ("seg_clip", "seg_start", "seg_stop", "seg_speed", "seg_feet_start",
                                       "seg_feet_stop", "seg_skate", "seg_early_peak", "seg_sole", "seg_start_pose", "seg_stop_pose", "seg_travel", "seg_next", "seg_twin",
                                       "edge_offsets", "edge_to", "edge_cost")}
    mirrored = [mirror_clip(MotionClip(q[a:b], root[a:b], contacts=contacts[a:b],
                                       contact_names=FOOT_CONTACT_NAMES))
                for a, b in zip(starts[:-1], starts[1:])]
    all_starts = np.concatenate([starts, starts[-1] + starts[1:]])
    clip_of = arrays["seg_clip"]
    base = all_starts[clip_of]
    return MotionLibrary(
        rotations=np.concatenate([q] + [m.rotations for m in mirrored]),
        root=np.concatenate([root] + [m.root_translation for m in mirrored]),
        contacts=np.concatenate([contacts] + [m.contacts for m in mirrored]),
        clip_names=names + [f"{n}_mirror" for n in names],
        clip_starts=all_starts,
        clip_styles=np.concatenate([styles, styles]),
        seg_clip=clip_of, seg_start=base + arrays["seg_start"], seg_stop=base + arrays["seg_stop"],
        seg_speed=arrays["seg_speed"].astype(np.float64), seg_skate=arrays["seg_skate"].astype(np.float64),
        seg_early_peak=arrays["seg_early_peak"].astype(np.float64), seg_sole=arrays["seg_sole"].astype(np.float64),
        seg_start_pose=arrays["seg_start_pose"].astype(np.float32),
        seg_stop_pose=arrays["seg_stop_pose"].astype(np.float32), seg_feet_start=arrays["seg_feet_start"],
        seg_feet_stop=arrays["seg_feet_stop"], seg_travel=arrays["seg_travel"].astype(np.float64),
        seg_next=arrays["seg_next"], seg_twin=arrays["seg_twin"],
        edge_offsets=arrays["edge_offsets"], edge_to=arrays["edge_to"],
        edge_cost=arrays["edge_cost"].astype(np.float64), meta=meta,
    )


def wrap_angle(a: np.ndarray | float) -> np.ndarray:
    """Angles to (-pi, pi]."""
    return np.mod(np.asarray(a) + math.pi, 2 * math.pi) - math.pi
