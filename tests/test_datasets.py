"""Dataset folders in the three layouts, built from tiny files the tests write."""

from __future__ import annotations

import logging

import librosa
import numpy as np
import pytest
import soundfile as sf

from backend.motion.bvh import write_bvh
from backend.motion.clip import MotionClip
from backend.motion.contacts import grounded_clip
from backend.motion.skeleton import BODY_CONTACT_JOINTS, FOOT_CONTACT_JOINTS, JOINT_NAMES, NUM_JOINTS
from backend.training.datasets import DanceItem, DatasetError, load_dance_folder
from tests.test_aist import write_aist
from tests.test_rotations import random_quaternions, same_rotation_quat

SR = 22050


def write_tone(path, seconds: float = 0.5) -> None:
    t = np.arange(int(SR * seconds)) / SR
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR)


def dance(frames: int = 20, seed: int = 0) -> MotionClip:
    """A smooth random dance on the floor (so loading it back changes nothing)."""
    rng = np.random.default_rng(seed)
    q = random_quaternions(NUM_JOINTS, seed)
    q = np.tile(q, (frames, 1, 1)) + rng.normal(scale=0.02, size=(frames, NUM_JOINTS, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    root = np.cumsum(rng.normal(scale=0.01, size=(frames, 3)), axis=0) + [0, 0, 0.9]
    return grounded_clip(q, root, fps=30)


def test_aist_layout(tmp_path):
    (tmp_path / "motions").mkdir()
    (tmp_path / "wavs").mkdir()
    poses = np.random.default_rng(0).normal(scale=0.3, size=(12, 72))
    names = ("gLO_sBM_cAll_d13_mLO1_ch01", "gLO_sBM_cAll_d13_mLO1_ch02", "gWA_sBM_cAll_d25_mWA0_ch01")
    for name in names:
        write_aist(tmp_path / "motions" / f"{name}.pkl", poses, np.zeros((12, 3)), 1.0)
    write_tone(tmp_path / "wavs" / "mLO1.wav")
    (tmp_path / "ignore_list.txt").write_text("gLO_sBM_cAll_d13_mLO1_ch02\n")
    items = load_dance_folder(tmp_path)  # mWA0 has no music: skipped
    assert [i.name for i in items] == ["gLO_sBM_cAll_d13_mLO1_ch01"]
    item = items[0]
    assert isinstance(item, DanceItem) and item.motion.num_frames == 6 and item.motion.fps == 30
    assert item.motion.contact_names == tuple(JOINT_NAMES[j] for j in BODY_CONTACT_JOINTS)
    audio, sr = librosa.load(item.audio_path, sr=None)
    assert sr == SR and len(audio) == SR // 2


def test_bvh_layout(tmp_path):
    clip = dance()
    (tmp_path / "takes").mkdir()
    write_bvh(clip, tmp_path / "takes" / "solo.bvh")
    write_tone(tmp_path / "takes" / "solo.wav")
    write_bvh(clip, tmp_path / "no_music.bvh")  # no audio: skipped
    items = load_dance_folder(tmp_path)
    assert [i.name for i in items] == ["takes/solo"]
    motion = items[0].motion
    assert motion.num_frames == clip.num_frames
    assert same_rotation_quat(motion.rotations, clip.rotations).max() < 1e-4
    assert np.abs(motion.root_translation - clip.root_translation).max() < 1e-4
    assert np.array_equal(motion.contacts, clip.contacts)


def test_npz_layout_with_other_contacts_and_rate(tmp_path):
    clip = dance(frames=21)
    clip.save_npz(tmp_path / "a.npz")
    write_tone(tmp_path / "a.flac")
    sixty = MotionClip(np.repeat(clip.rotations, 2, axis=0),
                       np.repeat(clip.root_translation, 2, axis=0), fps=60.0)
    sixty.save_npz(tmp_path / "b.npz")
    write_tone(tmp_path / "b.ogg")
    items = load_dance_folder(tmp_path, contact_joints=FOOT_CONTACT_JOINTS)
    assert [i.name for i in items] == ["a", "b"]
    assert items[0].audio_path.suffix == ".flac" and items[1].audio_path.suffix == ".ogg"
    a, b = items[0].motion, items[1].motion
    assert a.contact_names == tuple(JOINT_NAMES[j] for j in FOOT_CONTACT_JOINTS)
    assert np.array_equal(a.rotations, clip.rotations)
    feet_columns = [BODY_CONTACT_JOINTS.index(j) for j in FOOT_CONTACT_JOINTS]
    assert np.array_equal(a.contacts, clip.contacts[:, feet_columns])
    assert b.fps == 30 and b.num_frames == 21  # every 2nd frame of the 60 fps copy
    assert np.allclose(b.root_translation, clip.root_translation)


def test_empty_unknown_and_broken_folders(tmp_path, caplog):
    with pytest.raises(DatasetError) as err:
        load_dance_folder(tmp_path / "missing")
    assert err.value.code == "not_a_folder"
    (tmp_path / "notes.txt").write_text("hello")
    write_tone(tmp_path / "lonely.wav")
    with pytest.raises(DatasetError) as err:
        load_dance_folder(tmp_path)
    assert err.value.code == "no_pairs" and "motions/*.pkl" in str(err.value)
    (tmp_path / "lonely.bvh").write_text("HIERARCHY\nROOT Hips\n{\n")
    with pytest.raises(DatasetError) as err:
        load_dance_folder(tmp_path)
    assert err.value.code == "bad_motion_file" and "lonely.bvh" in str(err.value)


def test_motion_without_audio_is_logged(tmp_path, caplog):
    dance().save_npz(tmp_path / "x.npz")
    with caplog.at_level(logging.WARNING), pytest.raises(DatasetError):
        load_dance_folder(tmp_path)
    assert "x.npz" in caplog.text


def test_style_labels_come_from_clip_names():
    from backend.training.datasets import style_of
    assert style_of("gBR_sBM_cAll_d04_mBR0_ch01") == "break"
    assert style_of("gJB_sFM_cAll_d09_mJB5_ch10") == "ballet_jazz"
    assert style_of("synth_0001_latin_93bpm") == "latin"
    assert style_of("real_escape_from_chaosland_006s_v0") == "rock"
    assert style_of("sub/dance_style-Salsa_01") == "salsa"
    assert style_of("my_dance") == "unknown" and style_of("synth_x") == "unknown"
