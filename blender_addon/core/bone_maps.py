"""Bone maps: which bone of an animator's rig plays which SMPL joint (pure Python).

A bone map is data, not code, so an animator can fix or extend one without touching
the add-on: ``presets/*.json`` ship the maps for the rigs people actually have
(Mixamo, Rigify, the UE5 mannequin, and our own SMPL rig), and a map saved from
the UI is the same kind of file.

What a map says
---------------
``bones`` maps an SMPL joint name (``protocol.skeleton.JOINT_NAMES``) to a bone
name. SMPL joint *j* is the bone whose head sits at joint *j* and which points at
*j*'s child joint: SMPL ``left_hip`` is the thigh, ``left_knee`` the shin,
``left_ankle`` the foot, ``left_foot`` the toes, ``left_collar`` the clavicle,
``left_shoulder`` the upper arm. Maps may be partial: a joint left out folds into
its parent (``core.retarget`` says how), and target bones named by no joint keep
their rest pose relative to their parent. ``root`` optionally names a bone above
the pelvis that carries ground-plane travel (UE5's ``root``). SMPL's left is the
character's own left.

File format (JSON, UTF-8)::

    {"format": "choreo-bone-map", "version": 1, "name": "Mixamo",
     "root": null, "prefix": "", "notes": ["why ..."],
     "bones": {"pelvis": "Hips", "spine1": "Spine", ...}}

``bones`` and ``name`` are required; ``format``/``version`` are checked when present;
``notes`` is free text (a string or a list of strings) saying why the choices were made.
Anything else is refused, so a typo does not silently drop a setting.

Detecting a rig
---------------
``detect_preset`` scores every preset by how many of its bone names the rig has,
allowing one common name prefix per rig: Mixamo rigs name their bones
``mixamorig:Hips`` or ``mixamorig1:Hips`` (one number per character imported into
the same file), and some exporters add ``Armature_`` and the like. The prefix is
learnt from the names themselves (the most common remainder in front of a preset
bone name) rather than listed, so a ``mixamorig7:`` rig works too.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..protocol.skeleton import JOINT_NAMES

FORMAT = "choreo-bone-map"
VERSION = 1
PRESETS_DIR: Path = Path(__file__).resolve().parent.parent / "presets"
"""Where the shipped presets live (``blender_addon/presets``)."""

_ALLOWED_KEYS = frozenset({"format", "version", "name", "root", "prefix", "notes", "bones"})
MIN_DETECT_FRACTION = 0.6
"""A preset is only detected when the rig has at least this share of its bones (and
its pelvis): fewer means a different rig that happens to share some common names."""


class BoneMapError(ValueError):
    """A bone map file or dictionary we cannot use; the message says what and where."""


@dataclass(frozen=True)
class BoneMap:
    """SMPL joint name -> target bone name, plus what a rig needs besides the joints.

    ``bones`` hold the names without ``prefix``; ``bone(joint)`` and ``target_names``
    give the names as the rig spells them. ``root`` (also without the prefix) is a bone
    above the pelvis for ground-plane root motion, or None.
    """

    name: str
    bones: Mapping[str, str]
    root: str | None = None
    prefix: str = ""
    notes: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        _check_bones(self.bones, where=f"bone map {self.name!r}")
        object.__setattr__(self, "bones", dict(self.bones))
        if self.root is not None and (not isinstance(self.root, str) or not self.root):
            raise BoneMapError(f"bone map {self.name!r}: root must be a bone name or null")
        if self.root is not None and self.root in self.bones.values():
            raise BoneMapError(f"bone map {self.name!r}: root bone {self.root!r} is also mapped to a joint")

    @property
    def joints(self) -> tuple[str, ...]:
        """The mapped SMPL joints, in SMPL's order."""
        return tuple(j for j in JOINT_NAMES if j in self.bones)

    def bone(self, joint: str) -> str | None:
        """The rig's name (prefix included) of the bone playing ``joint``, or None."""
        name = self.bones.get(joint)
        return None if name is None else self.prefix + name

    @property
    def root_bone(self) -> str | None:
        """The rig's name of the root bone, or None."""
        return None if self.root is None else self.prefix + self.root

    def joint_to_bone(self) -> dict[str, str]:
        """Every mapped joint -> the rig's bone name (prefix included)."""
        return {j: self.prefix + self.bones[j] for j in self.joints}

    @property
    def target_names(self) -> tuple[str, ...]:
        """Every bone name the map refers to, as the rig spells them (root last)."""
        names = tuple(self.joint_to_bone().values())
        return names + ((self.root_bone,) if self.root_bone else ())

    def with_prefix(self, prefix: str) -> "BoneMap":
        return replace(self, prefix=prefix)

    def without(self, *joints: str) -> "BoneMap":
        """The same map with ``joints`` left out (they then fold into their parents)."""
        unknown = [j for j in joints if j not in JOINT_NAMES]
        if unknown:
            raise BoneMapError(f"unknown SMPL joint names {unknown}")
        return replace(self, bones={j: b for j, b in self.bones.items() if j not in joints})

    def missing_in(self, bone_names: Iterable[str]) -> list[str]:
        """The map's bones (rig spelling) that a rig with ``bone_names`` lacks."""
        have = set(bone_names)
        return [b for b in self.target_names if b not in have]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "name": self.name, "root": self.root,
                "prefix": self.prefix, "notes": list(self.notes),
                "bones": {j: self.bones[j] for j in self.joints}}


def _check_bones(bones: Any, where: str) -> None:
    if not isinstance(bones, Mapping):
        raise BoneMapError(f"{where}: 'bones' must be an object of SMPL joint -> bone name, "
                           f"got {type(bones).__name__}")
    unknown = [k for k in bones if k not in JOINT_NAMES]
    if unknown:
        raise BoneMapError(f"{where}: unknown SMPL joint names {unknown}; "
                           f"the joints are {', '.join(JOINT_NAMES)}")
    for joint, bone in bones.items():
        if not isinstance(bone, str) or not bone:
            raise BoneMapError(f"{where}: joint {joint!r} must map to a bone name (a non-empty "
                               f"string), got {bone!r}")
    counts = Counter(bones.values())
    twice = sorted(b for b, n in counts.items() if n > 1)
    if twice:
        raise BoneMapError(f"{where}: bones {twice} are mapped to more than one joint")


def from_dict(data: Any, where: str = "bone map") -> BoneMap:
    """A ``BoneMap`` from parsed JSON, with an error naming the first thing wrong."""
    if not isinstance(data, dict):
        raise BoneMapError(f"{where}: expected a JSON object, got {type(data).__name__}")
    extra = sorted(set(data) - _ALLOWED_KEYS)
    if extra:
        raise BoneMapError(f"{where}: unknown keys {extra}; allowed: {sorted(_ALLOWED_KEYS)}")
    if "format" in data and data["format"] != FORMAT:
        raise BoneMapError(f"{where}: 'format' is {data['format']!r}, expected {FORMAT!r}")
    if "version" in data and data["version"] != VERSION:
        raise BoneMapError(f"{where}: version {data['version']!r} is not supported (this add-on "
                           f"reads version {VERSION})")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise BoneMapError(f"{where}: 'name' must be a non-empty string, got {name!r}")
    if "bones" not in data:
        raise BoneMapError(f"{where}: no 'bones' (SMPL joint -> bone name)")
    _check_bones(data["bones"], where)
    root = data.get("root")
    if root is not None and (not isinstance(root, str) or not root):
        raise BoneMapError(f"{where}: 'root' must be a bone name or null, got {root!r}")
    prefix = data.get("prefix", "")
    if not isinstance(prefix, str):
        raise BoneMapError(f"{where}: 'prefix' must be a string, got {prefix!r}")
    notes = data.get("notes", [])
    if isinstance(notes, str):
        notes = [notes]
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise BoneMapError(f"{where}: 'notes' must be a string or a list of strings")
    try:
        return BoneMap(name=name, bones=data["bones"], root=root, prefix=prefix, notes=tuple(notes))
    except BoneMapError as exc:
        raise BoneMapError(f"{where}: {exc}") from None


def load(path: str | Path) -> BoneMap:
    """Read a bone map JSON file (errors name the file and the problem)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BoneMapError(f"cannot read bone map {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BoneMapError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, "
                           f"column {exc.colno})") from None
    return from_dict(data, where=str(path))


def save(bone_map: BoneMap, path: str | Path) -> Path:
    """Write ``bone_map`` as JSON (the format ``load`` reads)."""
    path = Path(path)
    path.write_text(json.dumps(bone_map.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def preset_names() -> tuple[str, ...]:
    """The shipped presets' file stems (``smpl``, ``mixamo``, ...), sorted."""
    return tuple(sorted(p.stem for p in PRESETS_DIR.glob("*.json")))


def load_preset(name: str) -> BoneMap:
    """A shipped preset by file stem (case-insensitive)."""
    path = PRESETS_DIR / f"{name.lower()}.json"
    if not path.is_file():
        raise BoneMapError(f"no bone map preset {name!r}; presets: {', '.join(preset_names())}")
    return load(path)


def presets() -> dict[str, BoneMap]:
    return {name: load_preset(name) for name in preset_names()}


@dataclass(frozen=True)
class Detection:
    """What ``detect_preset`` found: the map (prefix applied) or None, and why."""

    bone_map: BoneMap | None
    preset: str | None
    prefix: str
    matched: int
    total: int
    reason: str
    scores: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Every preset's (matched, total) bone count, for a UI that wants to show them."""


def _best_prefix(bone_map: BoneMap, names: set[str]) -> tuple[str, int]:
    """The prefix under which most of the map's bones are found in ``names``, and how many."""
    wanted = list(bone_map.bones.values()) + ([bone_map.root] if bone_map.root else [])
    votes: Counter[str] = Counter()
    for name in names:
        for bone in wanted:
            if name.endswith(bone):
                votes[name[: len(name) - len(bone)]] += 1
    if not votes:
        return "", 0
    # Fewest characters wins a tie: "" before "Armature_".
    prefix = min(votes, key=lambda p: (-votes[p], len(p), p))
    return prefix, sum(1 for bone in wanted if prefix + bone in names)


def detect_preset(bone_names: Iterable[str], candidates: Mapping[str, BoneMap] | None = None,
                  ) -> Detection:
    """The preset that fits a rig with ``bone_names`` best, or None and the reason.

    Score = how many of the preset's bones (joints and root) exist under the best
    prefix. The winner must have its pelvis and at least ``MIN_DETECT_FRACTION`` of its
    bones; a tie on score goes to the larger share of the preset found.
    """
    names = set(bone_names)
    candidates = presets() if candidates is None else candidates
    if not names:
        return Detection(None, None, "", 0, 0, "the rig has no bones")
    scored = []
    for key, bone_map in candidates.items():
        prefix, matched = _best_prefix(bone_map, names)
        total = len(bone_map.bones) + (1 if bone_map.root else 0)
        scored.append((matched, matched / max(total, 1), key, prefix, total, bone_map))
    scores = {s[2]: (s[0], s[4]) for s in scored}
    if not scored:
        return Detection(None, None, "", 0, 0, "no presets to compare with", scores)
    matched, share, key, prefix, total, bone_map = max(scored, key=lambda s: (s[0], s[1]))
    summary = ", ".join(f"{k} {m}/{t}" for k, (m, t) in sorted(scores.items()))
    if matched == 0:
        return Detection(None, None, "", 0, total, f"no bone names match any preset ({summary})", scores)
    found = bone_map.with_prefix(prefix)
    if found.bone("pelvis") not in names:
        return Detection(None, None, prefix, matched, total,
                         f"best preset {key!r} matches {matched}/{total} bones but not its pelvis "
                         f"{found.bone('pelvis')!r} ({summary})", scores)
    if share < MIN_DETECT_FRACTION:
        return Detection(None, None, prefix, matched, total,
                         f"best preset {key!r} matches only {matched}/{total} bones, below "
                         f"{MIN_DETECT_FRACTION:.0%} ({summary}); make a bone map for this rig", scores)
    where = f" with prefix {prefix!r}" if prefix else ""
    missing = found.missing_in(names)
    if missing:
        # Use what the rig has: absent joints fold into their parents, as in any partial map.
        absent = [j for j in found.joints if found.bone(j) not in names]
        found = found.without(*absent)
        if found.root_bone is not None and found.root_bone not in names:
            found = replace(found, root=None)
    note = f"; missing {missing} (left unmapped)" if missing else ""
    return Detection(found, key, prefix, matched, total,
                     f"{bone_map.name}{where}: {matched}/{total} bones found{note}", scores)
