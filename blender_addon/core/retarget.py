"""SMPL motion onto an animator's rig and back (pure numpy; the bpy side is ``retarget_bpy``).

The problem
-----------
The wire's motion is SMPL's: local rotations relative to a rest pose (a T-pose) in
which every joint's orientation is the world axes, and the pelvis's world position.
An animator's rig (Mixamo, Rigify, the UE5 mannequin) differs in every way that
matters: different bone names (``core.bone_maps`` says which bone plays which joint),
an A-pose or some other rest pose, bone axes and rolls chosen by whoever built it,
extra bones (five spine bones, twist bones, a root on the floor), missing ones, other
proportions, perhaps an object rotated and scaled by an FBX importer. Copying local
rotations over would be wrong on all counts. So we match *world directions*: every
mapped bone points where its SMPL bone points, frame by frame.

Forward (``to_target``)
-----------------------
All work happens in world space (Z-up, metres, the rig's object transform applied to
its rest data), because that is where SMPL's motion is defined; only at the end are
orientations turned into Blender's pose-bone quaternions and positions into
pose-bone locations.

1. *Facing.* A rig that faces another way than SMPL (-Y) gets the whole motion
   turned about the vertical to face its way: the yaw between SMPL's hips and the
   rig's hips, rounded to a multiple of 90 degrees (rigs are authored facing an
   axis; rounding keeps a slightly asymmetric rig from bending the dance's path).
2. *SMPL bone directions.* SMPL joint *j*'s bone points from joint *j* to its
   **nearest mapped descendant** *c* along its chain (its child if that is mapped,
   else the child's child, ...). At the pelvis the chain is the spine, at spine3 the
   neck; the other children (hips, collars) fix the twist about that direction.
3. *Rest correction* ``C_j`` (constant, world space): the smallest rotation laying the
   target bone's rest direction (its head to the head of the bone mapped to *c*) onto
   SMPL's rest direction, then twisted about it so the side branches (hips, collars)
   line up as well as they can. The swing keeps each bone's own roll: an A-pose arm is
   lifted about the forward axis, so its front stays in front.
4. *World orientation* of the target bone: ``G_b(t) = D_j(t) C_j R_b`` with ``R_b`` its
   rest orientation and ``D_j`` SMPL's world rotation of joint *j* (identity in SMPL's
   rest). The bone turns from its rest by ``G_b R_b^T = D_j C_j``, which takes its rest
   direction to ``D_j`` of SMPL's rest direction: SMPL's direction now.
5. *Fold.* When joints between *j* and *c* are unmapped (a partial map), ``D_j`` is
   SMPL's world rotation of *j* followed by the swing that lays *j*'s rotated rest
   direction onto where *c* really is: the target bone takes the unmapped joints'
   bending, so it still reaches the next mapped joint. (With *c* a direct child the
   swing is the identity.) A mapped joint with no mapped descendant (head, hands,
   toes, or a wrist whose hand joint is unmapped) keeps the correction of its nearest
   mapped ancestor, i.e. its rest pose relative to its parent, turned as SMPL turns it.
6. *Unmapped target bones* (UE5's spine_02, twist bones, DEF-pelvis.L) keep their rest
   relation to their parent: local rotation identity. Those on a path between mapped
   bones (or above the pelvis) get identity keys, so nothing left over from earlier
   animation bends the chain.
7. *Local quaternions*, Blender's convention: a pose bone's matrix is
   ``parent_pose @ (parent_rest^-1 @ rest) @ T(location) @ R(q)``, so
   ``q_b = R_b^T R_p G_p^T G_b`` (``R`` rest, ``G`` posed orientations, armature or
   world space alike) and ``q_b = R_b^T G_b`` for a bone without a parent.

Root motion
-----------
SMPL's pelvis path is scaled by the ratio of the target's leg length (hip to knee to
ankle) to SMPL's (``LEG_LENGTH`` for the left leg; each side is compared with SMPL's
same side and the ratios averaged, 1 when the map has no complete leg), turned by the
facing yaw, and added to the target's rest pelvis position. Its height then comes from
the feet (below). Who carries it:

* ``OBJECT``: the armature object's location (the bones' locations are zeroed);
* ``ROOT_BONE``: the map's root bone (UE5's ``root``) carries the ground-plane part,
  the pelvis bone the rest (its height, from the root);
* ``PELVIS``: the pelvis bone carries it all;
* ``IN_PLACE``: no horizontal travel at all (the pelvis stays above its rest spot);
  the pelvis bone carries the height.

A pose-bone location is a translation in the bone's own rest frame applied before its
rotation, relative to where its parent's pose puts it; we solve for it through the
target's own forward kinematics, so a parent that moves (UE5's root) is accounted for.

Feet on the floor
-----------------
Scaling the pelvis height by leg length is not enough: the target's legs bend by the
same angles but from another rest pose with other proportions, so its feet would float
or sink. So per frame, after the rotations are known, the target's forward kinematics
(numpy, pelvis at the origin) gives its lowest foot point (heads of the bones mapped to
the ankles and toes), and the pelvis is put at the height that places that point
``scale * (SMPL's lowest foot joint height - the same in SMPL's rest pose)`` above where
the target's own rest pose has it. A rig that stands on its floor in its rest pose
stands on it whenever SMPL's feet are on the floor, and jumps scale with the legs.
Without mapped feet the scaled pelvis height is used as it is.

Inverse (``to_smpl``)
---------------------
Each step undoes: ``D_j = G_b R_b^T C_j^T``, unmapped SMPL joints get the identity (they
follow their parent), local rotations come from world ones, the root from the
pelvis's world position (un-scaled, un-turned), its height from the feet by the same
rule. Forward then inverse gives back SMPL's motion exactly on a full map, and where
joints were folded their rotation comes back carried by the mapped parent.

Assumptions: bones inherit rotation and use local location (Blender's defaults), pose
scale is 1, the object's scale is uniform and not mirrored (refused otherwise), and the
target's limbs hang under the bones they are mapped below (a thigh under the pelvis's
bone, however many unmapped bones lie between). ``object_location`` is in world
space; ``retarget_bpy`` converts it for a parented object and checks the bone flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..protocol.skeleton import (
    JOINT_INDEX, NUM_JOINTS, OFFSETS, PARENTS, PELVIS_REST_HEIGHT,
    rest_joint_positions,
)

from . import quaternions as quat
from .bone_maps import BoneMap

ROOT_MODES: tuple[str, ...] = ("OBJECT", "ROOT_BONE", "PELVIS", "IN_PLACE")

_PRIMARY_CHILD: dict[int, int] = {JOINT_INDEX["pelvis"]: JOINT_INDEX["spine1"],
                                  JOINT_INDEX["spine3"]: JOINT_INDEX["neck"]}
"""Where a joint with several children points: the spine, not a hip or a collar."""
_FOOT_JOINTS: tuple[int, ...] = tuple(JOINT_INDEX[n] for n in
                                      ("left_ankle", "right_ankle", "left_foot", "right_foot"))
_LATERAL_PAIRS: tuple[tuple[str, str], ...] = (
    ("left_hip", "right_hip"), ("left_knee", "right_knee"), ("left_collar", "right_collar"),
    ("left_shoulder", "right_shoulder"), ("left_elbow", "right_elbow"))
"""Left/right joints whose spread tells which way a rig faces, best first."""
_LEGS: tuple[tuple[int, int, int], ...] = tuple(
    (JOINT_INDEX[f"{s}_hip"], JOINT_INDEX[f"{s}_knee"], JOINT_INDEX[f"{s}_ankle"]) for s in ("left", "right"))
_MIN_LENGTH = 1e-5
"""Shorter vectors (metres) have no usable direction (bones whose heads coincide)."""


class RetargetError(ValueError):
    """A rig, map or motion we cannot retarget; the message says what to change."""


def _smpl_children() -> list[list[int]]:
    children: list[list[int]] = [[] for _ in range(NUM_JOINTS)]
    for j, p in enumerate(PARENTS):
        if p >= 0:
            children[p].append(j)
    for j, first in _PRIMARY_CHILD.items():
        children[j].remove(first)
        children[j].insert(0, first)
    return children


_CHILDREN = _smpl_children()
SMPL_REST_POSITIONS: np.ndarray = rest_joint_positions() + np.array([0.0, 0.0, PELVIS_REST_HEIGHT])
"""SMPL's rest joints (24, 3) standing on the floor: where root = (0, 0, PELVIS_REST_HEIGHT) puts them."""


@dataclass(frozen=True)
class RigRest:
    """An armature's rest pose as plain data (what ``retarget_bpy.rig_rest`` reads).

    ``heads``/``tails`` (N, 3) and ``matrices`` (N, 3, 3, each bone's rest orientation:
    its columns are the bone's X, Y (along the bone) and Z axes) are in armature
    space, as Blender's ``Bone.head_local``/``tail_local``/``matrix_local``.
    ``object_matrix`` (4, 4) places the armature in the world: in ``OBJECT`` mode its
    translation is where the object stands when the dance is at the origin.
    ``connected`` marks bones whose head is locked to the parent's tail (Blender then
    ignores their location).
    """

    names: tuple[str, ...]
    parents: tuple[str | None, ...]
    heads: np.ndarray
    tails: np.ndarray
    matrices: np.ndarray
    connected: tuple[bool, ...] = ()
    object_matrix: np.ndarray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self) -> None:
        n = len(self.names)
        if len(set(self.names)) != n:
            raise RetargetError("rig has duplicate bone names")
        if len(self.parents) != n:
            raise RetargetError(f"rig has {n} bones but {len(self.parents)} parents")
        for attr, shape in (("heads", (n, 3)), ("tails", (n, 3)), ("matrices", (n, 3, 3)),
                            ("object_matrix", (4, 4))):
            value = np.asarray(getattr(self, attr), dtype=np.float64)
            if value.shape != shape:
                raise RetargetError(f"rig {attr} has shape {value.shape}, expected {shape}")
            object.__setattr__(self, attr, value)
        object.__setattr__(self, "connected", tuple(bool(c) for c in self.connected) or (False,) * n)
        if len(self.connected) != n:
            raise RetargetError(f"rig has {n} bones but {len(self.connected)} connected flags")
        names = set(self.names)
        bad = sorted({p for p in self.parents if p is not None and p not in names})
        if bad:
            raise RetargetError(f"rig bones name parents that do not exist: {bad}")
        parent = dict(zip(self.names, self.parents))
        for name in self.names:
            seen = {name}
            while (name := parent[name]) is not None:
                if name in seen:
                    raise RetargetError(f"rig bones form a parent cycle through {name!r}")
                seen.add(name)

    @property
    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def parent_indices(self) -> tuple[int, ...]:
        index = self.index
        return tuple(-1 if p is None else index[p] for p in self.parents)


@dataclass
class TargetMotion:
    """What ``to_target`` gives ``keyframes.write_motion``, plus how it got there.

    ``rotations[bone]`` (T, 4) w-first pose-bone quaternions; ``locations[bone]`` (T, 3)
    pose-bone locations; ``object_location`` (T, 3) the object's world location or None.
    ``scale`` is the leg-length ratio applied to root motion, ``yaw_degrees`` how far the
    motion was turned to face the rig's way.
    """

    rotations: dict[str, np.ndarray]
    locations: dict[str, np.ndarray]
    object_location: np.ndarray | None
    scale: float
    yaw_degrees: float


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    half = 0.5 * angle
    return quat.to_matrix(np.concatenate([[np.cos(half)], np.sin(half) * axis]))


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) taking directions ``a`` onto ``b`` by the shortest way."""
    return quat.to_matrix(quat.rotation_between(a, b))


class _RigSpace:
    """A rig's rest pose in world space and its forward kinematics (over ``bones`` and
    everything above them, or the whole rig)."""

    def __init__(self, rig: RigRest, bones: Sequence[int] | None = None) -> None:
        self.rig = rig
        self.parents = rig.parent_indices()
        # The object's transform: uniform scale k times rotation, plus translation.
        a = rig.object_matrix[:3, :3]
        u, s, vt = np.linalg.svd(a)
        k = float(s.mean())
        if k <= 0 or np.ptp(s) > 1e-3 * k:
            raise RetargetError(f"the armature object's scale {np.round(s, 4).tolist()} is not uniform; "
                                "apply the scale (Ctrl+A) before retargeting")
        if np.linalg.det(a) < 0:
            raise RetargetError("the armature object is mirrored (negative scale); apply the scale first")
        self.k = k
        self.object_rotation = u @ vt
        self.home = rig.object_matrix[:3, 3].copy()
        self.heads = rig.heads @ a.T + self.home          # rest heads, world
        # Orthonormalise Blender's matrices (float32 round-off) before they enter products.
        ur, _, vtr = np.linalg.svd(rig.matrices)
        self.rest = self.object_rotation @ (ur @ vtr)     # rest orientations, world
        self.order = self._topological(range(len(rig.names)) if bones is None else bones)

    def _topological(self, bones: Sequence[int]) -> list[int]:
        done: set[int] = set()
        order: list[int] = []
        for b in bones:
            chain = []
            while b >= 0 and b not in done:
                chain.append(b)
                b = self.parents[b]
            for c in reversed(chain):
                done.add(c)
                order.append(c)
        return order

    def world_rotations_from_local(self, local: Mapping[int, np.ndarray], frames: int) -> np.ndarray:
        """Target bones' world orientations (T, N, 3, 3) from pose quaternions (identity if absent)."""
        rot = np.empty((frames, len(self.rig.names), 3, 3))
        for b in self.order:
            p = self.parents[b]
            base = self.rest[b] if p < 0 else rot[:, p] @ (self.rest[p].T @ self.rest[b])
            rot[:, b] = base @ quat.to_matrix(local[b]) if b in local else base
        return rot

    def heads_world(self, rot: np.ndarray, locations: Mapping[int, np.ndarray]) -> np.ndarray:
        """Posed heads (T, N, 3), world, for the object at home: the target's forward kinematics.

        Child head = parent head + the parent's world rotation since rest applied to the
        rest offset (plus the child's location, a translation in its rest frame).
        """
        heads = np.empty(rot.shape[:2] + (3,))
        for b in self.order:
            p = self.parents[b]
            offset = self.heads[b] - (self.heads[p] if p >= 0 else 0.0)
            if b in locations:
                offset = offset + self.k * np.asarray(locations[b], dtype=np.float64) @ self.rest[b].T
            if p < 0:
                heads[:, b] = offset
            else:
                delta = rot[:, p] @ self.rest[p].T
                heads[:, b] = heads[:, p] + np.einsum("tij,tj->ti", delta, np.broadcast_to(offset, heads[:, b].shape))
        return heads

    def location_for(self, bone: int, want: np.ndarray, rot: np.ndarray, heads: np.ndarray) -> np.ndarray:
        """The pose location (T, 3) putting ``bone``'s head at world ``want`` (T, 3).

        Inverse of ``heads_world`` for one bone, given its parent's pose.
        """
        p = self.parents[bone]
        if p < 0:
            offset = want - self.heads[bone]
        else:
            back = np.swapaxes(rot[:, p] @ self.rest[p].T, -1, -2)
            offset = np.einsum("tij,tj->ti", back, want - heads[:, p]) - (self.heads[bone] - self.heads[p])
        return offset @ self.rest[bone] / self.k


class _Setup(_RigSpace):
    """Everything about one (map, rig) pair that does not change from frame to frame."""

    def __init__(self, bone_map: BoneMap, rig: RigRest, scale: float | None) -> None:
        self.bone_map = bone_map
        index = rig.index
        missing = bone_map.missing_in(rig.names)
        if missing:
            raise RetargetError(f"bone map {bone_map.name!r} names bones the rig lacks: {missing}")
        if "pelvis" not in bone_map.bones:
            raise RetargetError(f"bone map {bone_map.name!r} does not map the pelvis; "
                                "retargeting needs it to place the body")
        self.bone_of: dict[int, int] = {JOINT_INDEX[j]: index[b] for j, b in bone_map.joint_to_bone().items()}
        self.root_bone = None if bone_map.root_bone is None else index[bone_map.root_bone]
        self.pelvis = self.bone_of[0]
        # Bones that matter: mapped ones and everything above them (and the root bone).
        super().__init__(rig, list(self.bone_of.values()) + ([self.root_bone] if self.root_bone is not None else []))
        self.mapped_joint = {b: j for j, b in self.bone_of.items()}

        self.yaw = self._facing()
        self.smpl_rest = SMPL_REST_POSITIONS @ self.yaw.T
        self.primary: dict[int, int] = {}
        self.corrections = self._corrections()
        self.scale = self._leg_scale() if scale is None else float(scale)
        if not self.scale > 0:
            raise RetargetError(f"root motion scale must be positive, got {self.scale}")
        self.feet = [j for j in _FOOT_JOINTS if j in self.bone_of]

    def _head(self, joint: int) -> np.ndarray:
        return self.heads[self.bone_of[joint]]

    def _facing(self) -> np.ndarray:
        """The yaw (3, 3) turning SMPL's facing (-Y) onto the rig's, in steps of 90 degrees."""
        for left, right in _LATERAL_PAIRS:
            jl, jr = JOINT_INDEX[left], JOINT_INDEX[right]
            if jl in self.bone_of and jr in self.bone_of:
                target = (self._head(jl) - self._head(jr))[:2]
                smpl = (SMPL_REST_POSITIONS[jl] - SMPL_REST_POSITIONS[jr])[:2]
                if np.linalg.norm(target) < _MIN_LENGTH:
                    continue
                angle = np.arctan2(smpl[0] * target[1] - smpl[1] * target[0], smpl @ target)
                angle = np.round(angle / (np.pi / 2)) * (np.pi / 2)
                c, s = np.cos(angle), np.sin(angle)
                return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        return np.eye(3)

    def _nearest_mapped(self, joint: int) -> int | None:
        """``joint`` if mapped, else the first mapped joint down its (primary) chain."""
        while joint not in self.bone_of:
            if not _CHILDREN[joint]:
                return None
            joint = _CHILDREN[joint][0]
        return joint

    def _directions(self, joint: int) -> list[int]:
        """Mapped descendants that give ``joint`` a direction, primary first."""
        found = []
        for child in _CHILDREN[joint]:
            c = self._nearest_mapped(child)
            while c is not None:
                if (np.linalg.norm(self._head(c) - self._head(joint)) > _MIN_LENGTH
                        and np.linalg.norm(self.smpl_rest[c] - self.smpl_rest[joint]) > _MIN_LENGTH):
                    found.append(c)
                    break
                c = self._nearest_mapped(_CHILDREN[c][0]) if _CHILDREN[c] else None
        return found

    def _corrections(self) -> np.ndarray:
        """Per mapped joint, the world rotation laying the target's rest bone onto SMPL's."""
        out = np.tile(np.eye(3), (NUM_JOINTS, 1, 1))
        for j in range(NUM_JOINTS):
            if j not in self.bone_of:
                out[j] = out[PARENTS[j]] if j else np.eye(3)
                continue
            targets = self._directions(j)
            if not targets:
                out[j] = out[PARENTS[j]] if j else np.eye(3)  # a leaf keeps its parent's correction
                continue
            c0 = targets[0]
            self.primary[j] = c0
            axis = self.smpl_rest[c0] - self.smpl_rest[j]
            corr = _swing(self._head(c0) - self._head(j), axis)
            axis = axis / np.linalg.norm(axis)
            # Twist about the bone: the angle that best lines up the side branches'
            # projections (least squares over them; closed form).
            num = den = 0.0
            for c in targets[1:]:
                u = corr @ (self._head(c) - self._head(j))
                v = self.smpl_rest[c] - self.smpl_rest[j]
                u, v = u - (u @ axis) * axis, v - (v @ axis) * axis
                num += axis @ np.cross(u, v)
                den += u @ v
            if abs(num) + abs(den) > _MIN_LENGTH ** 2:
                corr = _axis_angle(axis, float(np.arctan2(num, den))) @ corr
            out[j] = corr
        return out

    def _leg_scale(self) -> float:
        """Target leg length over SMPL's, averaged over the sides the map has."""
        ratios = []
        for chain in _LEGS:
            joints = [j for j in chain if j in self.bone_of]
            if len(joints) < 2 or joints[0] != chain[0] or joints[-1] != chain[-1]:
                continue
            target = sum(np.linalg.norm(self._head(b) - self._head(a)) for a, b in zip(joints, joints[1:]))
            smpl = sum(np.linalg.norm(SMPL_REST_POSITIONS[b] - SMPL_REST_POSITIONS[a])
                       for a, b in zip(joints, joints[1:]))
            ratios.append(target / smpl)
        return float(np.mean(ratios)) if ratios else 1.0

    # ------------------------------------------------------------------ kinematics

    def world_rotations_from_smpl(self, d: np.ndarray) -> np.ndarray:
        """Target bones' world orientations (T, N, 3, 3) from SMPL's (folded, turned) ``d``."""
        rot = np.empty((d.shape[0], len(self.rig.names), 3, 3))
        for b in self.order:
            p = self.parents[b]
            if b in self.mapped_joint:
                j = self.mapped_joint[b]
                rot[:, b] = d[:, j] @ (self.corrections[j] @ self.rest[b])
            elif p >= 0:
                rot[:, b] = rot[:, p] @ (self.rest[p].T @ self.rest[b])
            else:
                rot[:, b] = self.rest[b]
        return rot

    def lowest_foot(self, heads: np.ndarray) -> np.ndarray:
        """Per frame, the lowest head height (T,) among the bones mapped to SMPL's feet."""
        return heads[:, [self.bone_of[j] for j in self.feet], 2].min(axis=1)


def _check_motion(rotations: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rotations = np.asarray(rotations, dtype=np.float64)
    root = np.asarray(root, dtype=np.float64)
    if rotations.ndim != 3 or rotations.shape[1:] != (NUM_JOINTS, 4):
        raise RetargetError(f"rotations must be (T, {NUM_JOINTS}, 4), got {rotations.shape}")
    if root.shape != (rotations.shape[0], 3):
        raise RetargetError(f"root must be ({rotations.shape[0]}, 3), got {root.shape}")
    if not (np.all(np.isfinite(rotations)) and np.all(np.isfinite(root))):
        raise RetargetError("motion has non-finite values")
    return quat.normalize(rotations), root


def _check_mode(root_mode: str, setup: _Setup) -> None:
    if root_mode not in ROOT_MODES:
        raise RetargetError(f"unknown root mode {root_mode!r}; use one of {', '.join(ROOT_MODES)}")
    if root_mode == "ROOT_BONE" and setup.root_bone is None:
        raise RetargetError(f"root mode ROOT_BONE needs a root bone, and bone map "
                            f"{setup.bone_map.name!r} names none")


def _check_free(setup: _Setup, bone: int) -> None:
    if setup.rig.connected[bone]:
        raise RetargetError(f"bone {setup.rig.names[bone]!r} is connected to its parent, so Blender "
                            "ignores its location; use root mode OBJECT, or disconnect it")


def to_target(rotations: np.ndarray, root: np.ndarray, bone_map: BoneMap, rig: RigRest,
              root_mode: str = "OBJECT", *, scale: float | None = None) -> TargetMotion:
    """SMPL motion ((T, 24, 4) local quaternions, (T, 3) pelvis path) as the rig's channels.

    ``scale`` overrides the leg-length ratio for root motion. See the module docstring
    for the method and the root modes.
    """
    rotations, root = _check_motion(rotations, root)
    setup = _Setup(bone_map, rig, scale)
    _check_mode(root_mode, setup)
    frames = rotations.shape[0]
    yaw = setup.yaw

    positions, world = quat.forward_kinematics(rotations, root, OFFSETS, PARENTS)
    positions = positions @ yaw.T
    world = yaw @ world @ yaw.T
    d = world.copy()
    for j, c in setup.primary.items():
        rest_dir = setup.smpl_rest[c] - setup.smpl_rest[j]
        d[:, j] = _swing(world[:, j] @ rest_dir, positions[:, c] - positions[:, j]) @ world[:, j]
    rot = setup.world_rotations_from_smpl(d)

    pelvis = setup.pelvis
    rest_pelvis = setup.heads[pelvis]
    want = np.empty((frames, 3))
    if root_mode == "IN_PLACE":
        want[:, :2] = rest_pelvis[:2]
    else:
        want[:, :2] = rest_pelvis[:2] + setup.scale * (root[:, :2] @ yaw[:2, :2].T)
    if setup.feet:
        # Heads with every location zero: the feet's height relative to the pelvis.
        relative = setup.heads_world(rot, {})
        low_rel = setup.lowest_foot(relative) - relative[:, pelvis, 2]
        low_rest = setup.heads[[setup.bone_of[j] for j in setup.feet], 2].min()
        smpl_low = positions[:, setup.feet, 2].min(axis=1)
        smpl_low_rest = SMPL_REST_POSITIONS[setup.feet, 2].min()
        want[:, 2] = low_rest + setup.scale * (smpl_low - smpl_low_rest) - low_rel
    else:
        want[:, 2] = rest_pelvis[2] + setup.scale * (root[:, 2] - PELVIS_REST_HEIGHT)

    locations: dict[int, np.ndarray] = {}
    object_location = None
    zeros = np.zeros((frames, 3))
    if root_mode == "OBJECT":
        locations[pelvis] = zeros
        if setup.root_bone is not None:
            locations[setup.root_bone] = zeros
        placed = setup.heads_world(rot, locations)[:, pelvis]
        object_location = setup.home + (want - placed)
    else:
        if root_mode == "ROOT_BONE":
            rb = setup.root_bone
            assert rb is not None
            _check_free(setup, rb)
            ground = setup.heads[rb] + np.concatenate([want[:, :2] - rest_pelvis[:2], np.zeros((frames, 1))], 1)
            heads = setup.heads_world(rot, {})
            locations[rb] = setup.location_for(rb, ground, rot, heads)
        elif setup.root_bone is not None:
            locations[setup.root_bone] = zeros
        _check_free(setup, pelvis)
        heads = setup.heads_world(rot, locations)
        locations[pelvis] = setup.location_for(pelvis, want, rot, heads)

    # Local quaternions for every bone that matters (identity for unmapped ones).
    local = {}
    for b in setup.order:
        p = setup.parents[b]
        rel = rot[:, b] if p < 0 else (setup.rest[p] @ np.swapaxes(rot[:, p], -1, -2)) @ rot[:, b]
        local[rig.names[b]] = quat.sign_continuous(quat.from_matrix(setup.rest[b].T @ rel))
    return TargetMotion(
        rotations=local,
        locations={rig.names[b]: v for b, v in locations.items()},
        object_location=object_location,
        scale=setup.scale,
        yaw_degrees=float(np.degrees(np.arctan2(yaw[1, 0], yaw[0, 0]))),
    )


def to_smpl(bone_map: BoneMap, rig: RigRest, rotations: Mapping[str, np.ndarray], *,
            locations: Mapping[str, np.ndarray] | None = None, object_location: np.ndarray | None = None,
            root_mode: str = "OBJECT", scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The rig's pose back in SMPL space: rotations (T, 24, 4) and root (T, 3), float32.

    ``rotations``/``locations`` are pose-bone channels by bone name (bones left out are
    at rest); ``object_location`` (T, 3) is read only in ``OBJECT`` mode, where it
    moves the whole rig from ``rig.object_matrix``'s translation. Unmapped SMPL joints
    come back as the identity.
    """
    setup = _Setup(bone_map, rig, scale)
    _check_mode(root_mode, setup)
    index = rig.index
    locations = locations or {}
    arrays = [np.asarray(v) for v in list(rotations.values()) + list(locations.values())]
    if object_location is not None and root_mode == "OBJECT":
        arrays.append(np.asarray(object_location))
    if not arrays:
        raise RetargetError("no channels to read")
    frames = arrays[0].shape[0]
    if any(a.shape[0] != frames for a in arrays):
        raise RetargetError("channels have different numbers of frames")
    unknown = [name for name in list(rotations) + list(locations) if name not in index]
    if unknown:
        raise RetargetError(f"channels for bones the rig lacks: {unknown}")
    local = {index[n]: quat.normalize(np.asarray(q, dtype=np.float64)) for n, q in rotations.items()}
    locs = {index[n]: np.asarray(v, dtype=np.float64) for n, v in locations.items()}
    rot = setup.world_rotations_from_local(local, frames)
    heads = setup.heads_world(rot, locs)
    if object_location is not None and root_mode == "OBJECT":
        heads = heads + (np.asarray(object_location, dtype=np.float64) - setup.home)[:, None]

    yaw = setup.yaw
    world = np.empty((frames, NUM_JOINTS, 3, 3))
    for j, p in enumerate(PARENTS):
        if j in setup.bone_of:
            b = setup.bone_of[j]
            d = rot[:, b] @ (setup.corrections[j] @ setup.rest[b]).T
            world[:, j] = yaw.T @ d @ yaw
        else:
            world[:, j] = world[:, p]
    local_smpl = world.copy()
    for j, p in enumerate(PARENTS):
        if p >= 0:
            local_smpl[:, j] = np.swapaxes(world[:, p], -1, -2) @ world[:, j]
    smpl_rot = quat.sign_continuous(quat.from_matrix(local_smpl))

    pelvis_pos = heads[:, setup.pelvis]
    root = np.empty((frames, 3))
    travel = (pelvis_pos[:, :2] - setup.heads[setup.pelvis, :2]) / setup.scale
    root[:, :2] = travel @ yaw[:2, :2]
    if setup.feet:
        relative, _ = quat.forward_kinematics(smpl_rot, np.zeros((frames, 3)), OFFSETS, PARENTS)
        smpl_low_rel = relative[:, setup.feet, 2].min(axis=1)
        low_rest = setup.heads[[setup.bone_of[j] for j in setup.feet], 2].min()
        smpl_low_rest = SMPL_REST_POSITIONS[setup.feet, 2].min()
        root[:, 2] = smpl_low_rest + (setup.lowest_foot(heads) - low_rest) / setup.scale - smpl_low_rel
    else:
        root[:, 2] = PELVIS_REST_HEIGHT + (pelvis_pos[:, 2] - setup.heads[setup.pelvis, 2]) / setup.scale
    return smpl_rot.astype(np.float32), root.astype(np.float32)


def target_forward_kinematics(rig: RigRest, rotations: Mapping[str, np.ndarray], *,
                              locations: Mapping[str, np.ndarray] | None = None,
                              object_location: np.ndarray | None = None,
                              ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """World orientations (T, 3, 3) and head positions (T, 3) of every bone of ``rig`` posed
    by pose-bone channels (bones left out at rest), as Blender would evaluate them.

    ``object_location`` (T, 3), if given, replaces the object's translation. For checks
    and for tools that need the rig's pose without Blender.
    """
    space = _RigSpace(rig)
    index = rig.index
    locations = locations or {}
    arrays = [np.asarray(v) for v in list(rotations.values()) + list(locations.values())]
    frames = arrays[0].shape[0] if arrays else (1 if object_location is None else len(object_location))
    local = {index[n]: quat.normalize(np.asarray(q, dtype=np.float64)) for n, q in rotations.items()}
    rot = space.world_rotations_from_local(local, frames)
    heads = space.heads_world(rot, {index[n]: v for n, v in locations.items()})
    if object_location is not None:
        heads = heads + (np.asarray(object_location, dtype=np.float64) - space.home)[:, None]
    return ({n: rot[:, i] for i, n in enumerate(rig.names)}, {n: heads[:, i] for i, n in enumerate(rig.names)})


def rig_bones_to_key(bone_map: BoneMap, rig: RigRest) -> tuple[str, ...]:
    """The bones ``to_target`` writes rotations for (mapped ones and every bone above them),
    which are also the ones ``to_smpl`` needs to read."""
    setup = _Setup(bone_map, rig, 1.0)
    return tuple(rig.names[b] for b in setup.order)


def leg_scale(bone_map: BoneMap, rig: RigRest) -> float:
    """The root-motion scale ``to_target`` uses: target leg length / SMPL's."""
    return _Setup(bone_map, rig, None).scale


__all__ = ["ROOT_MODES", "RetargetError", "RigRest", "TargetMotion", "to_target", "to_smpl",
           "rig_bones_to_key", "target_forward_kinematics", "leg_scale",
           "SMPL_REST_POSITIONS"]
