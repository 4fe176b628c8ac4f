"""Generation and regeneration jobs: a backend stream on one side, keyframes on the other.

A job is driven by ``poll_once()``: the UI's modal operator calls it on a timer, a
script or a headless test calls it in a loop. Each call reads the job's
``protocol.job_stream.JobStream`` (never blocking), writes whatever chunks have arrived
as keys, so the dance appears while it streams in, and returns True once the job is
over (``state`` then says how it ended).

The dance comes at its model's frame rate, which the job learns from the backend
(``accepted``, or the first chunk) before any key is written; ``core.frame_rate`` does
every conversion between that rate and the scene's.

Targets hide which rig the keys go on: the built-in SMPL rig takes the wire's
numbers directly; the animator's own rig goes through retargeting.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol, Sequence

import bpy
import numpy as np

from . import foot_plant_bpy, keyframes, scene_audio
from .core import frame_rate, smpl_pose
from .core.edit_plan import EditPlan
from .protocol.client import ChoreoClient
from .protocol.skeleton import JOINT_NAMES

META_KEY = "choreo_motion"
"""Object custom property (JSON) describing the dance on a rig, for regeneration."""


@dataclass
class MotionMeta:
    """Where a generated dance sits and what made it: what a regeneration needs to know.

    The seed that made the dance is not kept: a regeneration takes the panel's seed (see
    ``RegenerateJob``), so nothing would read it.
    """

    first_frame: int  # scene frame of the dance's frame 0
    frames: int  # scene frames the dance covers
    scene_fps: float  # the rate it was written at
    motion_fps: float  # the dance's own rate: its model's
    audio_path: str
    start_seconds: float  # where the dance's frame 0 sits in the song
    model: str
    options: dict[str, Any]

    def save(self, obj: bpy.types.Object) -> None:
        obj[META_KEY] = json.dumps(asdict(self))

    @classmethod
    def load(cls, obj: bpy.types.Object) -> "MotionMeta":
        text = obj.get(META_KEY)
        if not text:
            raise ValueError(f"{obj.name} has no Choreo dance to regenerate; generate one first")
        known = {f.name for f in fields(cls)}  # a dance saved by an older add-on also has "seed"
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})

    @property
    def resampled(self) -> bool:
        return not frame_rate.same_rate(self.scene_fps, self.motion_fps)

    @property
    def motion_frames(self) -> int:
        """How many frames at the dance's own rate span it."""
        if not self.resampled:
            return self.frames
        return frame_rate.frames_spanning(self.frames, self.scene_fps, self.motion_fps)


class Target(Protocol):
    """Where keys go: the built-in rig or a retargeted one."""

    obj: bpy.types.Object

    def write(self, first_frame: float, rotations: np.ndarray, root: np.ndarray,
              joints: Sequence[str] | None = None, root_too: bool = True) -> None: ...

    def read(self, first_frame: int, frames: int) -> tuple[np.ndarray, np.ndarray]: ...

    def bones_for(self, joints: Sequence[str]) -> list[str]: ...


class SmplTarget:
    """The built-in SMPL rig: wire quaternions are its pose rotations (``core.smpl_pose``)."""

    def __init__(self, obj: bpy.types.Object) -> None:
        self.obj = obj

    def write(self, first_frame: float, rotations: np.ndarray, root: np.ndarray,
              joints: Sequence[str] | None = None, root_too: bool = True) -> None:
        rot, loc = smpl_pose.to_channels(rotations, root)
        if joints is not None:
            rot = {name: rot[name] for name in joints}
        keyframes.write_motion(self.obj, first_frame, rotations=rot, locations=loc if root_too else None)

    def read(self, first_frame: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
        rot, loc, _ = keyframes.read_motion(self.obj, first_frame + np.arange(frames), JOINT_NAMES)
        return smpl_pose.from_channels(rot, loc)

    def bones_for(self, joints: Sequence[str]) -> list[str]:
        return list(joints)


def scene_fps(scene: bpy.types.Scene) -> float:
    """The rate the scene plays at (``core.frame_rate.scene_rate`` of its render settings)."""
    return frame_rate.scene_rate(scene.render.fps, scene.render.fps_base)


@dataclass
class GenerateRequest:
    """What the panel asked for (copied out of the scene settings)."""

    audio_path: Path
    song_frame: int | None  # scene frame where the song's time 0 sits (a sound strip's start)...
    dance_frame: int | None  # ...or the scene frame where the dance starts (the scene's start)
    start_seconds: float
    seconds: float | None  # None: to the end of the song
    model: str | None
    seed: int | None
    options: dict[str, Any]
    fit: str = "SCENE"  # SCENE: the scene takes the dance's rate; RESAMPLE: the dance takes the scene's
    beat_markers: bool = True
    add_sound: bool = True
    plant_feet: bool = True  # plant the feet from the contact labels once the dance is in
    new_action: bool = True  # the dance goes into a new action named after the song


class GenerateJob:
    """One dance: submitted on creation, written chunk by chunk by ``poll_once``."""

    def __init__(self, scene: bpy.types.Scene, client: ChoreoClient, target: Target,
                 request: GenerateRequest) -> None:
        self.scene, self.client, self.target, self.request = scene, client, target, request
        if request.new_action:
            self.previous_action = dance_action(target.obj, Path(request.audio_path).stem)
        self.contacts: list[Any] = []
        self.stream = client.start_generate(request.audio_path, model=request.model, seed=request.seed,
                                            start=request.start_seconds, seconds=request.seconds,
                                            options=request.options)
        # Known once the backend names the dance's rate (``_begin``), before any key:
        self.motion_fps: float | None = None  # the dance's rate (its model's)
        self.fps: float | None = None  # the scene's rate, which the keys are written at
        self.first_frame = self.song_frame = 0
        self.resampler: frame_rate.StreamResampler | None = None
        self.frames_written = 0
        self.state = "running"
        self.message = ""

    @property
    def progress(self) -> float:
        return self.stream.progress

    def _begin(self, motion_fps: float) -> None:
        """Place the dance once its rate is known: the scene takes it (fit "SCENE"), or the
        dance is resampled to the scene's as it streams in (fit "RESAMPLE")."""
        scene, request = self.scene, self.request
        self.motion_fps = motion_fps
        if request.fit == "SCENE":
            scene.render.fps, scene.render.fps_base = frame_rate.blender_rate(motion_fps)
            self.fps = motion_fps
        else:
            self.fps = scene_fps(scene)
        offset = int(round(request.start_seconds * self.fps))
        if request.song_frame is None:
            self.first_frame = int(request.dance_frame or 0)
            self.song_frame = self.first_frame - offset
        else:
            self.song_frame = request.song_frame
            self.first_frame = self.song_frame + offset
        if not frame_rate.same_rate(self.fps, motion_fps):
            self.resampler = frame_rate.StreamResampler(motion_fps, self.fps)

    def poll_once(self) -> bool:
        """Write what has arrived; True once the job has ended (see ``state``/``message``)."""
        chunks = self.stream.poll()
        if self.motion_fps is None and self.stream.fps is not None:
            self._begin(self.stream.fps)
        final = self.stream.state == "done"
        for i, chunk in enumerate(chunks):
            self._write(chunk.rotations, chunk.root_translation, final and i == len(chunks) - 1)
            self.contacts.append(chunk)
        if final and self.resampler is not None and not chunks:
            self._write(np.zeros((0, 24, 4)), np.zeros((0, 3)), True)
        if self.stream.frames_total and self.frames_written == 0 and self.motion_fps is not None:
            self._fit_range(self.stream.frames_total)
        if not self.stream.finished:
            return False
        self.state, self.message = self.stream.state, self.stream.message
        if self.state == "done":
            self._finish()
        return True

    def _write(self, rotations: np.ndarray, root: np.ndarray, final: bool) -> None:
        if self.resampler is None:
            self.target.write(self.first_frame + self.frames_written, rotations, root)
            self.frames_written += rotations.shape[0]
            return
        start, rot, rt = self.resampler.add(rotations, root, final)
        if rot.shape[0]:
            self.target.write(self.first_frame + start, rot, rt)
        self.frames_written = self.resampler.written

    def _fit_range(self, motion_frames: int) -> None:
        frames = frame_rate.frames_spanning(motion_frames, self.motion_fps, self.fps)
        self.scene.frame_start = min(self.scene.frame_start, self.first_frame)
        self.scene.frame_end = self.first_frame + frames - 1

    def _finish(self) -> None:
        summary = self.stream.summary
        self._fit_range(int(summary.get("frames", self.frames_written)))
        req = self.request
        if req.add_sound:
            scene_audio.place_song(self.scene, req.audio_path, self.song_frame)
        if req.beat_markers:
            scene_audio.set_beat_markers(
                self.scene, (self.first_frame + t * self.fps for t in summary.get("beat_times", [])))
        MotionMeta(first_frame=self.first_frame, frames=self.frames_written, scene_fps=self.fps,
                   motion_fps=self.motion_fps, audio_path=str(req.audio_path),
                   start_seconds=req.start_seconds, model=str(summary.get("model", req.model or "")),
                   options=dict(summary.get("options", req.options))).save(self.target.obj)
        self._contacts_and_plant()

    def _contacts_and_plant(self) -> None:
        """Key the streamed contact labels (at the scene's rate) and plant the feet from them."""
        if not self.contacts:
            return
        chunks = sorted(self.contacts, key=lambda c: c.start)
        labels = np.concatenate([c.contacts for c in chunks])
        if self.resampler is not None:
            labels = frame_rate.resample_labels(labels, self.motion_fps, self.fps, self.frames_written)
        obj = self.target.obj
        foot_plant_bpy.write_contacts(obj, self.first_frame, chunks[0].contact_names, labels[:self.frames_written])
        if self.request.plant_feet:
            foot_plant_bpy.plant(obj, self.first_frame, self.first_frame + self.frames_written - 1)

    def cancel(self) -> None:
        self.stream.cancel()

    def discard_new_rig(self) -> None:
        """After a failure before any key: remove the rig this job built (and its body)."""
        obj = self.target.obj
        if self.frames_written == 0 and obj.get("choreo_rig") and not obj.get(META_KEY):
            for child in list(obj.children):
                bpy.data.objects.remove(child, do_unlink=True)
            data = obj.data
            bpy.data.objects.remove(obj, do_unlink=True)
            bpy.data.armatures.remove(data)


ACTION_SONG_KEY = "choreo_song"
"""Action custom property: the song a dance action was made for (marks the action as ours)."""


def dance_action(obj: bpy.types.Object, song: str) -> Any:
    """Give ``obj`` a new, empty action named after the song, for a dance to go into.

    The action the rig had (the animator's own take, or an earlier dance) is kept with a
    fake user, unchanged and restorable; nothing of it plays or exports with the dance.
    On Blender 4.4+ the new action gets its own slot. Returns the previous action.
    """
    ad = obj.animation_data or obj.animation_data_create()
    previous = ad.action
    if previous is not None:
        previous.use_fake_user = True
        # The pose the old action left on bones the dance does not key (fingers) goes back
        # to rest, so none of the old take shows (or exports) with the dance.
        for pb in obj.pose.bones:
            pb.location, pb.scale = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
            pb.rotation_quaternion, pb.rotation_euler = (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
            pb.rotation_axis_angle = (0.0, 0.0, 1.0, 0.0)
    action = bpy.data.actions.new(f"{song or 'dance'}")
    action[ACTION_SONG_KEY] = song
    ad.action = action
    if keyframes.layered_actions() and ad.action_slot is None:
        ad.action_slot = action.slots.new(id_type="OBJECT", name=obj.name)
    return previous


class RegenerateJob:
    """Regenerate part of the dance on a rig in place; the rest of its keys stay bit-identical.

    The seed is the panel's (or a random one), not the one that made the dance: the
    animator sees and sets that seed, so the same seed and range give the same frames
    again, another seed another take, and a dance keeps no hidden seed of its own.
    """

    def __init__(self, scene: bpy.types.Scene, client: ChoreoClient, target: Target, meta: MotionMeta,
                 plan: EditPlan, model: str | None, seed: int | None, options: dict[str, Any]) -> None:
        self.scene, self.client, self.target, self.meta, self.plan = scene, client, target, meta, plan
        rot, root = target.read(meta.first_frame, meta.frames)
        if meta.resampled:
            rot, root = frame_rate.resample_motion(rot, root, meta.scene_fps, meta.motion_fps)
        self.rotations, self.root = rot.astype(np.float32), root.astype(np.float32)
        keep = plan.keep_mask(rot.shape[0])
        kf = np.asarray(plan.keyframes, dtype=np.int32)
        extra: dict[str, Any] = {}
        if kf.size:
            extra = dict(keyframe_frames=kf, keyframe_rotations=self.rotations[kf],
                         keyframe_root_translation=self.root[kf])
        self.stream = client.start_inpaint(meta.audio_path, rotations=self.rotations, root_translation=self.root,
                                           keep=keep, start=meta.start_seconds, model=model, seed=seed,
                                           options=options, **extra)
        self.state, self.message = "running", ""
        self._edited: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.plant_feet = True
        # Contacts and planting follow the legs: an edit that leaves them alone (the arms)
        # leaves their keys alone too.
        self.legs_regenerated = bool(plan.root) or any(
            j.endswith(("hip", "knee", "ankle", "foot")) for j in plan.joints)

    @property
    def progress(self) -> float:
        return self.stream.progress

    def _scene_span(self) -> tuple[int, int]:
        """The scene frames [lo, hi), from the dance's first, that the edited span covers."""
        return frame_rate.target_span(self.plan.first, self.plan.stop, self.meta.motion_fps, self.meta.scene_fps)

    def poll_once(self) -> bool:
        chunks = self.stream.poll()
        if self.stream.fps is not None and not frame_rate.same_rate(self.stream.fps, self.meta.motion_fps):
            self.stream.cancel()  # its frames would fall at other times than the dance's
            self.state = "error"
            self.message = (f"{self.meta.model or 'the model'} makes motion at {self.stream.fps:g} fps, this "
                            f"dance is at {self.meta.motion_fps:g} fps: regenerate with a model at its rate")
            return True
        for chunk in chunks:
            if self.meta.resampled:  # written whole at the end, at the scene's rate
                self._edited.append((chunk.start, chunk.rotations, chunk.root_translation))
            else:
                self.target.write(self.meta.first_frame + chunk.start, chunk.rotations, chunk.root_translation,
                                  joints=self.plan.joints, root_too=self.plan.root)
            if not self.meta.resampled and self.legs_regenerated:
                foot_plant_bpy.write_contacts(self.target.obj, self.meta.first_frame + chunk.start,
                                              chunk.contact_names, chunk.contacts)
        if not self.stream.finished:
            return False
        self.state, self.message = self.stream.state, self.stream.message
        if self.state == "done" and self.meta.resampled:
            self._write_resampled()
        if self.state == "done" and self.plant_feet and self.legs_regenerated:
            lo, hi = self._scene_span()
            foot_plant_bpy.plant(self.target.obj, self.meta.first_frame + lo, self.meta.first_frame + hi - 1)
        return True

    def _write_resampled(self) -> None:
        rot, root = self.rotations.copy(), self.root.copy()
        for start, r, t in self._edited:
            rot[start:start + r.shape[0]], root[start:start + r.shape[0]] = r, t
        srot, sroot = frame_rate.resample_motion(rot, root, self.meta.motion_fps, self.meta.scene_fps)
        lo, hi = self._scene_span()
        hi = min(hi, srot.shape[0])
        self.target.write(self.meta.first_frame + lo, srot[lo:hi], sroot[lo:hi],
                          joints=self.plan.joints, root_too=self.plan.root)

    def cancel(self) -> None:
        self.stream.cancel()
