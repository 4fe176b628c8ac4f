"""The preview video: one call renders the dance with its song to an MP4, headless.

How the file is read: ``tests/mp4_probe.py`` walks the MP4's boxes with the standard
library (``hdlr`` says which tracks are video and sound, ``mdhd`` how long each is), so
the test needs no extra tool; where ``ffprobe`` is installed it must agree.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import bpy
import pytest

from tests.blender.conftest import EXAMPLE_SONG, FAST_OPTIONS
from tests.blender.test_generate import addon  # noqa: F401  (the fixture)
from tests.mp4_probe import probe

SECONDS = 2.0


def _ffprobe(path) -> dict | None:  # noqa: ANN001
    tool = shutil.which("ffprobe")
    if tool is None:
        return None
    out = subprocess.run([tool, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("camera", ["FOLLOW", "SCENE"])
def test_preview_mp4_has_video_and_the_song_and_lasts_the_dance(addon, scene, tmp_path, camera):  # noqa: ANN001, F811
    s = scene.choreo
    s.audio_source, s.audio_path, s.range_mode, s.start_seconds, s.seconds = "FILE", str(EXAMPLE_SONG), "RANGE", 3.0, SECONDS
    s.target, s.seed, s.beat_markers = "NEW_SMPL", 1, False
    assert bpy.ops.choreo.generate(options=json.dumps(FAST_OPTIONS)) == {"FINISHED"}, s.status
    if camera == "SCENE":
        cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
        scene.collection.objects.link(cam)
        cam.location, cam.rotation_euler = (0.0, -6.0, 1.0), (1.5, 0.0, 0.0)
        scene.camera = cam
    s.preview_camera, s.preview_path = camera, str(tmp_path / "preview.mp4")
    engine = scene.render.engine
    assert bpy.ops.choreo.preview() == {"FINISHED"}, s.status
    path = tmp_path / "preview.mp4"
    info = probe(path)
    assert info.kinds().count("vide") == 1 and info.kinds().count("soun") == 1, info
    frames = scene.frame_end - scene.frame_start + 1
    length = frames / scene.render.fps
    assert abs(length - SECONDS) < 1e-6
    for track in info.tracks:  # each stream lasts the dance (audio frames round up to 1024 samples)
        assert abs(track.seconds - length) <= 0.05, (track, length)
    assert abs(info.seconds - length) <= 0.05
    assert scene.render.engine == engine  # settings put back
    assert "Choreo Preview Camera" not in bpy.data.objects  # the following camera is gone
    ff = _ffprobe(path)
    if ff is not None:
        kinds = sorted(st["codec_type"] for st in ff["streams"])
        assert kinds == ["audio", "video"]
        assert abs(float(ff["format"]["duration"]) - length) <= 0.06
        video = next(st for st in ff["streams"] if st["codec_type"] == "video")
        assert video["codec_name"] == "h264" and int(video["nb_frames"]) == frames
