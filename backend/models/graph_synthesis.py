"""The motion side of the motion graph: planned pieces turned into frames.

For each ``Piece`` (graph_plan.py) the segment's frames are time-warped so its two
kinematic beats land on the piece's music beats, then placed in the world: a piece
that continues its clip keeps the previous piece's placement; after a cut, the new
segment is turned and moved so that it starts where and facing the way the dance
was going (root position on the floor and heading; heights are the capture's own).

A cut is blended by inertialization (Bollo, "Inertialization", GDC 2018): the
difference between the dance so far, extrapolated one frame, and the new segment is
an offset, on every joint rotation and the root, that fades to nothing over
``BLEND_S`` or longer (``blend_seconds``: poses further apart fade for longer, so the
fade never adds a burst of speed) while the new segment plays underneath (``fade``).
Poses stay continuous across the cut.

The blend moves the legs, and so the feet. A foot that the new segment has planted
is held where it stands through the blend by moving the pelvis on the floor against
the foot's drift (both feet planted: their mean drift); the last correction carries
on through the rest of the dance, so nothing jumps when the blend ends. The blend
therefore adds no foot sliding of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from backend.library.library import MotionLibrary, heading, turn_xy, yaw_quaternion
from backend.models.graph_plan import Piece
from backend.motion import rotations as rot
from backend.motion.kinematics import forward_kinematics_np

BLEND_S = 0.4
"""How long a cut's offset takes to fade out, at least (``blend_seconds``)."""
MAX_BLEND_SPEED_M_S = 0.35
"""The most a fading offset may add to the mean joint speed: a cut between poses further
apart fades for longer, so the blend never shows as a burst of speed."""
MAX_BLEND_S = 1.0
MAX_HOLD_STEP_M = 0.01
"""Holding a planted foot moves the pelvis at most 1 cm a frame (0.3 m/s, the contact
speed): a blend that swings a leg further is not undone by sliding the whole body."""
FEET = ((7, 10), (8, 11))
"""(ankle, toe) joint indices of the left and right foot."""


def q_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of w-first quaternions (broadcasting)."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], axis=-1)


def q_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def q_log(q: np.ndarray) -> np.ndarray:
    """Rotation vector (axis x angle) of unit quaternions, the short way round."""
    q = np.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    return np.where(s > 1e-9, v / np.maximum(s, 1e-12) * angle, 2.0 * v)


def q_exp(r: np.ndarray) -> np.ndarray:
    """Unit quaternion of rotation vectors."""
    angle = np.linalg.norm(r, axis=-1, keepdims=True)
    half = angle / 2
    scale = np.where(angle > 1e-9, np.sin(half) / np.maximum(angle, 1e-12), 0.5)
    return np.concatenate([np.cos(half), r * scale], axis=-1)


def fade(frames: np.ndarray, fps: float, seconds: float = BLEND_S) -> tuple[np.ndarray, np.ndarray]:
    """(position, velocity) weights of a cut's offset at ``frames`` after the cut.

    offset(t) = a(t) x0 + b(t) v0: a falls from 1 to 0 along a smootherstep over
    ``seconds``, flat at both ends. Flat at the cut matters: a cut sits on a kinematic
    beat (a minimum of joint speed), and an offset that moved at once would add its
    own speed there and shift the beat off the music's (a critically damped fade moved
    cut beats by 3-4 frames). b = 0: at a beat both sides move slowly, so the velocity
    step is small, and carrying it would add speed at the beat.
    """
    u = np.clip(np.asarray(frames, dtype=np.float64) / (fps * seconds), 0.0, 1.0)
    return 1.0 - u * u * u * (u * (6 * u - 15) + 10), np.zeros_like(u)


@dataclass
class Placement:
    """World = turn(source - src_anchor, yaw) + world_anchor on the floor; heights kept."""

    yaw: float
    src_anchor: np.ndarray  # (2,)
    world_anchor: np.ndarray  # (2,)

    def root(self, root: np.ndarray) -> np.ndarray:
        out = np.array(root, dtype=np.float64, copy=True)
        out[..., :2] = turn_xy(root[..., :2] - self.src_anchor, self.yaw) + self.world_anchor
        return out

    def rotations(self, q: np.ndarray) -> np.ndarray:
        out = np.array(q, dtype=np.float64, copy=True)
        out[..., 0, :] = q_mul(yaw_quaternion(self.yaw), q[..., 0, :])
        return out


def blend_seconds(distance_m: float) -> float:
    """How long to fade an offset that moves the joints ``distance_m`` on average.

    A smootherstep over T seconds moves at most 1.875 x distance / T: long enough that
    this stays under ``MAX_BLEND_SPEED_M_S``, never shorter than ``BLEND_S``.
    """
    return float(np.clip(1.875 * distance_m / MAX_BLEND_SPEED_M_S, BLEND_S, MAX_BLEND_S))


@dataclass
class _Blend:
    cut: int  # output frame of the cut
    seconds: float  # how long its offset fades
    x0: np.ndarray  # (25, 3): rotation vectors of 24 joints, then the root offset
    v0: np.ndarray  # (25, 3) per second


class Synthesizer:
    """Renders pieces in order into output frames [first, total) (module docstring).

    history: the two output frames before ``first`` (an edit's kept frames), as
    ((2, 24, 4) rotations, (2, 3) root), or None for a new dance, which starts at the
    origin facing -Y.
    """

    def __init__(self, library: MotionLibrary, fps: float, first: int, total: int,
                 history: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.lib = library
        self.fps = fps
        self.first = first
        self.total = total
        self.placement: Placement | None = None
        self.previous: Piece | None = None
        self.blend: _Blend | None = None
        self.history = None if history is None else (np.asarray(history[0], np.float64),
                                                     np.asarray(history[1], np.float64))
        self._last_feet: np.ndarray | None = None  # (2, 3) where each foot is in the last frame
        self._last_contact = np.zeros(2, dtype=bool)

    # -- sampling a piece ---------------------------------------------------------------

    def _source_time(self, piece: Piece, frames: np.ndarray) -> np.ndarray:
        a, b = self.lib.seg_start[piece.segment], self.lib.seg_stop[piece.segment]
        return a + (frames / self.fps - piece.t0) / (piece.t1 - piece.t0) * (b - a)

    def _sample(self, piece: Piece, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Source rotations (n, 24, 4), root (n, 3), contacts (n, 4) at output ``frames``."""
        lo, hi = self.lib.clip_range(int(self.lib.seg_clip[piece.segment]))
        s = np.clip(self._source_time(piece, frames.astype(np.float64)), lo, hi - 1)
        i0 = np.floor(s).astype(np.int64)
        i1 = np.minimum(i0 + 1, hi - 1)
        w = (s - i0)[:, None]
        q0, q1 = self.lib.rotations[i0].astype(np.float64), self.lib.rotations[i1].astype(np.float64)
        q1 = np.where((q0 * q1).sum(-1, keepdims=True) < 0, -q1, q1)
        q = q0 * (1 - w[..., None]) + q1 * w[..., None]
        q /= np.linalg.norm(q, axis=-1, keepdims=True)
        root = self.lib.root[i0] * (1 - w) + self.lib.root[i1] * w
        contacts = self.lib.contacts[np.where(w[:, 0] < 0.5, i0, i1)]
        return q, root.astype(np.float64), contacts

    def _placed(self, piece: Piece, placement: Placement, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q, root, contacts = self._sample(piece, frames)
        return placement.rotations(q), placement.root(root), contacts

    # -- placing a piece ------------------------------------------------------------------

    def _place(self, piece: Piece) -> Placement:
        lib = self.lib
        start = int(lib.seg_start[piece.segment])
        src_yaw = float(heading(lib.rotations[start, 0]))
        src_anchor = lib.root[start, :2].astype(np.float64)
        if self.previous is None:
            if self.history is None:  # a new dance: at the origin, facing -Y
                return Placement(-src_yaw, src_anchor, np.zeros(2))
            world_yaw = float(heading(self.history[0][-1, 0]))
            return Placement(world_yaw - src_yaw, src_anchor, self.history[1][-1, :2].copy())
        if piece.natural:
            return self.placement  # type: ignore[return-value]
        prev, placement = self.previous, self.placement
        assert placement is not None
        stop = int(lib.seg_stop[prev.segment])
        world_yaw = placement.yaw + float(heading(lib.rotations[stop, 0]))
        world_anchor = placement.root(lib.root[stop].astype(np.float64))[:2]
        return Placement(world_yaw - src_yaw, src_anchor, world_anchor)

    # -- the public step ---------------------------------------------------------------------

    def frames_of(self, piece: Piece) -> np.ndarray:
        lo = max(math.ceil(piece.t0 * self.fps - 1e-6), self.first)
        hi = min(math.ceil(piece.t1 * self.fps - 1e-6), self.total)
        return np.arange(lo, max(lo, hi))

    def add(self, piece: Piece, out: tuple[np.ndarray, np.ndarray]) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """Render ``piece``; ``out`` = the last two output frames so far ((2, 24, 4), (2, 3)), or
        the history. Returns (first frame, rotations, root, contacts) of its frames."""
        frames = self.frames_of(piece)
        cut = self.previous is None and self.history is not None or (self.previous is not None and not piece.natural)
        placement = self._place(piece)
        if cut and len(frames):
            self.blend = self._cut(piece, placement, int(frames[0]), out)
        self.placement, self.previous = placement, piece
        if not len(frames):
            return self.first, np.zeros((0, 24, 4)), np.zeros((0, 3)), np.zeros((0, 4))
        q, root, contacts = self._placed(piece, placement, frames)
        if self.blend is not None:
            n = frames - self.blend.cut
            inside = n < math.ceil(self.blend.seconds * self.fps)
            if inside.any():
                a, b = fade(n[inside], self.fps, self.blend.seconds)
                offset = a[:, None, None] * self.blend.x0[None] + b[:, None, None] * self.blend.v0[None]
                q[inside] = q_mul(q_exp(offset[:, :24]), q[inside])
                root[inside] += offset[:, 24]
                shift = self._hold_feet(q, root, contacts, inside)
                root[~inside & (frames > self.blend.cut)] += np.append(shift, 0.0)
                placement.world_anchor = placement.world_anchor + shift
            else:
                self.blend = None
        self._remember_feet(q[-1:], root[-1:], contacts[-1])
        return int(frames[0]), q, root, contacts

    def _cut(self, piece: Piece, placement: Placement, cut: int, out: tuple[np.ndarray, np.ndarray]) -> _Blend:
        """The offset (and its rate) between the dance so far and the new segment at ``cut``."""
        q_out, root_out = (np.asarray(x, np.float64) for x in out)
        q_new, root_new, _ = self._placed(piece, placement, np.array([cut - 2, cut - 1]))
        x = np.concatenate([q_log(q_mul(q_out, q_conj(q_new))), (root_out - root_new)[:, None]], axis=1)
        v = x[1] - x[0]
        p_out, _ = forward_kinematics_np(rot.np_.quaternion_to_matrix(q_out[-1:]), root_out[-1:])
        p_new, _ = forward_kinematics_np(rot.np_.quaternion_to_matrix(q_new[-1:]), root_new[-1:])
        distance = float(np.linalg.norm(p_out - p_new, axis=-1).mean())
        return _Blend(cut, blend_seconds(distance), x[1] + v, v * self.fps)

    def _feet(self, q: np.ndarray, root: np.ndarray) -> np.ndarray:
        positions, _ = forward_kinematics_np(rot.np_.quaternion_to_matrix(q), root)
        return positions[:, [list(f) for f in FEET]].mean(axis=2)  # (n, 2, 3)

    def _hold_feet(self, q: np.ndarray, root: np.ndarray, contacts: np.ndarray, inside: np.ndarray) -> np.ndarray:
        """Move the pelvis on the floor so planted feet do not drift in the blend; returns the
        correction the last blended frame ended with (it carries on)."""
        idx = np.flatnonzero(inside)
        feet = self._feet(q[idx], root[idx])  # (n, 2, 3)
        planted = np.stack([contacts[idx][:, [0, 1]].max(1), contacts[idx][:, [2, 3]].max(1)], axis=1) > 0.5
        shift = np.zeros(2)
        last, was = self._last_feet, self._last_contact.copy()
        for i, frame in enumerate(idx):
            here = feet[i].copy()
            here[:, :2] += shift
            hold = planted[i] & was if last is not None else np.zeros(2, dtype=bool)
            if hold.any():
                drift = (here[hold, :2] - last[hold, :2]).mean(axis=0)
                # a foot that the blend swings further than this is let go, not dragged along
                drift *= min(1.0, MAX_HOLD_STEP_M / max(float(np.linalg.norm(drift)), 1e-9))
                shift -= drift
                here[:, :2] -= drift
            root[frame, :2] += shift
            last, was = here, planted[i]
        return shift

    def _remember_feet(self, q: np.ndarray, root: np.ndarray, contacts: np.ndarray) -> None:
        self._last_feet = self._feet(q, root)[0]
        self._last_contact = np.array([contacts[[0, 1]].max(), contacts[[2, 3]].max()]) > 0.5


# -- feet that glide low over the floor ---------------------------------------------------

LEG_CHAINS = ((1, 4, 7), (2, 5, 8))
"""(hip, knee, ankle) of the left and right leg."""
TOES = (10, 11)
GLIDE_HEIGHT_M = 0.05
GLIDE_SPEED_M_S = 0.5
"""A toe lower than this above its standing height, moving faster than this, glides:
it reads as a foot skating over the floor (the foot-skating measure of issue 13)."""
LIFT_CLEARANCE_M = 0.01
"""Lifted toes end this far above ``GLIDE_HEIGHT_M``."""
LIFT_SPREAD = np.array([0.35, 0.7, 1.0, 0.7, 0.35])
"""How a frame's lift is shared with its neighbours (two each side), so feet rise and
land over a few frames instead of jumping."""
LIFT_CONTEXT = 3
"""Frames after a frame that must exist before its lift is final."""


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, 3, 3) smallest rotations taking directions a to b (n, 3)."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    v = np.cross(a, b)
    c = (a * b).sum(-1)
    k = np.zeros(a.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    k[..., 1, 0], k[..., 2, 0], k[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    scale = (1.0 / np.maximum(1.0 + c, 1e-8))[..., None, None]
    return np.eye(3) + k + k @ k * scale


def raise_ankle(positions: np.ndarray, global_rot: np.ndarray, local_q: np.ndarray, leg: tuple[int, int, int],
                lift: np.ndarray) -> np.ndarray:
    """Local rotations (n, 24, 4) with ``leg``'s ankle raised by ``lift`` (n,) metres.

    Two-bone IK: the knee stays in the plane of hip, ankle and its old position (so the
    leg bends the way it did), the thigh and shin keep their lengths, and the foot keeps
    its world orientation. A target out of reach is clamped to the stretched leg.
    """
    hip, knee, ankle = leg
    h, k, a = positions[:, hip], positions[:, knee], positions[:, ankle]
    target = a.copy()
    target[:, 2] += lift
    l1 = np.linalg.norm(k - h, axis=-1)
    l2 = np.linalg.norm(a - k, axis=-1)
    reach = target - h
    d = np.clip(np.linalg.norm(reach, axis=-1), np.abs(l1 - l2) + 1e-4, l1 + l2 - 1e-4)
    u = reach / np.linalg.norm(reach, axis=-1, keepdims=True)
    pole = (k - h) - ((k - h) * u).sum(-1, keepdims=True) * u
    w = pole / np.maximum(np.linalg.norm(pole, axis=-1, keepdims=True), 1e-9)
    cos_hip = np.clip((l1 ** 2 + d ** 2 - l2 ** 2) / (2 * l1 * d), -1.0, 1.0)
    new_knee = h + l1[:, None] * (cos_hip[:, None] * u + np.sqrt(1 - cos_hip ** 2)[:, None] * w)
    new_ankle = h + u * d[:, None]
    g_hip = _rotation_between(k - h, new_knee - h) @ global_rot[:, hip]
    g_knee = _rotation_between(a - k, new_ankle - new_knee) @ global_rot[:, knee]
    parent = global_rot[:, 0]  # the hips' parent is the pelvis
    out = np.array(local_q, dtype=np.float64, copy=True)
    to_q = rot.np_.matrix_to_quaternion
    out[:, hip] = to_q(np.swapaxes(parent, -1, -2) @ g_hip)
    out[:, knee] = to_q(np.swapaxes(g_hip, -1, -2) @ g_knee)
    out[:, ankle] = to_q(np.swapaxes(g_knee, -1, -2) @ global_rot[:, ankle])
    return out


def glide_lift(toe_heights: np.ndarray, toe_xy: np.ndarray, fps: float) -> np.ndarray:
    """(n, 2) how far each toe must rise so that it never glides low and fast, before spreading.

    toe_heights: (n, 2) above the toes' standing height; toe_xy: (n, 2, 2). A frame is
    lifted when its toe is low and the step into or out of it is fast.
    """
    speed = np.linalg.norm(np.diff(toe_xy, axis=0), axis=-1) * fps  # (n-1, 2)
    fast = np.zeros(toe_heights.shape, dtype=bool)
    fast[1:] |= speed > GLIDE_SPEED_M_S
    fast[:-1] |= speed > GLIDE_SPEED_M_S
    need = np.where(fast & (toe_heights < GLIDE_HEIGHT_M), GLIDE_HEIGHT_M + LIFT_CLEARANCE_M - toe_heights, 0.0)
    return np.maximum(need, 0.0)


def spread_lift(need: np.ndarray) -> np.ndarray:
    """Each frame's lift: the largest of its neighbours' needs, weighted by ``LIFT_SPREAD``."""
    n = len(need)
    half = len(LIFT_SPREAD) // 2
    padded = np.pad(need, ((half, half), (0, 0)))
    return np.max([padded[i:i + n] * wgt for i, wgt in enumerate(LIFT_SPREAD)], axis=0)
