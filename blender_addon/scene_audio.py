"""The song in the scene: a sound strip at the dance's start, and beat markers.

Blender 5.0 renamed the sequencer's ``sequences`` to ``strips``; both are handled here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import bpy

BEAT_MARKER_PREFIX = "beat"
SOUND_STRIP_NAME = "Choreo song"


def _strips(scene: bpy.types.Scene) -> Any:
    editor = scene.sequence_editor or scene.sequence_editor_create()
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def _all_strips(scene: bpy.types.Scene) -> list[Any]:
    editor = scene.sequence_editor
    if editor is None:
        return []
    return list(editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all)


def sound_strips(scene: bpy.types.Scene) -> list[Any]:
    """The scene's sound strips, the active one first."""
    strips = [s for s in _all_strips(scene) if s.type == "SOUND"]
    editor = scene.sequence_editor
    active = getattr(editor, "active_strip", None) if editor is not None else None
    return sorted(strips, key=lambda s: s != active)


def strip_audio(scene: bpy.types.Scene) -> tuple[Path, int]:
    """The file of the scene's (active) sound strip and the frame where the song starts."""
    strips = sound_strips(scene)
    if not strips:
        raise ValueError("the scene has no sound strip; add one or choose an audio file")
    strip = strips[0]
    path = Path(bpy.path.abspath(strip.sound.filepath))
    return path, int(strip.frame_start)


def place_song(scene: bpy.types.Scene, path: Path, song_start_frame: int) -> Any:
    """A sound strip for ``path`` whose song time 0 sits at ``song_start_frame`` (replaces ours).

    Returns None where this Blender has no audio support (the ``bpy`` 4.2 wheel is built
    without Audaspace): the dance is still there, only without its song in the sequencer.
    """
    if not bpy.app.build_options.audaspace:
        return None
    for strip in _all_strips(scene):
        if strip.name.startswith(SOUND_STRIP_NAME):
            _strips(scene).remove(strip)
    channel = 1 + max((s.channel for s in _all_strips(scene)), default=0)
    strip = _strips(scene).new_sound(SOUND_STRIP_NAME, str(path), channel, song_start_frame)
    return strip


def set_beat_markers(scene: bpy.types.Scene, frames: Iterable[float]) -> int:
    """Replace our beat markers with one per frame; the animator's own markers stay."""
    for marker in list(scene.timeline_markers):
        if marker.name.startswith(BEAT_MARKER_PREFIX):
            scene.timeline_markers.remove(marker)
    count = 0
    for i, frame in enumerate(frames):
        scene.timeline_markers.new(f"{BEAT_MARKER_PREFIX} {i + 1}", frame=int(round(frame)))
        count += 1
    return count
