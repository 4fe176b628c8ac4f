"""The editing engine through the real server: every mode, exactness, smooth borders, bad input.

One backend process serves the module. A 10 s dance is generated for the bundled song
(real ogg, real librosa analysis), then edited with the default sampler settings, so
the border measurements are of the real model, not of a plumbing run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.editing import masks
from backend.examples import EXAMPLE_SONG
from backend.metrics.basic import border_jump_ratio, joint_positions
from backend.motion.clip import MotionClip
from backend.motion.skeleton import NUM_JOINTS
from protocol import ChoreoError, Message
from tests.server_fixtures import FAST_STEPS, assert_serving, wait_for

REPO = Path(__file__).resolve().parents[1]
FRAMES = 300
SONG = EXAMPLE_SONG.read_bytes()
UPPER, LOWER = masks.JOINT_SETS["upper"], masks.JOINT_SETS["lower"]
MAX_JUMP = 3.0


@pytest.fixture(scope="module")
def dance(backend_server):
    with backend_server.client(timeout=120) as client:
        return client.generate(SONG, seed=5, seconds=FRAMES / 30)


def _edit(server, dance, keep, seed=1, **request):
    """Run an inpaint; returns the merged result and the chunks as streamed."""
    chunks = []
    request.setdefault("audio_hash", dance.summary["content_hash"])
    with server.client(timeout=120) as client:
        result = client.inpaint(rotations=dance.rotations, root_translation=dance.root_translation,
                                contacts=dance.contacts, keep=keep, seed=seed, on_chunk=chunks.append,
                                **request)
    return result, chunks


def _positions(rotations, root):
    return joint_positions(MotionClip(rotations, root))


def _check_exact_and_streamed(dance, keep, result, chunks):
    """Chunks cover exactly the edited span; every kept value in them is the sent one, bit for bit."""
    first, stop = masks.edited_span(keep)
    assert [c.start for c in chunks][0] == first
    assert sum(c.num_frames for c in chunks) == stop - first == result.summary["frames"]
    assert (result.summary["edit_start"], result.summary["edit_stop"]) == (first, stop)
    streamed_rot = np.concatenate([c.rotations for c in chunks])
    streamed_root = np.concatenate([c.root_translation for c in chunks])
    streamed_con = np.concatenate([c.contacts for c in chunks])
    span = keep[first:stop]
    kept_joints = span[:, :NUM_JOINTS]
    assert np.array_equal(streamed_rot[kept_joints], dance.rotations[first:stop][kept_joints])
    assert np.array_equal(streamed_root[span[:, NUM_JOINTS]], dance.root_translation[first:stop][span[:, NUM_JOINTS]])
    whole = span.all(axis=1)
    assert np.array_equal(streamed_con[whole], dance.contacts[first:stop][whole])
    # and something was really regenerated
    regenerated = ~kept_joints
    assert np.abs(streamed_rot[regenerated] - dance.rotations[first:stop][regenerated]).max() > 0.05
    # the merged dance is the sent one outside the span
    assert np.array_equal(result.rotations[:first], dance.rotations[:first])
    assert np.array_equal(result.rotations[stop:], dance.rotations[stop:])
    assert np.array_equal(result.root_translation[stop:], dance.root_translation[stop:])
    norms = np.linalg.norm(result.rotations, axis=-1)
    assert np.allclose(norms, 1.0, atol=1e-4)


MODES = {
    "range": masks.range_mask(FRAMES, 100, 200),
    "in_between": masks.in_between(FRAMES, 90, 90),
    "continuation": masks.continuation(FRAMES, 180),
    "upper_body": masks.range_mask(FRAMES, 60, 240, joints=UPPER, root=False),
    "lower_body_and_root": masks.range_mask(FRAMES, 60, 240, joints=LOWER, root=True),
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_each_mode_keeps_exactly_and_joins_smoothly(backend_server, dance, mode):
    keep = MODES[mode]
    result, chunks = _edit(backend_server, dance, keep)
    _check_exact_and_streamed(dance, keep, result, chunks)
    positions = _positions(result.rotations, result.root_translation)
    regenerated = ~keep.all(axis=1)
    assert border_jump_ratio(positions, regenerated) <= MAX_JUMP
    if mode.endswith("body") or mode.endswith("root"):
        changed = UPPER if mode == "upper_body" else LOWER
        still = [j for j in range(NUM_JOINTS) if j not in changed]
        for group in (changed, still):  # regenerated joints and kept joints, each at the borders
            assert border_jump_ratio(positions, regenerated, group) <= MAX_JUMP
    if mode == "upper_body":  # legs and root kept: the lower body does not move at all differently
        before = _positions(dance.rotations, dance.root_translation)
        assert np.allclose(positions[:, list(LOWER)], before[:, list(LOWER)], atol=1e-6)


def _angle_deg(q1, q2):
    dot = np.abs(np.sum(q1.astype(np.float64) * q2, axis=-1)).clip(0, 1)
    return np.degrees(2 * np.arccos(dot))


def test_keyframes_inside_the_range_are_hit(backend_server, dance):
    keep = masks.range_mask(FRAMES, 60, 240)
    frames = np.array([120, 180])
    # poses from elsewhere in the dance: the model has to travel to them
    key_rot, key_root = dance.rotations[[20, 280]], dance.root_translation[[20, 280]]
    result, chunks = _edit(backend_server, dance, keep, keyframe_frames=frames,
                           keyframe_rotations=key_rot, keyframe_root_translation=key_root)
    assert _angle_deg(result.rotations[frames], key_rot).max() <= 2.0
    assert np.linalg.norm(result.root_translation[frames] - key_root, axis=-1).max() <= 0.01
    assert np.array_equal(result.rotations[frames], key_rot)  # in fact exact
    positions = _positions(result.rotations, result.root_translation)
    regenerated = ~masks.keep_frames(keep, frames).all(axis=1)
    assert border_jump_ratio(positions, regenerated) <= MAX_JUMP


def test_a_keyframe_on_the_border_is_returned_and_signs_follow_the_kept_motion(backend_server, dance):
    flipped = dance.rotations.copy()
    flipped[:100] *= -1.0  # the same rotations, the other hemisphere, as a client may keep them
    keep = masks.range_mask(FRAMES, 100, 200)
    chunks = []
    with backend_server.client(timeout=120) as client:
        result = client.inpaint(rotations=flipped, root_translation=dance.root_translation, keep=keep,
                                seed=1, options={"steps": FAST_STEPS}, audio_hash=dance.summary["content_hash"],
                                on_chunk=chunks.append, keyframe_frames=np.array([100]),
                                keyframe_rotations=flipped[20:21],
                                keyframe_root_translation=dance.root_translation[20:21])
    assert chunks[0].start == 100 and result.summary["edit_start"] == 100
    assert np.array_equal(result.rotations[100], flipped[20])  # the keyframe itself came back
    dots = np.sum(result.rotations[100:201] * result.rotations[99:200], axis=-1)
    assert (dots[:-1] > 0).all()  # no sign flips inside the edit (the last step enters kept frames)


def test_same_seed_same_edit_and_the_audio_can_be_sent_again(backend_server, dance):
    keep = masks.range_mask(FRAMES, 150, 210)
    a, _ = _edit(backend_server, dance, keep, seed=3, options={"steps": FAST_STEPS})
    b, _ = _edit(backend_server, dance, keep, seed=3, options={"steps": FAST_STEPS}, audio=SONG, audio_hash=None)
    c, _ = _edit(backend_server, dance, keep, seed=4, options={"steps": FAST_STEPS})
    assert np.array_equal(a.rotations, b.rotations)
    assert not np.array_equal(a.rotations, c.rotations)
    assert a.summary["content_hash"] == dance.summary["content_hash"]


def test_cancel_stops_an_edit(backend_server, dance):
    with backend_server.client(timeout=60) as client:
        msg_id = client.submit_inpaint(rotations=dance.rotations, root_translation=dance.root_translation,
                                       keep=masks.continuation(FRAMES, 30), options={"steps": 200},
                                       audio_hash=dance.summary["content_hash"])
        accepted = wait_for(client, msg_id, {"accepted"})[-1]
        assert accepted.content["edit_start"] == 30 and accepted.content["frames_total"] == FRAMES - 30
        wait_for(client, msg_id, {"progress"})
        client.cancel(accepted.job_id)
        assert wait_for(client, msg_id, {"cancelled", "done"})[-1].type == "cancelled"
    assert_serving(backend_server)


def _refusal(server, dance, expect, **changes):
    request = dict(rotations=dance.rotations, root_translation=dance.root_translation,
                   keep=masks.range_mask(FRAMES, 100, 200), audio_hash=dance.summary["content_hash"],
                   options={"steps": FAST_STEPS})
    request.update(changes)
    with server.client(timeout=60) as client:
        with pytest.raises(ChoreoError) as err:
            client.inpaint(**request)
    assert err.value.code == expect, err.value.message
    return err.value.message


def test_bad_edits_get_clear_errors_and_the_server_keeps_serving(backend_server, dance):
    nan_rot = dance.rotations.copy()
    nan_rot[42, 3, 1] = np.nan
    scaled = dance.rotations.copy()
    scaled[10, 5] *= 2.0  # a kept rotation that is not a unit quaternion
    assert "(300, 25)" in _refusal(backend_server, dance, "bad_mask", keep=masks.keep_all(299))
    assert "nothing to regenerate" in _refusal(backend_server, dance, "bad_mask", keep=masks.keep_all(FRAMES))
    assert "frame 42" in _refusal(backend_server, dance, "bad_motion", rotations=nan_rot)
    _refusal(backend_server, dance, "bad_motion", rotations=dance.rotations[:, :23])
    _refusal(backend_server, dance, "bad_motion", root_translation=dance.root_translation[:-1])
    assert "unit quaternion" in _refusal(backend_server, dance, "bad_motion", rotations=scaled)
    _refusal(backend_server, dance, "bad_motion", contacts=np.zeros((FRAMES, 9), np.float32))
    _refusal(backend_server, dance, "bad_mask", keep=np.full((FRAMES, 25), 0.5, np.float32))
    key = dict(keyframe_rotations=dance.rotations[:1], keyframe_root_translation=dance.root_translation[:1])
    assert "outside" in _refusal(backend_server, dance, "bad_range", keyframe_frames=np.array([400]), **key)
    assert "outside the regenerated" in _refusal(backend_server, dance, "bad_range",
                                                 keyframe_frames=np.array([50]), **key)
    with backend_server.client(timeout=30) as client:  # keyframe frames without their poses
        with pytest.raises(ChoreoError) as err:
            client.request(Message("inpaint", {"audio_hash": dance.summary["content_hash"]}, buffers={
                "rotations": dance.rotations, "root_translation": dance.root_translation,
                "keep": masks.range_mask(FRAMES, 100, 200), "keyframe_frames": np.array([150], np.int32)}))
        assert err.value.code == "bad_message"
    far = dance.root_translation.copy()
    far[5, 0] = 5e3  # centimetres, say
    assert "metres" in _refusal(backend_server, dance, "bad_motion", root_translation=far)
    _refusal(backend_server, dance, "bad_motion", contacts=np.full((FRAMES, 4), 3.0, np.float32))
    huge = 600 * 30 + 2  # longer than any song the backend accepts: refused before any copy
    assert "frames" in _refusal(backend_server, dance, "bad_motion",
                                rotations=np.tile(dance.rotations[:1], (huge, 1, 1)),
                                root_translation=np.zeros((huge, 3), np.float32),
                                keep=masks.continuation(huge, 10))
    _refusal(backend_server, dance, "bad_mask", keyframe_frames=np.array([150, 150]),
             keyframe_rotations=dance.rotations[:2], keyframe_root_translation=dance.root_translation[:2])
    _refusal(backend_server, dance, "bad_motion", keyframe_frames=np.array([150]),
             keyframe_rotations=nan_rot[42:43], keyframe_root_translation=dance.root_translation[:1])
    assert "again" in _refusal(backend_server, dance, "audio_not_cached", audio_hash="0" * 64)
    _refusal(backend_server, dance, "bad_message", audio_hash=None)
    # the motion runs past the song's end: known only once the song is analysed (after accepted)
    assert "past the end" in _refusal(backend_server, dance, "bad_range", start=25.0)
    _refusal(backend_server, dance, "bad_option", options={"resample": 9})
    assert_serving(backend_server, generate=True)


def test_an_inpaint_message_without_motion_is_refused(backend_server):
    with backend_server.client(timeout=30) as client:
        with pytest.raises(ChoreoError) as err:
            client.request(Message("inpaint", {"audio_hash": "0" * 64}))
        assert err.value.code == "bad_message"


def test_cli_inpaint_writes_the_whole_edited_dance(backend_server, dance, tmp_path):
    motion = tmp_path / "dance.npz"
    MotionClip(dance.rotations, dance.root_translation, contacts=dance.contacts,
               contact_names=dance.contact_names).save_npz(motion)
    song = tmp_path / "song.ogg"
    song.write_bytes(SONG)
    out = tmp_path / "edited.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "backend.cli", "inpaint", str(motion), str(song), "--frames", "100:200",
         "--joints", "upper", "--keep-keyframes", "150", "--out", str(out), "--steps", str(FAST_STEPS),
         "--connect", str(backend_server.connection_file)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "regenerated frames 100:200 of 300" in proc.stdout
    edited = MotionClip.load_npz(out)
    assert edited.num_frames == FRAMES
    assert np.array_equal(edited.rotations[:, list(LOWER)], dance.rotations[:, list(LOWER)])
    assert np.array_equal(edited.root_translation, dance.root_translation)
    assert np.array_equal(edited.rotations[150], dance.rotations[150])
    assert not np.array_equal(edited.rotations[100:200, list(UPPER)], dance.rotations[100:200, list(UPPER)])
    bad = subprocess.run(
        [sys.executable, "-m", "backend.cli", "inpaint", str(motion), str(song), "--frames", "250:400",
         "--out", str(out), "--connect", str(backend_server.connection_file)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "[bad_range]" in bad.stderr
