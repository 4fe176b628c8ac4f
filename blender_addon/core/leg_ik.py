"""Plant the feet of any rig by two-bone IK (pure numpy; the bpy side is ``foot_plant_bpy``).

Works on the rig the dance landed on, not on SMPL's: the legs are the bones the rig's
bone map gives for ``<side>_hip`` (thigh), ``<side>_knee`` (shin), ``<side>_ankle``
(foot) and ``<side>_foot`` (toes), posed by the rig's own forward kinematics
(``core.retarget``'s ``_RigSpace``, the same one retargeting uses).

Per frame and leg:

1. *Targets.* The contact labels give spans (``core.foot_contacts``); during an ankle
   span the ankle is held where it stands on average over the span, during a toe span
   the toe is. Each is blended in and out over a few frames. The ankle's target is
   its held position, or, where only the toe is held, the ankle carried along by the
   toe's correction (the foot moves as one piece to put the toe on its mark).
2. *Hips.* Where a target lies beyond the leg's reach, the pelvis comes down just
   enough (its pose location), smoothed over time so it never jumps: a running
   maximum over the blend window, then a running mean over it (never less than
   needed).
3. *Two-bone IK.* The knee bends about the knee's own hinge (the normal of the plane of
   hip, knee and ankle, kept in the thigh's frame where the leg is straight) to make
   the hip-ankle distance right (law of cosines, at most 99.95 % of full reach), then
   the whole leg swings about the hip, by the smallest rotation, to put the ankle on
   its target: the knee stays in its own plane, turned as little as possible.
4. *Foot.* The foot keeps its world orientation; while the toe is held (with the
   ankle), it turns by the smallest rotation that points it at the held toe.

Only the thigh, shin and foot bones' rotations and the pelvis's location change, and
only on frames with a correction; every other bone and frame keeps its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from . import foot_contacts as fc
from . import quaternions as quat
from .bone_maps import BoneMap
from .retarget import RetargetError, RigRest, _RigSpace

MAX_REACH = 0.9995
"""Fraction of the leg's full length the IK stretches it to (a locked-straight knee has no
defined bend direction, and the last fraction of a percent makes the knee snap)."""
SOFT_REACH = 0.99
"""Fraction of full reach beyond which the hips come down instead (unless the dance itself
has the leg straighter there)."""
MAX_DROP_STEP = 0.003
"""Metres the hips may come down (or go back up) in one frame."""
MAX_KNEE_STEP = 6.0
"""Degrees a planted knee may straighten in one frame before the hips come down instead."""
SIDES = ("left", "right")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _axis_rotation(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (T, 3, 3) by ``angle`` (T,) about unit ``axis`` (T, 3)."""
    half = 0.5 * np.asarray(angle)[..., None]
    return quat.to_matrix(np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1))


def _apply(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("tij,tj->ti", m, v)


@dataclass
class TwoBoneSolution:
    """World-space rotations (T, 3, 3) to left-multiply onto the thigh's and the shin's
    orientations, and where the knee and ankle end up."""

    thigh: np.ndarray
    shin: np.ndarray
    knee: np.ndarray
    ankle: np.ndarray


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, target: np.ndarray,
                hinge_fallback: np.ndarray | None = None, max_reach: float = MAX_REACH) -> TwoBoneSolution:
    """Solve a hip-knee-ankle chain (positions (T, 3)) so the ankle reaches ``target``.

    The bone lengths are kept; the knee bends about its current hinge (the normal of
    hip, knee, ankle; ``hinge_fallback`` (T, 3) where the leg is straight), then the leg
    swings about the hip. Out-of-reach targets are approached as far as the leg goes.
    """
    hip, knee, ankle, target = (np.asarray(a, dtype=np.float64) for a in (hip, knee, ankle, target))
    u1, u2 = knee - hip, ankle - knee
    l1, l2 = np.linalg.norm(u1, axis=-1), np.linalg.norm(u2, axis=-1)
    normal = np.cross(u1, u2)
    size = np.linalg.norm(normal, axis=-1)
    straight = size < 1e-6 * np.maximum(l1 * l2, 1e-12)
    if hinge_fallback is None:
        helper = np.where(np.abs(_unit(u1)[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        hinge_fallback = np.cross(u1, helper)
    hinge = _unit(np.where(straight[:, None], hinge_fallback, normal))
    bend_now = np.arctan2(size, np.sum(u1 * u2, axis=-1))
    want = np.linalg.norm(target - hip, axis=-1)
    want = np.clip(want, np.abs(l1 - l2) + 1e-9, max_reach * (l1 + l2))
    cos_inner = np.clip((l1 ** 2 + l2 ** 2 - want ** 2) / np.maximum(2 * l1 * l2, 1e-12), -1.0, 1.0)
    bend = np.pi - np.arccos(cos_inner)
    b = _axis_rotation(hinge, bend - bend_now)
    bent_ankle = knee + _apply(b, u2)
    s = quat.to_matrix(quat.rotation_between(bent_ankle - hip, target - hip))
    new_knee = hip + _apply(s, u1)
    new_ankle = hip + _apply(s, bent_ankle - hip)
    return TwoBoneSolution(thigh=s, shin=s @ b, knee=new_knee, ankle=new_ankle)


@dataclass(frozen=True)
class Leg:
    """One leg's bones (rig bone indices) and its contact joints' names."""

    side: str
    thigh: int
    shin: int
    foot: int
    toe: int | None

    @property
    def ankle_joint(self) -> str:
        return f"{self.side}_ankle"

    @property
    def toe_joint(self) -> str:
        return f"{self.side}_foot"


def legs_of(bone_map: BoneMap, rig: RigRest) -> list[Leg]:
    """The legs the map gives completely (thigh, shin and foot mapped onto bones the rig has)."""
    index = rig.index
    out = []
    for side in SIDES:
        names = [bone_map.bone(f"{side}_{j}") for j in ("hip", "knee", "ankle", "foot")]
        if any(n is None or n not in index for n in names[:3]):
            continue
        toe = index.get(names[3]) if names[3] else None
        out.append(Leg(side, index[names[0]], index[names[1]], index[names[2]], toe))
    return out


@dataclass
class PlantResult:
    """What to key: pose-bone quaternions (T, 4) of the legs' bones and the pelvis's pose
    location (T, 3) (absent when the hips did not need to come down), plus measures."""

    rotations: dict[str, np.ndarray]
    locations: dict[str, np.ndarray]
    changed: np.ndarray  # (T,) bool: frames with any correction
    hip_drop: np.ndarray  # (T,) metres the pelvis came down
    spans: dict[str, list[fc.Span]] = field(default_factory=dict)
    targets: dict[str, np.ndarray] = field(default_factory=dict)  # ankle targets (T, 3), world


def _running(values: np.ndarray, half: int, how: str) -> np.ndarray:
    if half <= 0 or values.size == 0:
        return values
    padded = np.pad(values, half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    return windows.max(axis=1) if how == "max" else windows.mean(axis=1)


def _lipschitz_above(values: np.ndarray, step: float) -> np.ndarray:
    """The smallest curve >= ``values`` that changes by at most ``step`` a frame, eased: the
    hips start coming down early enough, and rise back slowly."""
    out = values.astype(np.float64).copy()
    for t in range(1, out.size):
        out[t] = max(out[t], out[t - 1] - step)
    for t in range(out.size - 2, -1, -1):
        out[t] = max(out[t], out[t + 1] - step)
    return out


def _drop_for(hip: np.ndarray, target: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """How far (T,) the hip must come down to be ``reach`` from the target (0 if it is)."""
    across = np.linalg.norm((target - hip)[:, :2], axis=-1)
    height = np.sqrt(np.maximum(reach ** 2 - across ** 2, 0.0))
    return np.maximum((hip[:, 2] - target[:, 2]) - height, 0.0)


def _fill_hinge(local_hinge: np.ndarray, valid: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Hinge axes in the thigh's frame, the nearest valid frame's where the leg is straight."""
    if valid.all():
        return local_hinge
    if not valid.any():
        return fallback
    idx = np.flatnonzero(valid)
    pos = np.clip(np.searchsorted(idx, np.arange(valid.size)), 0, idx.size - 1)
    prev = idx[np.clip(pos - 1, 0, idx.size - 1)]
    nxt = idx[pos]
    frames = np.arange(valid.size)
    nearest = np.where(np.abs(frames - prev) <= np.abs(nxt - frames), prev, nxt)
    return np.where(valid[:, None], local_hinge, local_hinge[nearest])


def _chain_holds(world: np.ndarray, leg: Leg, ankle_spans: list[fc.Span], ankle_held: np.ndarray,
                 toe_spans: list[fc.Span], toe_held: np.ndarray, editable: np.ndarray, floor: float,
                 length: float) -> None:
    """Make the holds of overlapping heel and toe spans one rigid foot (in place).

    Where heel and ball are both down the foot is one piece. Spans are taken in order of
    their start; one that overlaps a span of the other joint taken before it is held a
    foot's length from that span's hold, in the direction the dance has the foot over
    their overlap (the one it overlaps most). So along a chain of overlapping spans every
    pair that is down together is exactly a foot apart, and both hold at once.
    """
    spans = {"ankle": ankle_spans, "toe": toe_spans}
    held = {"ankle": ankle_held, "toe": toe_held}
    bone = {"ankle": leg.foot, "toe": leg.toe}
    order = sorted([(sp.start, kind, i) for kind in spans for i, sp in enumerate(spans[kind])])
    done: dict[str, set[int]] = {"ankle": set(), "toe": set()}
    for _, kind, i in order:
        span = spans[kind][i]
        other = "toe" if kind == "ankle" else "ankle"
        best, best_len = None, 0
        for j in done[other]:
            o = spans[other][j]
            overlap = min(span.stop, o.stop) - max(span.start, o.start)
            if overlap > best_len:
                best, best_len = j, overlap
        done[kind].add(i)
        if best is None or (~editable[span.start:span.stop]).any():
            continue  # no partner yet, or held by frames that are not re-planted
        o = spans[other][best]
        both = np.arange(max(span.start, o.start), min(span.stop, o.stop))
        rel = (world[both, bone[kind]] - world[both, bone[other]]).mean(axis=0)
        held[kind][i] = held[other][best] + length * rel / max(float(np.linalg.norm(rel)), 1e-12)
        held[kind][i, 2] = max(held[kind][i, 2], floor)


def plant_feet(rig: RigRest, bone_map: BoneMap, rotations: Mapping[str, np.ndarray],
               labels: Mapping[str, np.ndarray], *, locations: Mapping[str, np.ndarray] | None = None,
               object_location: np.ndarray | None = None, editable: np.ndarray | None = None,
               blend: int = fc.BLEND_FRAMES, threshold: float = fc.THRESHOLD,
               lower_hips: bool = True) -> PlantResult:
    """Planted leg rotations for a rig posed by pose-bone channels over T frames.

    ``rotations``/``locations`` are the rig's pose-bone quaternions (T, 4) and locations
    (T, 3) by bone name (bones left out at rest: give at least every bone from the root
    down the legs); ``object_location`` (T, 3) the object's world location if it moves.
    ``labels[joint]`` (T,) are contact labels by SMPL joint name (``left_ankle``,
    ``left_foot``, ...). ``editable`` (T,) marks the frames that may change (default:
    all); spans reaching outside it are held where the frames outside hold them.
    """
    space = _RigSpace(rig)
    index = rig.index
    legs = legs_of(bone_map, rig)
    if not legs:
        raise RetargetError("the bone map has no complete leg (thigh, shin and foot) to plant")
    lengths = [np.asarray(v).shape[0] for v in rotations.values()]
    if not lengths or min(lengths) != max(lengths):
        raise RetargetError("plant_feet needs rotation channels of one length")
    frames = lengths[0]
    editable = np.ones(frames, dtype=bool) if editable is None else np.asarray(editable, dtype=bool)
    locations = dict(locations or {})
    local = {index[n]: quat.normalize(np.asarray(q, dtype=np.float64)) for n, q in rotations.items()}
    locs = {index[n]: np.asarray(v, dtype=np.float64) for n, v in locations.items()}
    rot = space.world_rotations_from_local(local, frames)
    heads = space.heads_world(rot, locs)
    shift = np.zeros((frames, 3)) if object_location is None else (
        np.asarray(object_location, dtype=np.float64) - space.home)
    world = heads + shift[:, None]

    foot_bones = [leg.foot for leg in legs] + [leg.toe for leg in legs if leg.toe is not None]
    floor = float(space.heads[foot_bones, 2].min())
    spans: dict[str, list[fc.Span]] = {}

    def held(joint: str, bone: int) -> tuple[list[fc.Span], np.ndarray]:
        if joint not in labels:
            return [], np.zeros((0, 3))
        label = np.asarray(labels[joint], dtype=np.float64)
        if label.shape != (frames,):
            raise RetargetError(f"contact labels for {joint} have shape {label.shape}, expected ({frames},)")
        found = fc.contact_spans(label, threshold, max_gap=fc.MERGE_GAP)
        spans[joint] = found
        return found, fc.held_positions(world[:, bone], found, floor, editable)

    plans = []
    for leg in legs:
        toe_spans, toe_held = held(leg.toe_joint, leg.toe) if leg.toe is not None else ([], np.zeros((0, 3)))
        ankle_spans, ankle_held = held(leg.ankle_joint, leg.foot)
        if ankle_spans and toe_spans:
            _chain_holds(world, leg, ankle_spans, ankle_held, toe_spans, toe_held, editable, floor,
                         float(np.linalg.norm(space.heads[leg.toe] - space.heads[leg.foot])))
        ankle_off, ankle_w = fc.plant_offsets(world[:, leg.foot], ankle_spans, ankle_held, blend)
        if leg.toe is not None:
            toe_off, toe_w = fc.plant_offsets(world[:, leg.toe], toe_spans, toe_held, blend)
        else:
            toe_off, toe_w = np.zeros((frames, 3)), np.zeros(frames)
        toe_off = toe_off * editable[:, None]
        ankle_off = ankle_off * editable[:, None]
        toe_w, ankle_w = toe_w * editable, ankle_w * editable
        target = heads[:, leg.foot] + ankle_off + (1.0 - ankle_w)[:, None] * toe_off  # home frame
        toe_target = None
        if leg.toe is not None:
            toe_target = heads[:, leg.toe] + toe_off
            # A held toe keeps the foot's length: the ankle goes to the nearest point a foot's
            # length from it, fully inside a toe span where the ankle is not held, else as
            # far as the toe is held and the ankle is not.
            length = np.linalg.norm(heads[:, leg.toe] - heads[:, leg.foot], axis=-1)
            on_sphere = toe_target + length[:, None] * _unit(target - toe_target)
            toe_in = fc.span_mask(toe_spans, frames) & editable
            ankle_in = fc.span_mask(ankle_spans, frames) & editable
            pull = np.where(toe_in & ~ankle_in, 1.0, toe_w * (1.0 - ankle_w))
            target = target + pull[:, None] * (on_sphere - target)
        plans.append((leg, target, toe_target, toe_w, ankle_w))

    # 2. The hips come down where a leg cannot reach its target.
    pelvis_name = bone_map.bone("pelvis")
    pelvis = index.get(pelvis_name) if pelvis_name else None
    drop = np.zeros(frames)
    if lower_hips and pelvis is not None and not rig.connected[pelvis]:
        legs_geometry = []
        for leg, target, *_ in plans:
            hip = heads[:, leg.thigh]
            l1 = np.linalg.norm(heads[:, leg.shin] - hip, axis=-1)
            l2 = np.linalg.norm(heads[:, leg.foot] - heads[:, leg.shin], axis=-1)
            full = l1 + l2
            # Never straighter than the dance has the leg, or than SOFT_REACH.
            own = np.linalg.norm(heads[:, leg.foot] - hip, axis=-1) / full
            reach = np.clip(np.maximum(own, SOFT_REACH), 0.0, MAX_REACH) * full
            drop = np.maximum(drop, _drop_for(hip, target, reach))
            legs_geometry.append((hip, target, l1, l2))
        drop = _lipschitz_above(np.maximum(drop, 0.0) * editable, MAX_DROP_STEP) * editable
        # Nor straightening by more than MAX_KNEE_STEP a frame: near full extension the knee's
        # angle changes fast with the hip-ankle distance, so there the hips take it up instead.
        step = np.radians(MAX_KNEE_STEP)
        for _ in range(8):
            more = drop.copy()
            for hip, target, l1, l2 in legs_geometry:
                lowered = hip - drop[:, None] * np.array([0.0, 0.0, 1.0])
                d = np.minimum(np.linalg.norm(target - lowered, axis=-1), MAX_REACH * (l1 + l2))
                bend = np.arccos(np.clip((d * d - l1 * l1 - l2 * l2) / (2 * l1 * l2), -1.0, 1.0))
                fast = np.zeros(frames, dtype=bool)
                fast[1:] = (bend[:-1] - bend[1:] > step + 1e-9) & editable[1:] & editable[:-1]
                if not fast.any():
                    continue
                allowed = np.sqrt(l1 ** 2 + l2 ** 2 + 2 * l1 * l2 * np.cos(np.maximum(np.roll(bend, 1) - step, 0.0)))
                more = np.where(fast, np.maximum(more, _drop_for(hip, target, allowed)), more)
            if np.array_equal(more, drop):
                break
            drop = _lipschitz_above(more, MAX_DROP_STEP) * editable
    dropped = drop > 1e-9
    new_locations: dict[str, np.ndarray] = {}
    if dropped.any():
        want = heads[:, pelvis] - drop[:, None] * np.array([0.0, 0.0, 1.0])
        old_loc = locs.get(pelvis, np.zeros((frames, 3)))
        parent = space.parents[pelvis]
        new_loc = space.location_for(pelvis, want, rot, heads) if parent >= 0 else (
            (want - space.heads[pelvis]) @ space.rest[pelvis] / space.k)
        new_locations[rig.names[pelvis]] = np.where(dropped[:, None], new_loc, old_loc)
        locs[pelvis] = new_locations[rig.names[pelvis]]
        heads = space.heads_world(rot, locs)

    # 3-4. Two-bone IK per leg, the foot's world orientation kept (and turned to a held toe).
    desired: dict[int, np.ndarray] = {}
    targets: dict[str, np.ndarray] = {}
    changed = dropped.copy()
    for leg, target, toe_target, toe_w, ankle_w in plans:
        hip, knee, ankle = heads[:, leg.thigh], heads[:, leg.shin], heads[:, leg.foot]
        active = (np.linalg.norm(target - ankle, axis=-1) > 1e-9) | dropped | (toe_w > 0)
        if not active.any():
            continue
        changed |= active
        thigh_rot = rot[:, leg.thigh]
        normal = np.cross(knee - hip, ankle - knee)
        size = np.linalg.norm(normal, axis=-1)
        valid = size > 1e-4 * np.maximum(np.linalg.norm(knee - hip, axis=-1) * np.linalg.norm(ankle - knee, axis=-1), 1e-12)
        local_hinge = np.einsum("tji,tj->ti", thigh_rot, _unit(normal))
        local_hinge = _fill_hinge(local_hinge, valid, np.tile(np.array([1.0, 0.0, 0.0]), (frames, 1)))
        fallback = _apply(thigh_rot, local_hinge)
        sol = two_bone_ik(hip, knee, ankle, target, fallback)
        targets[leg.ankle_joint] = target + shift
        eye = np.broadcast_to(np.eye(3), (frames, 3, 3))
        thigh_delta = np.where(active[:, None, None], sol.thigh, eye)
        shin_delta = np.where(active[:, None, None], sol.shin, eye)
        desired[leg.thigh] = thigh_delta @ rot[:, leg.thigh]
        desired[leg.shin] = shin_delta @ rot[:, leg.shin]
        foot = rot[:, leg.foot]
        if toe_target is not None and leg.toe is not None:
            toe_now = heads[:, leg.toe] - ankle
            turn = quat.rotation_between(toe_now, toe_target - sol.ankle)
            amount = toe_w
            turn = quat.slerp(np.tile([1.0, 0.0, 0.0, 0.0], (frames, 1)), turn, amount)
            foot = np.where((amount > 0)[:, None, None], quat.to_matrix(turn) @ foot, foot)
        desired[leg.foot] = foot

    # World orientations back to pose quaternions, down the chain (bones between keep theirs).
    new_rot = rot.copy()
    out_rotations: dict[str, np.ndarray] = {}
    for b in space.order:
        p = space.parents[b]
        if b in desired:
            new_rot[:, b] = desired[b]
            rel = desired[b] if p < 0 else (space.rest[p] @ np.swapaxes(new_rot[:, p], -1, -2)) @ desired[b]
            q = quat.from_matrix(space.rest[b].T @ rel)
            old = local.get(b, np.tile([1.0, 0.0, 0.0, 0.0], (frames, 1)))
            q = np.where(np.sum(q * old, axis=-1, keepdims=True) < 0, -q, q)
            original = np.asarray(rotations.get(rig.names[b], old), dtype=np.float64)
            out_rotations[rig.names[b]] = np.where(changed[:, None], q, original)
        elif p >= 0 and (changed.any()):
            base = new_rot[:, p] @ (space.rest[p].T @ space.rest[b])
            new_rot[:, b] = base @ quat.to_matrix(local[b]) if b in local else base
    return PlantResult(rotations=out_rotations, locations=new_locations, changed=changed, hip_drop=drop,
                       spans=spans, targets=targets)


def leg_heads(rig: RigRest, bone_map: BoneMap, rotations: Mapping[str, np.ndarray], *,
              locations: Mapping[str, np.ndarray] | None = None,
              object_location: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """World head positions (T, 3) of the legs' bones by SMPL joint name (for checks)."""
    from .retarget import target_forward_kinematics
    _, heads = target_forward_kinematics(rig, rotations, locations=locations, object_location=object_location)
    out = {}
    for leg in legs_of(bone_map, rig):
        for joint, bone in ((f"{leg.side}_hip", leg.thigh), (f"{leg.side}_knee", leg.shin),
                            (leg.ankle_joint, leg.foot), (leg.toe_joint, leg.toe)):
            if bone is not None:
                out[joint] = heads[rig.names[bone]]
    return out


def knee_angles(heads: Mapping[str, np.ndarray], side: str) -> np.ndarray:
    """The knee's bend (T,) in degrees between thigh and shin directions."""
    a = heads[f"{side}_knee"] - heads[f"{side}_hip"]
    b = heads[f"{side}_ankle"] - heads[f"{side}_knee"]
    cos = np.sum(_unit(a) * _unit(b), axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


__all__ = ["MAX_REACH", "Leg", "PlantResult", "TwoBoneSolution", "two_bone_ik", "legs_of", "plant_feet",
           "leg_heads", "knee_angles"]
