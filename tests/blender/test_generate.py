"""Generate through the add-on in real headless Blender, against a real backend process."""

from __future__ import annotations

import json

import addon_utils
import bpy
import numpy as np
import pytest

from blender_addon import keyframes, session, state
from blender_addon.core.quaternions import forward_kinematics
from blender_addon.operators import after_connect, ensure_connected, start_generate
from protocol.skeleton import JOINT_NAMES, OFFSETS, PARENTS

from tests.blender.conftest import EXAMPLE_SONG, FAST_OPTIONS


@pytest.fixture(scope="module")
def addon(backend):  # noqa: ANN001
    """The add-on enabled from the repository, connected to the test backend."""
    addon_utils.enable("blender_addon", default_set=True, handle_error=None)
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.backend_mode = "CONNECT"
    prefs.connection_file = str(backend.connection_file)
    yield prefs
    state.LINK.disconnect()


def _settings(scene, seconds: float = 3.0, **kw):  # noqa: ANN001, ANN202
    s = scene.choreo
    s.audio_source, s.audio_path = "FILE", str(EXAMPLE_SONG)
    s.range_mode, s.start_seconds, s.seconds, s.seed = "RANGE", 2.0, seconds, 5
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def test_generate_streams_keys_chunk_by_chunk(addon, scene):  # noqa: ANN001
    info = ensure_connected(bpy.context)
    assert info.model_names and info.device == "cpu"
    _settings(scene, seconds=12.0)
    job = start_generate(bpy.context, FAST_OPTIONS)
    seen: list[int] = []
    while not job.poll_once():
        if job.frames_written and (not seen or seen[-1] != job.frames_written):
            seen.append(job.frames_written)
    assert job.state == "done", job.message
    assert len(seen) >= 2, f"keys arrived all at once: {seen}"  # several chunks, written as they came
    obj = job.target.obj
    frames = keyframes.key_frames(obj, 'pose.bones["left_knee"].rotation_quaternion')
    assert frames.size == 360 and frames[0] == scene.frame_start
    assert scene.render.fps == 30 and scene.frame_end == scene.frame_start + 359
    beats = [m for m in scene.timeline_markers if m.name.startswith("beat")]
    assert len(beats) >= 6  # 12 s of a steady song
    meta = session.MotionMeta.load(obj)
    assert meta.frames == 360 and meta.start_seconds == 2.0
    # The song is in the sequencer so that song time 2.0 s plays at the dance's first frame.
    if not bpy.app.build_options.audaspace:  # the bpy 4.2 wheel has no sound support
        return
    strips = [s for s in (scene.sequence_editor.strips_all if hasattr(scene.sequence_editor, "strips_all")
                          else scene.sequence_editor.sequences_all) if s.type == "SOUND"]
    assert len(strips) == 1 and strips[0].frame_start == scene.frame_start - 60


def test_keys_reproduce_the_backend_motion(addon, scene):  # noqa: ANN001
    """World joint positions in Blender equal forward kinematics of the streamed numbers
    (with planting off: planting moves the legs, ``test_foot_plant`` checks it)."""
    ensure_connected(bpy.context)
    _settings(scene, seconds=2.0, plant_feet=False)
    job = start_generate(bpy.context, FAST_OPTIONS)
    got = []
    original = job.target.write

    def spy(first, rot, root, joints=None, root_too=True):  # noqa: ANN001, ANN202
        got.append((first, rot.copy(), root.copy()))
        original(first, rot, root, joints, root_too)

    job.target.write = spy
    while not job.poll_once():
        pass
    assert job.state == "done", job.message
    rot = np.concatenate([g[1] for g in got])
    root = np.concatenate([g[2] for g in got])
    pos, _ = forward_kinematics(rot, root, OFFSETS, PARENTS)
    obj = job.target.obj
    for t in (0, 17, 59):
        scene.frame_set(scene.frame_start + t)
        blender = np.array([obj.matrix_world @ obj.pose.bones[n].head for n in JOINT_NAMES])
        assert np.abs(blender - pos[t]).max() < 1e-4
    # quaternion signs are continuous on every F-curve
    r, _, _ = keyframes.read_motion(obj, scene.frame_start + np.arange(60), JOINT_NAMES)
    for name, q in r.items():
        assert (np.sum(q[1:] * q[:-1], axis=1) >= 0).all(), name


def test_generate_operator_is_one_call_headless(addon, scene):  # noqa: ANN001
    _settings(scene, seconds=2.0)
    assert bpy.ops.choreo.generate(options=json.dumps(FAST_OPTIONS)) == {"FINISHED"}
    rig = bpy.data.objects["SMPL"]
    assert len(keyframes.all_fcurves(rig)) == 24 * 4 + 3 + 4  # + a contact curve per foot joint
    groups = {fc.group.name for fc in keyframes.all_fcurves(rig)}
    assert groups == set(JOINT_NAMES) | {"Choreo Contacts"}
    assert rig.animation_data.action.name == EXAMPLE_SONG.stem  # the dance's action is named after the song
    assert scene.choreo.status == "Done"


def test_the_panel_offers_each_model_with_the_options_hello_lists(addon, scene):  # noqa: ANN001
    """Choosing a generator shows its options as the backend describes them: kinds,
    defaults and, for a choice, the values to pick from; a picked choice is sent."""
    info = ensure_connected(bpy.context)
    after_connect(bpy.context, info)
    s = scene.choreo
    assert [m.name for m in s.models] == info.model_names
    assert {"edge", "popdg", "fact", "dancenet"} <= set(info.model_names)  # every bundled model
    for model in info.models:
        s.model = model["name"]  # the update re-syncs the options, as picking in the panel does
        assert s.options_model == model["name"]
        specs = model["options"]
        assert [(o.name, o.kind) for o in s.options] == [(spec["name"], spec["type"]) for spec in specs]
        for option, spec in zip(s.options, specs, strict=True):
            expected = pytest.approx(spec["default"], rel=1e-6) if spec["type"] == "float" else spec["default"]
            assert option.value() == expected, spec
            assert [c.name for c in option.choices] == spec.get("choices", [])
    s.model = "dancenet"
    style = next(o for o in s.options if o.name == "style")
    assert len(style.choices) > 2
    style.choice_value = style.choices[2].name
    _settings(scene, seconds=2.0)
    job = start_generate(bpy.context, {})
    while not job.poll_once():
        pass
    assert job.state == "done", job.message
    meta = session.MotionMeta.load(job.target.obj)
    assert meta.model == "dancenet" and meta.options["style"] == style.choices[2].name


def test_resample_to_a_29_97_scene(addon, scene):  # noqa: ANN001
    scene.render.fps, scene.render.fps_base = 30, 1.001
    _settings(scene, seconds=3.0, fit="RESAMPLE")
    ensure_connected(bpy.context)
    job = start_generate(bpy.context, FAST_OPTIONS)
    while not job.poll_once():
        pass
    assert job.state == "done", job.message
    assert scene.render.fps == 30 and scene.render.fps_base == pytest.approx(1.001)
    frames = keyframes.key_frames(job.target.obj, 'pose.bones["pelvis"].location')
    # 90 frames at 30 fps span 2.967 s; at 29.97 fps that is 89 frames (+ the first)
    assert frames.size == int(np.floor(89 / 30 * (30 / 1.001) + 1e-6)) + 1
    assert np.all(np.diff(frames) == 1)


def test_bad_audio_is_a_clear_error_and_the_backend_serves_on(addon, scene, tmp_path):  # noqa: ANN001
    junk = tmp_path / "notes.ogg"
    junk.write_bytes(b"this is not audio" * 100)
    s = _settings(scene, seconds=2.0)
    s.audio_path = str(junk)
    with pytest.raises(RuntimeError, match="audio_undecodable"):  # bpy raises what the operator reports
        bpy.ops.choreo.generate(options=json.dumps(FAST_OPTIONS))
    assert "audio_undecodable" in s.status and "SMPL" not in bpy.data.objects
    s.audio_path = str(EXAMPLE_SONG)
    assert bpy.ops.choreo.generate(options=json.dumps(FAST_OPTIONS)) == {"FINISHED"}


def test_cancel_stops_the_stream_and_keeps_what_arrived(addon, scene):  # noqa: ANN001
    ensure_connected(bpy.context)
    _settings(scene, seconds=20.0)
    job = start_generate(bpy.context, {"steps": 4})
    while not job.poll_once() and job.frames_written == 0:
        pass
    job.cancel()
    while not job.poll_once():
        pass
    assert job.state in ("cancelled", "done")
    if job.state == "cancelled":
        assert 0 < job.frames_written < 600
    assert state.LINK.client.ping()["stats"]["uptime_s"] > 0


def test_unreachable_backend_is_an_error_not_a_hang(addon, scene, tmp_path):  # noqa: ANN001
    prefs = addon
    old = prefs.connection_file
    state.LINK.disconnect()
    prefs.connection_file, prefs.endpoint, prefs.request_timeout = "", "tcp://127.0.0.1:9", 1.0
    try:
        _settings(scene, seconds=2.0)
        with pytest.raises(RuntimeError, match="did not answer"):
            bpy.ops.choreo.generate()
        assert "did not answer" in scene.choreo.status
    finally:
        prefs.endpoint, prefs.connection_file, prefs.request_timeout = "", old, 20.0
        state.LINK.disconnect()
