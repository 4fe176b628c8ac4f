"""A motion clip on the SMPL skeleton, and our npz file format for it.

The npz is what ``choreo generate`` writes and what importers, training and the
Blender add-on exchange. It is plain arrays (loaded with ``allow_pickle=False``):

=================  ==============  =============================================
key                shape / dtype   meaning
=================  ==============  =============================================
rotations          (T, 24, 4) f32  local joint rotations, unit quaternions w-first
root_translation   (T, 3) f32      pelvis world position, metres, Z-up
contacts           (T, C) f32      contact labels in [0, 1]
fps                () f32          frames per second
joint_names        (24,) str       SMPL joint order
contact_names      (C,) str        the joint of each contact column
=================  ==============  =============================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backend.conventions import FPS
from backend.motion.skeleton import JOINT_NAMES, NUM_JOINTS


@dataclass
class MotionClip:
    rotations: np.ndarray
    root_translation: np.ndarray
    fps: float = float(FPS)
    contacts: np.ndarray | None = None
    contact_names: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        self.rotations = np.asarray(self.rotations, dtype=np.float32)
        self.root_translation = np.asarray(self.root_translation, dtype=np.float32)
        n = self.rotations.shape[0]
        if self.rotations.shape != (n, NUM_JOINTS, 4):
            raise ValueError(f"rotations must be (T, {NUM_JOINTS}, 4), got {self.rotations.shape}")
        if self.root_translation.shape != (n, 3):
            raise ValueError(f"root_translation must be ({n}, 3), got {self.root_translation.shape}")
        if self.contacts is None:
            self.contacts = np.zeros((n, len(self.contact_names)), dtype=np.float32)
        self.contacts = np.asarray(self.contacts, dtype=np.float32)
        if self.contacts.shape != (n, len(self.contact_names)):
            raise ValueError(
                f"contacts must be ({n}, {len(self.contact_names)}) for {self.contact_names}, "
                f"got {self.contacts.shape}")

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def seconds(self) -> float:
        return self.num_frames / self.fps

    def save_npz(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            rotations=self.rotations,
            root_translation=self.root_translation,
            contacts=self.contacts,
            fps=np.float32(self.fps),
            joint_names=np.array(JOINT_NAMES),
            contact_names=np.array(self.contact_names, dtype=str),
        )
        return path

    @classmethod
    def load_npz(cls, path: str | Path) -> "MotionClip":
        with np.load(path, allow_pickle=False) as data:
            names = tuple(str(n) for n in data["joint_names"])
            if names != JOINT_NAMES:
                raise ValueError(f"{path}: joint_names are not the SMPL order")
            contact_names = tuple(str(n) for n in data["contact_names"]) if "contact_names" in data else ()
            contacts = data["contacts"] if "contacts" in data else None
            return cls(
                rotations=data["rotations"], root_translation=data["root_translation"],
                fps=float(data["fps"]), contacts=contacts, contact_names=contact_names,
            )
