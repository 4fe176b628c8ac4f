"""Operators: connect, generate, cancel, regenerate selection, export FBX.

Generate and Regenerate are modal when invoked from the UI: a window-manager timer
calls the job's ``poll_once()`` a few dozen times a second and the UI stays live;
Esc or the Cancel button sends ``cancel``. Run as ``execute()`` (scripts, and
headless Blender, where ``'INVOKE_DEFAULT'`` also lands in ``execute()``) they drive
the same ``poll_once()`` in a loop until the job ends. Either way the whole job is
one undo step: the keys are written while the operator runs and the undo push
happens once, when it finishes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import bpy

from . import rig, scene_audio, session, state
from .core import edit_plan, frame_rate
from .core.backend_link import LinkError
from .protocol.skeleton import JOINT_NAMES
from .preferences import get_prefs
from .properties import set_models, sync_options

POLL_INTERVAL = 1.0 / 30.0


def ensure_connected(context: bpy.types.Context) -> state.BackendInfo:
    """The backend's info, connecting first if needed (blocking; the modal path uses ``Connector``)."""
    if state.LINK.connected and not state.LINK.check():
        return state.LINK.info  # type: ignore[return-value]
    info = state.LINK.connect(get_prefs(context).link_settings())
    after_connect(context, info)
    return info


def after_connect(context: bpy.types.Context, info: state.BackendInfo) -> None:
    """Offer the backend's models and their options in the panel."""
    settings = context.scene.choreo
    set_models(settings, info.models)
    if settings.model not in info.model_names:
        settings.model = info.default_model
    sync_options(settings, info.model(settings.model))


def _overrides(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("options must be a JSON object")
    return value


def _target(context: bpy.types.Context) -> session.Target:
    settings = context.scene.choreo
    if settings.target == "NEW_SMPL":
        obj = rig.build_smpl_rig(context)
        _maybe_body(context, obj)
        return session.SmplTarget(obj)
    return target_for(context, context.active_object)


def target_for(context: bpy.types.Context, obj: bpy.types.Object | None) -> session.Target:
    """The target that writes onto ``obj``: the SMPL rig directly, any other armature retargeted."""
    if obj is None or obj.type != "ARMATURE":
        raise ValueError("select an armature (or choose 'New SMPL rig')")
    if rig.is_smpl_rig(obj):
        return session.SmplTarget(obj)
    from .retarget_target import RigTarget  # the retargeting path, only for other rigs
    return RigTarget.for_object(context, obj)


def _maybe_body(context: bpy.types.Context, obj: bpy.types.Object) -> None:
    """A real SMPL body when the preferences name a model file (else the stand-in stays)."""
    path = get_prefs(context).smpl_model_path
    if path:
        from .body_mesh import body_from_model_file
        body_from_model_file(context, obj, bpy.path.abspath(path), get_prefs(context).link_settings())


def start_generate(context: bpy.types.Context, overrides: dict[str, Any]) -> session.GenerateJob:
    """Build the request from the scene settings and submit it (the connection must be up)."""
    scene = context.scene
    settings = scene.choreo
    if settings.audio_source == "STRIP":
        audio, song_frame = scene_audio.strip_audio(scene)
        dance_frame = None
    else:
        if not settings.audio_path:
            raise ValueError("choose a song (an audio file) first")
        audio, song_frame, dance_frame = Path(bpy.path.abspath(settings.audio_path)), None, scene.frame_start
    if not audio.is_file():
        raise ValueError(f"audio file {audio} not found")
    ranged = settings.range_mode == "RANGE"
    request = session.GenerateRequest(
        audio_path=audio, song_frame=song_frame, dance_frame=dance_frame,
        start_seconds=settings.start_seconds if ranged else 0.0,
        seconds=(settings.seconds or None) if ranged else None,
        model=settings.model or None, seed=None if settings.random_seed else settings.seed,
        options={**settings.option_values(), **overrides}, fit=settings.fit,
        beat_markers=settings.beat_markers, add_sound=settings.audio_source == "FILE",
        plant_feet=settings.plant_feet)
    target = _target(context)
    return session.GenerateJob(scene, state.LINK.client, target, request)


def start_regenerate(context: bpy.types.Context, overrides: dict[str, Any]) -> session.RegenerateJob:
    """Read the rig's current dance, plan the edit from the panel, submit ``inpaint``."""
    scene = context.scene
    settings = scene.choreo
    obj = context.active_object
    target = target_for(context, obj)
    meta = session.MotionMeta.load(obj)
    first, last = edit_range(context)
    if settings.edit_joints == "ALL":
        joints = edit_plan.joints_for(edit_plan.BODY_PARTS)
    elif settings.edit_joints == "PARTS":
        joints = edit_plan.joints_for(settings.edit_parts)
    else:
        joints = selected_joints(context, obj, target)
    own = []
    if settings.keep_own_keys:
        from . import keyframes
        own = keyframes.own_key_frames(obj, target.bones_for(joints), first, last)
    if meta.resampled:  # plan in the dance's own frames
        def to_motion(frame: int) -> int:
            return meta.first_frame + frame_rate.nearest_frame(frame - meta.first_frame, meta.scene_fps,
                                                               meta.motion_fps)
        first, last, own = to_motion(first), to_motion(last), [to_motion(f) for f in own]
    plan = edit_plan.plan_edit(meta.first_frame, meta.motion_frames, first, last, joints, own)
    options = {**meta.options, **settings.option_values(), **overrides}
    job = session.RegenerateJob(scene, state.LINK.client, target, meta, plan, meta.model or None,
                                None if settings.random_seed else settings.seed, options)
    job.plant_feet = settings.plant_feet
    return job


def edit_range(context: bpy.types.Context) -> tuple[int, int]:
    """Scene frames [first, last] to regenerate, from the preview range, markers or typed."""
    scene, settings = context.scene, context.scene.choreo
    if settings.edit_range == "PREVIEW":
        if not scene.use_preview_range:
            raise edit_plan.EditPlanError("set a preview range (Ctrl+P in the timeline) or type frames")
        return scene.frame_preview_start, scene.frame_preview_end
    if settings.edit_range == "MARKERS":
        markers = [m for m in scene.timeline_markers if not m.name.startswith(scene_audio.BEAT_MARKER_PREFIX)]
        chosen = [m.frame for m in markers if m.select]
        return edit_plan.range_from_markers(chosen if len(chosen) == 2 else [m.frame for m in markers],
                                            scene.frame_current)
    return settings.edit_first, settings.edit_last


def selected_joints(context: bpy.types.Context, obj: bpy.types.Object, target: session.Target) -> tuple[str, ...]:
    """SMPL joints of the selected pose bones (through the rig's bone map)."""
    names = {pb.name for pb in obj.pose.bones if pb.bone.select}
    joints = [j for j in JOINT_NAMES if names & set(target.bones_for([j]))]
    return edit_plan.joints_for(bones=joints)


class _JobOperator:
    """Shared modal/execute driving of a job (Generate and Regenerate)."""

    options: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Options", default="", description="JSON object of generator options overriding the panel's",
        options={"SKIP_SAVE"})

    _timer: Any = None
    _connector: Any = None

    def start(self, context: bpy.types.Context) -> Any:
        raise NotImplementedError

    def execute(self, context: bpy.types.Context) -> set[str]:
        if state.JOB is not None:
            self.report({"ERROR"}, "a Choreo job is already running")
            return {"CANCELLED"}
        try:
            ensure_connected(context)
            job = self.start(context)
        except (LinkError, ValueError, edit_plan.EditPlanError, OSError) as exc:
            return self._fail(context, str(exc))
        state.JOB = job
        try:
            while not job.poll_once():
                time.sleep(0.005)
        finally:
            state.JOB = None
        return self._ended(context, job)

    def invoke(self, context: bpy.types.Context, event: Any) -> set[str]:
        if state.JOB is not None or self._connector is not None:
            self.report({"ERROR"}, "a Choreo job is already running")
            return {"CANCELLED"}
        state.CANCEL_REQUESTED = False
        context.scene.choreo.running, context.scene.choreo.progress = True, 0.0
        if not state.LINK.connected or state.LINK.check():
            context.scene.choreo.status = "Connecting to the backend..."
            self._connector = state.Connector(get_prefs(context).link_settings())
        elif not self._submit(context):
            return {"CANCELLED"}
        self._timer = context.window_manager.event_timer_add(POLL_INTERVAL, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _submit(self, context: bpy.types.Context) -> bool:
        try:
            state.JOB = self.start(context)
        except (LinkError, ValueError, edit_plan.EditPlanError, OSError) as exc:
            self._fail(context, str(exc))
            return False
        context.scene.choreo.status = "Generating..."
        return True

    def modal(self, context: bpy.types.Context, event: Any) -> set[str]:
        settings = context.scene.choreo
        if event.type == "ESC" or state.CANCEL_REQUESTED:
            state.CANCEL_REQUESTED = False
            if self._connector is not None:
                self._connector.stop = True
            if state.JOB is not None:
                state.JOB.cancel()
                settings.status = "Cancelling..."
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        if self._connector is not None:
            if not self._connector.done:
                return {"RUNNING_MODAL"}
            connector, self._connector = self._connector, None
            if connector.error or connector.info is None:
                self._stop_timer(context)
                return self._fail(context, connector.error or "could not connect")
            after_connect(context, connector.info)
            if not self._submit(context):
                self._stop_timer(context)
                return {"CANCELLED"}
        job = state.JOB
        finished = job.poll_once()
        settings.progress = 100.0 * job.progress
        for area in context.screen.areas if context.screen else []:
            area.tag_redraw()
        if not finished:
            return {"RUNNING_MODAL"}
        state.JOB = None
        self._stop_timer(context)
        return self._ended(context, job)

    def _stop_timer(self, context: bpy.types.Context) -> None:
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None

    def _ended(self, context: bpy.types.Context, job: Any) -> set[str]:
        settings = context.scene.choreo
        settings.running = False
        if job.state == "done":
            settings.progress = 100.0
            settings.status = "Done"
            return {"FINISHED"}
        settings.status = job.message
        if job.state == "error" and hasattr(job, "discard_new_rig"):
            job.discard_new_rig()
        self.report({"WARNING" if job.state == "cancelled" else "ERROR"}, job.message)
        # Keys that arrived before a cancel stay: they are a valid start of the dance.
        return {"FINISHED"} if job.state == "cancelled" else {"CANCELLED"}

    def _fail(self, context: bpy.types.Context, message: str) -> set[str]:
        settings = context.scene.choreo
        settings.running, settings.status = False, message
        self.report({"ERROR"}, message)
        return {"CANCELLED"}


class CHOREO_OT_generate(_JobOperator, bpy.types.Operator):
    """Generate a dance for the song and stream it onto the target as keys"""

    bl_idname = "choreo.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER", "UNDO"}

    def start(self, context: bpy.types.Context) -> Any:
        return start_generate(context, _overrides(self.options))


class CHOREO_OT_regenerate(_JobOperator, bpy.types.Operator):
    """Regenerate the chosen frames and body parts in place, keeping everything else"""

    bl_idname = "choreo.regenerate"
    bl_label = "Regenerate Selection"
    bl_options = {"REGISTER", "UNDO"}

    def start(self, context: bpy.types.Context) -> Any:
        return start_regenerate(context, _overrides(self.options))


class CHOREO_OT_cancel(bpy.types.Operator):
    """Stop the running generation (keys already written stay)"""

    bl_idname = "choreo.cancel"
    bl_label = "Cancel"

    def execute(self, context: bpy.types.Context) -> set[str]:
        state.CANCEL_REQUESTED = True
        if state.JOB is not None:
            state.JOB.cancel()
        return {"FINISHED"}


class CHOREO_OT_connect(bpy.types.Operator):
    """Connect to the backend (starting it if the preferences say so)"""

    bl_idname = "choreo.connect"
    bl_label = "Connect"

    def execute(self, context: bpy.types.Context) -> set[str]:
        try:
            info = ensure_connected(context)
        except LinkError as exc:
            self.report({"ERROR"}, str(exc))
            context.scene.choreo.status = str(exc)
            return {"CANCELLED"}
        context.scene.choreo.status = f"Connected: {info.summary()}"
        return {"FINISHED"}


class CHOREO_OT_disconnect(bpy.types.Operator):
    """Disconnect (and stop the backend if Blender started it)"""

    bl_idname = "choreo.disconnect"
    bl_label = "Disconnect"

    def execute(self, context: bpy.types.Context) -> set[str]:
        state.LINK.disconnect()
        context.scene.choreo.status = "Disconnected"
        return {"FINISHED"}


class CHOREO_OT_sync_options(bpy.types.Operator):
    """Show the chosen generator's options"""

    bl_idname = "choreo.sync_options"
    bl_label = "Refresh Options"

    def execute(self, context: bpy.types.Context) -> set[str]:
        if state.LINK.info is not None:
            sync_options(context.scene.choreo, state.LINK.info.model(context.scene.choreo.model))
        return {"FINISHED"}


class CHOREO_OT_plant_feet(bpy.types.Operator):
    """Plant the active rig's feet from its contact curves over a frame range (after editing a curve)"""

    bl_idname = "choreo.plant_feet"
    bl_label = "Plant Feet"
    bl_options = {"REGISTER", "UNDO"}

    first: bpy.props.IntProperty(name="First", default=0, description="First frame (with Last 0: the scene or preview range)")  # type: ignore[valid-type]
    last: bpy.props.IntProperty(name="Last", default=0)  # type: ignore[valid-type]

    def execute(self, context: bpy.types.Context) -> set[str]:
        from . import foot_plant_bpy
        from .core.retarget import RetargetError
        obj = context.active_object
        if obj is None or obj.type != "ARMATURE":
            self.report({"ERROR"}, "select an armature")
            return {"CANCELLED"}
        scene = context.scene
        first, last = self.first, self.last
        if last <= 0 or last < first:
            first, last = ((scene.frame_preview_start, scene.frame_preview_end) if scene.use_preview_range
                           else (scene.frame_start, scene.frame_end))
        try:
            result = foot_plant_bpy.plant(obj, first, last)
        except RetargetError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if result is None:
            self.report({"ERROR"}, f"{obj.name} has no contact curves (generate a dance first)")
            return {"CANCELLED"}
        context.scene.choreo.status = f"Feet planted over frames {first}-{last}"
        return {"FINISHED"}


CLASSES = (CHOREO_OT_generate, CHOREO_OT_plant_feet, CHOREO_OT_regenerate, CHOREO_OT_cancel, CHOREO_OT_connect,
           CHOREO_OT_disconnect, CHOREO_OT_sync_options)
