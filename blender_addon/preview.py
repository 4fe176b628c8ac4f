"""A preview video of the dance with its song: Workbench, to an MP4 (H.264 + AAC), headless too.

``render_preview`` renders the scene's frame range with the Workbench engine through
Blender's own FFmpeg output, from the scene camera or from a camera that follows the
dancer (a temporary camera, removed afterwards, that keeps a fixed offset from the
pelvis bone on the ground plane and aims at it). Render settings are put back as they
were.

Sound: where Blender has Audaspace (every Blender from blender.org, and the ``bpy`` 5.0
wheel), Blender mixes the scene's sound strips into the file itself; the song is
placed as a strip first if the dance's song is not in the sequencer. The ``bpy`` 4.2
wheel has no Audaspace, so there the silent video is muxed with the song by the
``ffmpeg`` program on the PATH, or the one the ``imageio-ffmpeg`` package ships (a
clear error if there is neither).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import bpy

from . import rig, scene_audio, session

FOLLOW_CAMERA = "Choreo Preview Camera"


class PreviewError(RuntimeError):
    """The preview could not be made (says why)."""


def _song(scene: bpy.types.Scene, obj: bpy.types.Object | None) -> tuple[Path | None, float]:
    """The song and its time (s) at the scene's first frame: the sound strip, else the dance's song."""
    fps = session.scene_fps(scene)
    strips = scene_audio.sound_strips(scene)
    if strips:
        strip = strips[0]
        return Path(bpy.path.abspath(strip.sound.filepath)), (scene.frame_start - strip.frame_start) / fps
    if obj is not None and obj.get(session.META_KEY):
        meta = session.MotionMeta.load(obj)
        if meta.audio_path:
            return Path(meta.audio_path), meta.start_seconds + (scene.frame_start - meta.first_frame) / fps
    return None, 0.0


def _pelvis_bone(obj: bpy.types.Object) -> str:
    if rig.is_smpl_rig(obj):
        return "pelvis"
    from .retarget_target import stored_bone_map
    return stored_bone_map(obj).bone("pelvis") or ""


@contextmanager
def _follow_camera(scene: bpy.types.Scene, obj: bpy.types.Object, distance: float) -> Iterator[Any]:
    """A camera that keeps ``distance`` in front of and above the dancer's pelvis, aimed at it."""
    data = bpy.data.cameras.new(FOLLOW_CAMERA)
    cam = bpy.data.objects.new(FOLLOW_CAMERA, data)
    scene.collection.objects.link(cam)
    bone = _pelvis_bone(obj)
    follow = cam.constraints.new("COPY_LOCATION")
    follow.target, follow.use_z = obj, False
    if bone:
        follow.subtarget = bone
    follow.use_offset = True
    cam.location = (0.35 * distance, -distance, 1.2)
    aim = cam.constraints.new("TRACK_TO")
    aim.target, aim.track_axis, aim.up_axis = obj, "TRACK_NEGATIVE_Z", "UP_Y"
    if bone:
        aim.subtarget = bone
    previous = scene.camera
    scene.camera = cam
    try:
        yield cam
    finally:
        scene.camera = previous
        bpy.data.objects.remove(cam, do_unlink=True)
        bpy.data.cameras.remove(data)


@contextmanager
def _render_settings(scene: bpy.types.Scene, filepath: Path, resolution: tuple[int, int], audio: bool,
                     ) -> Iterator[None]:
    r = scene.render
    saved = {"engine": r.engine, "filepath": r.filepath, "resolution_x": r.resolution_x,
             "resolution_y": r.resolution_y, "resolution_percentage": r.resolution_percentage,
             "use_file_extension": r.use_file_extension}
    fmt = r.image_settings.file_format
    media = getattr(r.image_settings, "media_type", None)  # Blender 5.0: images and videos apart
    ff = r.ffmpeg
    ff_saved = {k: getattr(ff, k) for k in ("format", "codec", "constant_rate_factor", "audio_codec",
                                            "audio_channels", "audio_mixrate", "gopsize")}
    try:
        r.engine = "BLENDER_WORKBENCH"
        r.filepath = str(filepath)
        r.use_file_extension = False
        r.resolution_x, r.resolution_y = resolution
        r.resolution_percentage = 100
        if media is not None:
            r.image_settings.media_type = "VIDEO"
        r.image_settings.file_format = "FFMPEG"
        ff.format, ff.codec, ff.constant_rate_factor, ff.gopsize = "MPEG4", "H264", "MEDIUM", 12
        ff.audio_codec = "AAC" if audio else "NONE"
        if audio:
            ff.audio_channels, ff.audio_mixrate = "STEREO", 48000
        yield
    finally:
        for k, v in saved.items():
            setattr(r, k, v)
        if media is not None:
            r.image_settings.media_type = media
        r.image_settings.file_format = fmt
        for k, v in ff_saved.items():
            try:
                setattr(ff, k, v)
            except (TypeError, ValueError):
                pass


def _ffmpeg_program() -> str | None:
    """The ``ffmpeg`` on the PATH, else the one the ``imageio-ffmpeg`` package ships (the
    Blender test environments install it, so a machine without ffmpeg still muxes)."""
    found = shutil.which("ffmpeg")
    if found is not None:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    return imageio_ffmpeg.get_ffmpeg_exe()


def _mux(video: Path, song: Path, offset: float, seconds: float, out: Path) -> None:
    ffmpeg = _ffmpeg_program()
    if ffmpeg is None:
        raise PreviewError("this Blender cannot mix sound (no Audaspace) and there is no 'ffmpeg' program "
                           "on the PATH to add the song; install ffmpeg or use a Blender from blender.org")
    cmd = [ffmpeg, "-y", "-loglevel", "error", "-i", str(video)]
    if offset >= 0:
        cmd += ["-ss", f"{offset:.6f}", "-i", str(song)]
    else:
        cmd += ["-itsoffset", f"{-offset:.6f}", "-i", str(song)]
    cmd += ["-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", "160k",
            "-t", f"{seconds:.6f}", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise PreviewError(f"ffmpeg could not add the song: {done.stderr.strip()[-300:]}")


def render_preview(context: bpy.types.Context, obj: bpy.types.Object | None, filepath: str | Path, *,
                   camera: str = "FOLLOW", resolution: tuple[int, int] = (640, 360),
                   distance: float = 4.0) -> Path:
    """Render the scene's frame range to an MP4 with the song; returns the file written.

    ``camera``: ``FOLLOW`` (a camera following ``obj``'s pelvis) or ``SCENE`` (the scene's).
    """
    scene = context.scene
    out = Path(bpy.path.abspath(str(filepath)))
    if out.suffix.lower() != ".mp4":
        out = out.with_suffix(".mp4")
    out.parent.mkdir(parents=True, exist_ok=True)
    if camera == "SCENE" and scene.camera is None:
        raise PreviewError("the scene has no camera; choose the following camera")
    if camera == "FOLLOW" and (obj is None or obj.type != "ARMATURE"):
        raise PreviewError("select the dancing armature for the following camera")
    song, offset = _song(scene, obj)
    if song is not None and not song.is_file():
        raise PreviewError(f"the song {song} is not there")
    blender_audio = bool(bpy.app.build_options.audaspace) and song is not None
    added_strip = None
    if blender_audio and not scene_audio.sound_strips(scene):
        fps = session.scene_fps(scene)
        added_strip = scene_audio.place_song(scene, song, int(round(scene.frame_start - offset * fps)))
    seconds = (scene.frame_end - scene.frame_start + 1) / session.scene_fps(scene)
    with tempfile.TemporaryDirectory() as folder:
        target = out if (blender_audio or song is None) else Path(folder) / "video.mp4"
        cam_context = _follow_camera(scene, obj, distance) if camera == "FOLLOW" else _nothing()
        try:
            with cam_context, _render_settings(scene, target, resolution, blender_audio):
                bpy.ops.render.render(animation=True, scene=scene.name)
        finally:
            if added_strip is not None:
                scene_audio._strips(scene).remove(added_strip)
        if not target.is_file():
            raise PreviewError(f"Blender did not write {target}")
        if target != out:
            _mux(target, song, offset, seconds, out)
    return out


@contextmanager
def _nothing() -> Iterator[None]:
    yield None
