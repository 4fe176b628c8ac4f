"""BVH files: a reader for any skeleton, retargeting onto SMPL, and a writer for SMPL.

Reading
-------
``read_bvh`` parses the hierarchy (any joints, any channel subset and Euler order,
position channels on any joint) and the motion block into a ``BvhMotion``. Angles
are intrinsic Euler angles in the order the channels are listed (``Zrotation
Yrotation Xrotation`` means ``R = Rz @ Ry @ Rx``). A joint with position channels
takes them as its local translation instead of its OFFSET (absolute for the root).

Retargeting
-----------
``retarget_to_smpl`` drives SMPL from the source's *global* joint rotations, so
unmapped source joints (twist bones, extra spine links) fold into whatever they
carry. Rest poses differ between rigs (many BVH rigs have all bones along +Y in
their zero pose, so the zero pose is a stick pointing up), so each mapped joint
gets a constant alignment ``A_j`` and SMPL's global rotation is
``G_smpl_j(t) = G_src_j(t) @ A_j``. ``A_j`` comes from a reference pose P of the
source (the map says which: its zero pose, its T-pose frame 0, or the frame most
like SMPL's rest pose): P is turned to face SMPL's way, then each joint is swung by
the smallest rotation that lays its bone(s) onto SMPL's rest bone directions
(one child: a swing; several, like the pelvis: the best-fitting rotation). So in
P, SMPL stands in its rest pose with the source's twists, and in every frame each
mapped SMPL bone points where the source's corresponding bone points. Joints with
no usable bone (leaves, or children at the same spot) keep their parent's
alignment. A swing cannot see twist about the bone, and P may have caught the limbs
twisted (a ballet turnout), so upper and middle limb joints instead take their twist
from the knee or elbow hinge: the axis the joint bends about over the whole clip is
laid on SMPL's (knees bend about X, elbows about Z); rigs whose zero pose is SMPL's
rest pose (our own files) keep their twists exactly. The pelvis moves as the
source's root joint, scaled by the ratio of SMPL's leg length to the source's so
steps and jumps fit SMPL's legs.

Resampling to the output rate keeps every k-th frame when the source rate is an
integer multiple (60 -> 30, 120 -> 30), else it slerps between the two nearest
frames. Then the clip is put on the floor and gets contact labels (contacts.py).

Writing
-------
``write_bvh`` writes SMPL clips Y-up, in metres, with SMPL joint names, rest pose =
SMPL's T-pose (OFFSETs are SMPL's own), root OFFSET at the standing pelvis height,
ZYX Euler channels. Y-up is what BVH readers expect: Blender's importer (default
axes, scale 1.0) shows it upright at true size. ``load_bvh_clip`` reads it back
through the ``smpl`` joint map.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.conventions import FPS, Y_UP_TO_Z_UP
from backend.motion import rotations as rot
from backend.motion.clip import MotionClip
from backend.motion.contacts import grounded_clip
from backend.motion.joint_maps import JointMap, detect_joint_map
from backend.motion.skeleton import (
    BODY_CONTACT_JOINTS, JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, OFFSETS, OFFSETS_Y_UP, PARENTS,
    PELVIS_REST_HEIGHT, rest_joint_positions,
)
from backend.errors import InputError

_AXES = {"X": 0, "Y": 1, "Z": 2}
_CHANNEL_NAMES = {f"{a}{kind}" for a in "XYZ" for kind in ("position", "rotation")}
_MIN_BONE_M = 0.005
"""Bones shorter than this (metres) give no usable direction (coincident joints)."""


class BvhError(InputError):
    """A BVH file we cannot read or retarget; ``code`` is a stable identifier."""


@dataclass
class BvhMotion:
    """A parsed BVH file, still in its own units, axes and frame rate."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray  # (J, 3) file units
    channels: tuple[tuple[str, ...], ...]  # per joint, as listed
    end_sites: dict[int, np.ndarray]  # joint -> offset of its (first) End Site
    frame_time: float
    values: np.ndarray  # (T, total channels): file units, degrees

    @property
    def fps(self) -> float:
        """1 / frame time, snapped to a whole number when the file rounded it (0.016667 s)."""
        fps = 1.0 / self.frame_time
        return float(round(fps)) if abs(fps - round(fps)) < 1e-4 * fps else fps

    @property
    def num_frames(self) -> int:
        return int(self.values.shape[0])

    def _columns(self) -> list[list[int]]:
        cols, start = [], 0
        for ch in self.channels:
            cols.append(list(range(start, start + len(ch))))
            start += len(ch)
        return cols

    def local_rotations(self) -> np.ndarray:
        """(T, J, 3, 3) joint rotations relative to the parent, float64."""
        num_frames, num_joints = self.num_frames, len(self.names)
        out = np.tile(np.eye(3), (num_frames, num_joints, 1, 1))
        groups: dict[str, list[tuple[int, list[int]]]] = {}
        for joint, (channels, cols) in enumerate(zip(self.channels, self._columns())):
            rot_cols = [(c[0], col) for c, col in zip(channels, cols) if c.endswith("rotation")]
            if rot_cols:
                order = "".join(axis for axis, _ in rot_cols)
                groups.setdefault(order, []).append((joint, [col for _, col in rot_cols]))
        for order, members in groups.items():
            joints = [j for j, _ in members]
            angles = np.radians(self.values[:, [cols for _, cols in members]])  # (T, k, n)
            if len(order) == 3 and len(set(order)) == 3:
                out[:, joints] = rot.np_.euler_to_matrix(angles, order)
            else:  # fewer channels or a repeated axis: compose one axis at a time
                for i, axis in enumerate(order):
                    axis_angle = np.zeros(angles.shape[:-1] + (3,))
                    axis_angle[..., _AXES[axis]] = angles[..., i]
                    out[:, joints] = out[:, joints] @ rot.np_.axis_angle_to_matrix(axis_angle)
        return out

    def local_translations(self) -> np.ndarray:
        """(T, J, 3) translation of each joint from its parent, file units."""
        out = np.tile(self.offsets, (self.num_frames, 1, 1)).astype(np.float64)
        for joint, (channels, cols) in enumerate(zip(self.channels, self._columns())):
            for c, col in zip(channels, cols):
                if c.endswith("position"):
                    out[:, joint, _AXES[c[0]]] = self.values[:, col]
        return out


def _fk(parents: tuple[int, ...], local_rot: np.ndarray, local_trans: np.ndarray
        ) -> tuple[np.ndarray, np.ndarray]:
    """Global positions (T, J, 3) and rotations (T, J, 3, 3) of any tree (parents first)."""
    positions = np.empty(local_trans.shape)
    rotations = np.empty(local_rot.shape)
    for j, p in enumerate(parents):
        if p < 0:
            rotations[:, j] = local_rot[:, j]
            positions[:, j] = local_trans[:, j]
        else:
            rotations[:, j] = rotations[:, p] @ local_rot[:, j]
            offset = np.einsum("tab,tb->ta", rotations[:, p], local_trans[:, j])
            positions[:, j] = positions[:, p] + offset
    return positions, rotations


def bvh_forward_kinematics(motion: BvhMotion) -> tuple[np.ndarray, np.ndarray]:
    """World positions (T, J, 3, file units and axes) and rotations (T, J, 3, 3)."""
    return _fk(motion.parents, motion.local_rotations(), motion.local_translations())


def read_bvh(path: str | Path) -> BvhMotion:
    """Parse a BVH file. Raises ``BvhError`` with a stable ``code`` on bad input."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise BvhError("unreadable", f"{path}: cannot read BVH file ({exc})") from exc
    head, sep, body = text.partition("MOTION")
    if not sep or "HIERARCHY" not in head:
        raise BvhError("not_bvh", f"{path}: not a BVH file (needs HIERARCHY and MOTION sections)")
    names, parents, offsets, channels, end_sites = _parse_hierarchy(head.split(), path)
    return BvhMotion(
        names=tuple(names), parents=tuple(parents), offsets=np.array(offsets, dtype=np.float64),
        channels=tuple(channels), end_sites=end_sites,
        **_parse_motion(body.split(), sum(len(c) for c in channels), path),
    )


def _parse_hierarchy(tokens: list[str], path: Path):
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    end_sites: dict[int, np.ndarray] = {}
    stack: list[int] = []  # open blocks: joint index, or -2 for an End Site
    pending: int | None = None  # joint declared, its "{" not yet seen
    i = tokens.index("HIERARCHY") + 1

    def bad(msg: str) -> BvhError:
        return BvhError("bad_hierarchy", f"{path}: {msg}")

    try:
        while i < len(tokens):
            tok = tokens[i]
            if tok in ("ROOT", "JOINT"):
                if tok == "ROOT" and names:
                    raise bad("only one ROOT is supported")
                if (tok == "ROOT") != (not stack):
                    raise bad(f"{tok} at the wrong nesting level")
                parent = stack[-1] if stack else -1
                if parent == -2:
                    raise bad("a joint cannot sit inside an End Site")
                names.append(tokens[i + 1])
                parents.append(parent)
                offsets.append([0.0, 0.0, 0.0])
                channels.append(())
                pending = len(names) - 1
                i += 2
            elif tok == "End":
                if not stack or tokens[i + 1] != "Site":
                    raise bad("misplaced End Site")
                pending = -2
                i += 2
            elif tok == "{":
                if pending is None:
                    raise bad("'{' without a joint")
                stack.append(pending)
                pending = None
                i += 1
            elif tok == "}":
                if not stack:
                    raise bad("unbalanced '}'")
                stack.pop()
                i += 1
            elif tok == "OFFSET":
                value = [float(v) for v in tokens[i + 1:i + 4]]
                if not stack or len(value) != 3:
                    raise bad("misplaced OFFSET")
                if stack[-1] == -2:
                    owner = stack[-2]
                    end_sites.setdefault(owner, np.array(value))
                else:
                    offsets[stack[-1]] = value
                i += 4
            elif tok == "CHANNELS":
                count = int(tokens[i + 1])
                chans = tuple(tokens[i + 2:i + 2 + count])
                if not stack or stack[-1] < 0 or len(chans) != count:
                    raise bad("misplaced CHANNELS")
                if not set(chans) <= _CHANNEL_NAMES:
                    raise BvhError("unknown_channel", f"{path}: unknown channel in {chans}")
                channels[stack[-1]] = chans
                i += 2 + count
            else:
                raise bad(f"unexpected token {tok!r}")
    except (IndexError, ValueError) as exc:
        if isinstance(exc, BvhError):
            raise
        raise bad(f"malformed hierarchy ({exc})") from exc
    if stack or pending is not None:
        raise bad("unbalanced braces")
    if not names:
        raise bad("no joints")
    return names, parents, offsets, channels, end_sites


def _parse_motion(tokens: list[str], num_channels: int, path: Path) -> dict:
    try:
        if tokens[0] != "Frames:" or tokens[2:4] != ["Frame", "Time:"]:
            raise ValueError("expected 'Frames:' and 'Frame Time:'")
        num_frames, frame_time = int(tokens[1]), float(tokens[4])
        values = np.array(tokens[5:], dtype=np.float64)
    except (IndexError, ValueError) as exc:
        raise BvhError("bad_motion", f"{path}: malformed MOTION header or values ({exc})") from exc
    if num_frames < 1 or frame_time <= 0:
        raise BvhError("bad_motion", f"{path}: needs at least one frame and a positive frame time")
    if values.size != num_frames * num_channels:
        raise BvhError(
            "truncated_motion",
            f"{path}: {num_frames} frames x {num_channels} channels needs "
            f"{num_frames * num_channels} values, found {values.size}")
    return {"frame_time": frame_time, "values": values.reshape(num_frames, num_channels)}


# --------------------------------------------------------------------------- retargeting

def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vector a to unit vector b (3x3)."""
    axis = np.cross(a, b)
    sin, cos = np.linalg.norm(axis), float(np.dot(a, b))
    if sin < 1e-9:
        if cos > 0:
            return np.eye(3)
        helper = np.eye(3)[np.argmin(np.abs(a))]  # 180 degrees about any axis normal to a
        axis, sin = np.cross(a, helper), 0.0
    return rot.np_.axis_angle_to_matrix(axis / np.linalg.norm(axis) * np.arctan2(sin, cos))


def _best_rotation(sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rotation R minimising sum |R s_i - t_i|^2 (Kabsch), for (n, 3) unit vectors."""
    u, _, vt = np.linalg.svd(targets.T @ sources)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _smpl_children() -> list[list[int]]:
    children: list[list[int]] = [[] for _ in range(NUM_JOINTS)]
    for j, p in enumerate(PARENTS):
        if p >= 0:
            children[p].append(j)
    return children


def _across_hips() -> np.ndarray:
    """SMPL's rest left-minus-right hip vector, horizontal, unit (Z-up)."""
    v = OFFSETS[JOINT_INDEX["left_hip"]] - OFFSETS[JOINT_INDEX["right_hip"]]
    v = np.array([v[0], v[1], 0.0])
    return v / np.linalg.norm(v)


def _headings(positions: np.ndarray, src: dict[int, int]) -> np.ndarray:
    """(N, 3, 3) turns about Z making each pose's hip line parallel to SMPL's."""
    n = positions.shape[0]
    left, right = src.get(JOINT_INDEX["left_hip"]), src.get(JOINT_INDEX["right_hip"])
    if left is None or right is None:
        return np.tile(np.eye(3), (n, 1, 1))
    across = positions[:, left] - positions[:, right]
    target = _across_hips()
    angle = np.arctan2(target[1], target[0]) - np.arctan2(across[:, 1], across[:, 0])
    axis_angle = np.zeros((n, 3))
    axis_angle[:, 2] = angle
    return rot.np_.axis_angle_to_matrix(axis_angle)


def _smpl_bones(src: dict[int, int], rest_positions: np.ndarray) -> list[tuple[int, int]]:
    """SMPL (joint, descendant) pairs whose directions align a mapped joint.

    Down each branch, the descendant is the nearest mapped joint whose source point
    stands apart from the joint's, passing through unmapped links and coincident
    joints with one child. So a rig without a ``spine2`` (the salsa rig) still aims
    ``spine1`` at its chest, and one whose ``LowerBack`` sits on its hips (cgspeed)
    still tilts the pelvis by the spine.
    """
    children = _smpl_children()
    bones = []
    for joint in sorted(src):
        for child in children[joint]:
            below = child
            while True:
                if below in src and np.linalg.norm(
                        rest_positions[src[below]] - rest_positions[src[joint]]) > _MIN_BONE_M:
                    bones.append((joint, below))
                    break
                if len(children[below]) != 1:
                    break
                below = children[below][0]
    return bones


def _rest_vector(joint: int, descendant: int) -> np.ndarray:
    """SMPL's rest-pose vector from a joint to its descendant (Z-up, metres)."""
    rest = rest_joint_positions()
    return rest[descendant] - rest[joint]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-12)


def _sided_pair(kids: list[int]) -> tuple[int, int, int] | None:
    """(left, right, middle) among a joint's bone ends, when it has such a set: the
    pelvis (hips, spine) and the chest (collars, neck)."""
    names = {JOINT_NAMES[k]: k for k in kids}
    for name, left in names.items():
        right = names.get(name.replace("left_", "right_")) if name.startswith("left_") else None
        middle = [k for k in kids if not JOINT_NAMES[k].startswith(("left_", "right_"))]
        if right is not None and len(middle) == 1:
            return left, right, middle[0]
    return None


def _most_rest_like(positions: np.ndarray, src: dict[int, int], bones: list[tuple[int, int]]) -> int:
    """Index of the pose whose mapped bones are closest (summed angle) to SMPL's rest."""
    if not bones:
        return 0
    headings = _headings(positions, src)
    w = np.stack([positions[:, src[c]] - positions[:, src[p]] for p, c in bones], axis=1)
    w = np.einsum("nab,nkb->nka", headings, w)
    w /= np.linalg.norm(w, axis=-1, keepdims=True).clip(1e-12)
    e = np.stack([_unit(_rest_vector(p, c)) for p, c in bones])
    angles = np.arccos(np.clip((w * e).sum(-1), -1.0, 1.0))
    return int(np.argmin(angles.sum(-1)))


LIMB_HINGES: dict[tuple[str, str, str], tuple[float, float, float]] = {
    ("left_hip", "left_knee", "left_ankle"): (1.0, 0.0, 0.0),
    ("right_hip", "right_knee", "right_ankle"): (1.0, 0.0, 0.0),
    ("left_shoulder", "left_elbow", "left_wrist"): (0.0, 0.0, -1.0),
    ("right_shoulder", "right_elbow", "right_wrist"): (0.0, 0.0, 1.0),
}
"""Knee and elbow flexion axes in SMPL's rest pose (Z-up): cross(upper bone, lower
bone) of a bent limb, knees bending backwards and elbows forwards."""

_HINGE_MIN_BEND = np.sin(np.radians(25.0))
_HINGE_MIN_FRAMES = 10
"""A limb shows its hinge in frames bent more than 25 degrees, beyond any hyperextension
(which bends the other way and would flip the axis); it needs 10 such frames."""


def _hinge_axes(
    positions: np.ndarray, rotations: np.ndarray, src: dict[int, int], bones: list[tuple[int, int]],
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For the upper and middle joints of each limb: (hinge axis in the source joint's
    local frame, as seen over the whole clip; SMPL's rest hinge axis).

    A knee or elbow bends about one axis fixed in its bones, so averaging the bend axis
    over the clip finds the limb's twist whatever pose the reference frame caught it in
    (a ballet reference pose with the legs turned out, say).
    """
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for names, target in LIMB_HINGES.items():
        a, b, c = (JOINT_INDEX[n] for n in names)
        if (a, b) not in bones or (b, c) not in bones:
            continue
        upper = positions[:, src[b]] - positions[:, src[a]]
        lower = positions[:, src[c]] - positions[:, src[b]]
        bend = np.cross(upper / np.linalg.norm(upper, axis=-1, keepdims=True),
                        lower / np.linalg.norm(lower, axis=-1, keepdims=True))  # |.| = sin(bend)
        bent = np.linalg.norm(bend, axis=-1) > _HINGE_MIN_BEND
        if bent.sum() < _HINGE_MIN_FRAMES:
            continue
        for j in (a, b):
            local = np.einsum("tba,tb->ta", rotations[:, src[j]][bent], bend[bent]).sum(0)  # G^T n
            out[j] = (local / np.linalg.norm(local), np.array(target))
    return out


def _frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Orthonormal basis (columns) with ``primary`` first and ``secondary`` in its plane."""
    x = primary / np.linalg.norm(primary)
    y = secondary - np.dot(secondary, x) * x
    y /= np.linalg.norm(y)
    return np.stack([x, y, np.cross(x, y)], axis=1)


def _alignments(
    ref_positions: np.ndarray, ref_rotations: np.ndarray, src: dict[int, int],
    bones: list[tuple[int, int]], hinges: dict[int, tuple[np.ndarray, np.ndarray]],
) -> dict[int, np.ndarray]:
    """Per mapped SMPL joint, A_j with G_smpl_j = G_src_j @ A_j (see module docstring)."""
    heading = _headings(ref_positions[None], src)[0]
    usable: dict[int, list[int]] = {}
    for p, c in bones:
        usable.setdefault(p, []).append(c)
    turn: dict[int, np.ndarray] = {}  # M_j: world rotation laying P's bones on SMPL's rest
    for j in range(NUM_JOINTS):
        if j not in src:
            continue
        kids = usable.get(j, [])
        raw = {c: heading @ (ref_positions[src[c]] - ref_positions[src[j]]) for c in kids}
        w = [_unit(raw[c]) for c in kids]
        e = [_unit(_rest_vector(j, c)) for c in kids]
        spread = len(w) > 1 and max(np.linalg.norm(np.cross(w[0], v)) for v in w[1:]) > 0.1
        hinge = hinges.get(j)
        sided = _sided_pair(kids) if spread else None
        if sided:
            # Left-right line first, then the middle bone: rigs put hip and collar joints
            # at different heights (the salsa rig's hip joints sit level with its root,
            # SMPL's 8 cm below), which would tilt a best fit over all bones.
            left, right, middle = sided
            source_frame = _frame(raw[left] - raw[right], raw[middle])
            smpl_frame = _frame(_rest_vector(j, left) - _rest_vector(j, right), _rest_vector(j, middle))
            turn[j] = smpl_frame @ source_frame.T @ heading
        elif spread:
            turn[j] = _best_rotation(np.array(w), np.array(e)) @ heading
        elif w:
            turn[j] = _swing(w[0], e[0]) @ heading
            axis = heading @ ref_rotations[src[j]] @ hinge[0] if hinge else None
            if axis is not None and np.linalg.norm(np.cross(axis, w[0])) > 0.1:
                turn[j] = _frame(e[0], hinge[1]) @ _frame(w[0], axis).T @ heading
        else:
            ancestor = PARENTS[j]
            while ancestor >= 0 and ancestor not in turn:
                ancestor = PARENTS[ancestor]
            turn[j] = turn[ancestor] if ancestor >= 0 else heading
    return {j: ref_rotations[src[j]].T @ turn[j].T for j in turn}


def _with_end_site_joints(motion: BvhMotion, owners: list[int]) -> tuple[BvhMotion, dict[int, int]]:
    """``motion`` with the End Site of each owner joint appended as a channel-less joint,
    so that FK places it; and owner index -> the new joint's index.

    A rig without a toe joint (the salsa rig) still shows where its foot points through
    the End Site, which is all the retargeter needs to aim SMPL's foot.
    """
    if not owners:
        return motion, {}
    lacking = [motion.names[j] for j in owners if j not in motion.end_sites]
    if lacking:
        raise BvhError("joint_not_found", f"joints {lacking} have no End Site")
    tips = {j: len(motion.names) + k for k, j in enumerate(owners)}
    extended = BvhMotion(
        names=motion.names + tuple(f"{motion.names[j]}.end" for j in owners),
        parents=motion.parents + tuple(owners),
        offsets=np.concatenate([motion.offsets, np.stack([motion.end_sites[j] for j in owners])]),
        channels=motion.channels + ((),) * len(owners),
        end_sites=motion.end_sites, frame_time=motion.frame_time, values=motion.values,
    )
    return extended, tips


def _leg_length(positions: np.ndarray, src: dict[int, int]) -> float | None:
    lengths = []
    for side in ("left", "right"):
        chain = [JOINT_INDEX[f"{side}_{n}"] for n in ("hip", "knee", "ankle")]
        if all(j in src for j in chain):
            p = [positions[src[j]] for j in chain]
            lengths.append(np.linalg.norm(p[1] - p[0]) + np.linalg.norm(p[2] - p[1]))
    return float(np.mean(lengths)) if lengths else None


def retarget_to_smpl(
    motion: BvhMotion, joint_map: JointMap, fps: float | None = FPS,
    contact_joints: tuple[int, ...] = BODY_CONTACT_JOINTS, place_on_floor: bool = True,
) -> MotionClip:
    """SMPL clip (Z-up, metres) driven by a parsed BVH through ``joint_map``.

    fps: output frame rate; None keeps the source's (frames then match the source's,
    minus frame 0 for maps whose reference is ``first_frame`` and the map's
    ``lead_in_frames``). The source's rate is the
    map's ``source_fps`` where it has one (a file whose Frame Time is wrong), else the
    file's.
    """
    index = {name: i for i, name in enumerate(motion.names)}
    missing = [n for n in list(joint_map.joints) + list(joint_map.end_sites) if n not in index]
    if missing:
        raise BvhError("joint_not_found", f"joint map {joint_map.name}: no joints {missing} in file")
    motion, tips = _with_end_site_joints(motion, [index[n] for n in joint_map.end_sites])
    src = {JOINT_INDEX[smpl]: index[name] for name, smpl in joint_map.joints.items()}
    src.update({JOINT_INDEX[smpl]: tips[index[name]] for name, smpl in joint_map.end_sites.items()})
    source_fps = joint_map.source_fps or motion.fps
    if 0 not in src:
        raise BvhError("pelvis_not_mapped", f"joint map {joint_map.name} does not drive the pelvis")

    axes = Y_UP_TO_Z_UP if joint_map.up_axis == "Y" else np.eye(3)
    scale = joint_map.metres_per_unit
    positions, rotations = bvh_forward_kinematics(motion)
    if joint_map.lead_in_frames:  # not dance: a calibration pose and the blend out of it
        if motion.num_frames <= joint_map.lead_in_frames:
            raise BvhError("too_short", f"{joint_map.name} files open with "
                           f"{joint_map.lead_in_frames} frames that are not dance")
        positions, rotations = positions[joint_map.lead_in_frames:], rotations[joint_map.lead_in_frames:]
    positions = positions @ axes.T * scale
    rotations = axes @ rotations
    num_joints = len(motion.names)
    zero_pos, zero_rot = _fk(motion.parents, np.tile(np.eye(3), (1, num_joints, 1, 1)),
                             motion.offsets[None].astype(np.float64))
    zero_pos, zero_rot = zero_pos[0] @ axes.T * scale, axes @ zero_rot[0]

    bones = _smpl_bones(src, zero_pos)
    if joint_map.reference == "zero":
        ref_pos, ref_rot = zero_pos, zero_rot
    elif joint_map.reference == "first_frame":
        ref_pos, ref_rot = positions[0], rotations[0]
        if motion.num_frames < 2:
            raise BvhError("too_short", f"{joint_map.name} files need a T-pose frame and motion")
        positions, rotations = positions[1:], rotations[1:]
    else:
        candidates = np.concatenate([zero_pos[None], positions])
        best = _most_rest_like(candidates, src, bones)
        ref_pos = candidates[best]
        ref_rot = zero_rot if best == 0 else rotations[best - 1]
    # A rig whose zero pose is SMPL's own rest pose (our files) keeps its twists as they are.
    hinges = {} if joint_map.reference == "zero" else _hinge_axes(positions, rotations, src, bones)
    align = _alignments(ref_pos, ref_rot, src, bones, hinges)

    num_frames = positions.shape[0]
    global_smpl = np.empty((num_frames, NUM_JOINTS, 3, 3))
    local_smpl = np.empty_like(global_smpl)
    for j, p in enumerate(PARENTS):
        if j in src:
            global_smpl[:, j] = rotations[:, src[j]] @ align[j]
        else:
            global_smpl[:, j] = global_smpl[:, p]
        local_smpl[:, j] = global_smpl[:, j] if p < 0 else (
            np.swapaxes(global_smpl[:, p], -1, -2) @ global_smpl[:, j])

    source_legs = _leg_length(zero_pos, src)
    smpl_legs = _leg_length(rest_joint_positions(), {j: j for j in range(NUM_JOINTS)})
    ratio = smpl_legs / source_legs if source_legs else 1.0
    root = positions[:, src[0]] * ratio
    quaternions = rot.np_.matrix_to_quaternion(local_smpl)
    if fps is not None:
        quaternions, root = resample_motion(quaternions, root, source_fps, fps)
    return grounded_clip(quaternions, root, source_fps if fps is None else fps, contact_joints,
                         place_on_floor)


def load_bvh_clip(
    path: str | Path, joint_map: JointMap | None = None, fps: float | None = FPS,
    contact_joints: tuple[int, ...] = BODY_CONTACT_JOINTS, place_on_floor: bool = True,
) -> MotionClip:
    """Read a BVH file and retarget it onto SMPL; the joint map is detected if not given."""
    motion = read_bvh(path)
    if joint_map is None:
        joint_map = detect_joint_map(motion.names)
    return retarget_to_smpl(motion, joint_map, fps, contact_joints, place_on_floor)


# --------------------------------------------------------------------------- resampling

def resample_motion(
    quaternions: np.ndarray, root: np.ndarray, fps_in: float, fps_out: float
) -> tuple[np.ndarray, np.ndarray]:
    """Resample (T, J, 4) w-first rotations and (T, 3) root from fps_in to fps_out.

    An integer ratio keeps every k-th frame (no smoothing of the capture); any other
    ratio slerps rotations and lerps the root between the two nearest frames.
    """
    if fps_in <= 0 or fps_out <= 0:
        raise ValueError(f"frame rates must be positive, got {fps_in} -> {fps_out}")
    ratio = fps_in / fps_out
    if abs(ratio - round(ratio)) < 1e-6 and round(ratio) >= 1:
        step = int(round(ratio))
        return quaternions[::step], root[::step]
    num_frames = quaternions.shape[0]
    where = np.arange(0.0, num_frames - 1 + 1e-9, ratio)
    i0 = np.floor(where).astype(int)
    i1 = np.minimum(i0 + 1, num_frames - 1)
    t = (where - i0)
    q0, q1 = quaternions[i0].astype(np.float64), quaternions[i1].astype(np.float64)
    dot = (q0 * q1).sum(-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot).clip(0.0, 1.0)
    theta = np.arccos(dot)
    sin = np.sin(theta)
    tq = t[:, None, None]
    small = sin < 1e-6
    safe = np.where(small, 1.0, sin)
    w0 = np.where(small, 1.0 - tq, np.sin((1.0 - tq) * theta) / safe)
    w1 = np.where(small, tq, np.sin(tq * theta) / safe)
    q = w0 * q0 + w1 * q1
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    r = root[i0] * (1.0 - t[:, None]) + root[i1] * t[:, None]
    return q, r


# --------------------------------------------------------------------------- writing

_WRITE_ORDER = "ZYX"


def write_bvh(clip: MotionClip, path: str | Path) -> Path:
    """Write an SMPL clip as BVH: Y-up, metres, SMPL names and rest pose (module docstring)."""
    path = Path(path)
    children = _smpl_children()
    rot_channels = " ".join(f"{a}rotation" for a in _WRITE_ORDER)
    lines = ["HIERARCHY"]

    def emit(joint: int, depth: int) -> None:
        pad = "  " * depth
        if joint == 0:
            offset = np.array([0.0, PELVIS_REST_HEIGHT, 0.0])
            lines.append(f"ROOT {JOINT_NAMES[joint]}")
            channels = f"CHANNELS 6 Xposition Yposition Zposition {rot_channels}"
        else:
            offset = OFFSETS_Y_UP[joint]
            lines.append(f"{pad}JOINT {JOINT_NAMES[joint]}")
            channels = f"CHANNELS 3 {rot_channels}"
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {offset[0]:.8f} {offset[1]:.8f} {offset[2]:.8f}")
        lines.append(f"{pad}  {channels}")
        for child in children[joint]:
            emit(child, depth + 1)
        if not children[joint]:
            tip = OFFSETS_Y_UP[joint] / np.linalg.norm(OFFSETS_Y_UP[joint]) * 0.08
            lines.extend([f"{pad}  End Site", f"{pad}  {{",
                          f"{pad}    OFFSET {tip[0]:.8f} {tip[1]:.8f} {tip[2]:.8f}", f"{pad}  }}"])
        lines.append(f"{pad}}}")

    emit(0, 0)
    order = []  # the file's joint order is depth-first, not SMPL's index order
    stack = [0]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children[j]))

    to_y = Y_UP_TO_Z_UP.T
    mats = rot.np_.quaternion_to_matrix(clip.rotations.astype(np.float64))
    mats_y = to_y @ mats @ to_y.T
    euler = np.degrees(rot.np_.matrix_to_euler(mats_y[:, order], _WRITE_ORDER))  # (T, J, 3)
    root_y = clip.root_translation.astype(np.float64) @ to_y.T
    values = np.concatenate([root_y, euler.reshape(clip.num_frames, -1)], axis=1)
    lines += ["MOTION", f"Frames: {clip.num_frames}", f"Frame Time: {1.0 / clip.fps:.8f}"]
    body = "\n".join(" ".join(f"{v:.6f}" for v in row) for row in values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n" + body + "\n", encoding="utf-8")
    return path
