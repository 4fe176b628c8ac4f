"""AIST++ import: files written in the AIST++ pickle format from known poses."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from backend.conventions import Y_UP_TO_Z_UP
from backend.motion.aist import (
    AistError, aist_to_clip, list_aist_sequences, load_aist_motion, music_id, read_aist_pickle,
)
from backend.motion.kinematics import forward_kinematics_np
from backend.motion.rotations import np_
from backend.motion.skeleton import (
    BODY_CONTACT_JOINTS, JOINT_INDEX, NUM_JOINTS, OFFSETS_Y_UP, PELVIS_REST_HEIGHT,
    PELVIS_REST_POSITION_Y_UP,
)


def write_aist(path, poses, trans, scaling) -> None:
    """A motion file as AIST++ ships it: a pickled dict of numpy arrays."""
    with open(path, "wb") as f:
        pickle.dump({"smpl_poses": poses.astype(np.float32), "smpl_trans": trans.astype(np.float32),
                     "smpl_scaling": np.array([scaling], dtype=np.float32),
                     "smpl_loss": np.float64(1.5)}, f)


def clip_positions(clip) -> np.ndarray:
    mats = np_.quaternion_to_matrix(clip.rotations.astype(np.float64))
    return forward_kinematics_np(mats, clip.root_translation.astype(np.float64))[0]


def test_rest_pose_lands_standing_on_floor_at_30fps(tmp_path):
    frames, scaling = 10, 93.0
    trans = np.tile([0.5, 1.7, -0.2], (frames, 1)) * scaling  # SMPL units times scaling
    trans[:, 0] += np.arange(frames) * 0.01 * scaling  # walking 1 cm per 60 fps frame along +X
    write_aist(tmp_path / "m.pkl", np.zeros((frames, 72)), trans, scaling)
    clip = load_aist_motion(tmp_path / "m.pkl")
    assert clip.fps == 30 and clip.num_frames == 5  # every 2nd of 10 frames
    expected_xy = (trans[::2] / scaling + PELVIS_REST_POSITION_Y_UP) @ Y_UP_TO_Z_UP.T
    assert np.allclose(clip.root_translation[:, :2], expected_xy[:, :2], atol=1e-5)
    assert np.allclose(clip.root_translation[:, 2], PELVIS_REST_HEIGHT, atol=1e-5)
    p = clip_positions(clip)
    assert np.all(p[:, JOINT_INDEX["head"], 2] > p[:, JOINT_INDEX["pelvis"], 2] + 0.4)  # up is +Z
    feet_forward = p[:, JOINT_INDEX["left_foot"]] - p[:, JOINT_INDEX["left_ankle"]]
    assert np.all(feet_forward[:, 1] < -0.05)  # facing -Y
    assert clip.contacts.shape == (5, len(BODY_CONTACT_JOINTS))
    assert clip.contacts.max() == 0.0  # 0.6 m/s of travel: nothing is planted


def test_random_poses_match_y_up_kinematics(tmp_path):
    """FK of the converted clip equals the Y-up FK of the raw data, turned Z-up (up to the
    floor shift), so rotations, offsets and the pelvis rest position were all converted
    consistently."""
    rng = np.random.default_rng(0)
    frames, scaling = 8, 1.7
    poses = rng.normal(scale=0.5, size=(frames, 72))
    trans = rng.normal(size=(frames, 3))
    write_aist(tmp_path / "m.pkl", poses, trans, scaling)
    clip = load_aist_motion(tmp_path / "m.pkl")

    stored_poses = poses.astype(np.float32).astype(np.float64)  # as the file holds them
    stored_trans = trans.astype(np.float32).astype(np.float64)
    raw = np_.axis_angle_to_matrix(stored_poses.reshape(frames, NUM_JOINTS, 3))
    root_y = stored_trans / np.float32(scaling) + PELVIS_REST_POSITION_Y_UP
    y_up, _ = forward_kinematics_np(raw[::2], root_y[::2], OFFSETS_Y_UP)
    expected = y_up @ Y_UP_TO_Z_UP.T
    got = clip_positions(clip)
    shift = got[..., 2] - expected[..., 2]
    assert np.abs(got[..., :2] - expected[..., :2]).max() < 1e-5
    assert np.abs(shift - shift.mean()).max() < 1e-5  # one constant floor shift


def test_turning_left_in_y_up_faces_plus_x_in_z_up():
    frames = 4
    poses = np.zeros((frames, 72))
    poses[:, 1] = np.pi / 2  # pelvis: 90 degrees about Y-up's vertical axis
    clip = aist_to_clip(poses, np.zeros((frames, 3)), 1.0)
    p = clip_positions(clip)
    left = (p[:, JOINT_INDEX["left_hip"]] - p[:, JOINT_INDEX["right_hip"]])[:, :2]
    left /= np.linalg.norm(left, axis=-1, keepdims=True)
    # Turning left by 90 degrees about +Z: the body's left goes from +X to +Y, so it
    # now faces +X instead of -Y.
    assert np.allclose(left, [[0.0, 1.0]] * 2, atol=0.05)
    toes = (p[:, JOINT_INDEX["left_foot"]] - p[:, JOINT_INDEX["left_ankle"]])[:, :2]
    assert np.all(toes[:, 0] > 0.05)


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "ran"

    class Hostile:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"smpl_poses": Hostile()}, f)
    with pytest.raises(AistError) as err:
        read_aist_pickle(tmp_path / "evil.pkl")
    assert err.value.code == "forbidden_pickle" and not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle_protocols_read(tmp_path, protocol):
    data = {"smpl_poses": np.ones((2, 72)), "smpl_trans": np.zeros((2, 3)),
            "smpl_scaling": np.ones(1)}
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(data, protocol=protocol))
    assert np.array_equal(read_aist_pickle(tmp_path / "m.pkl")["smpl_poses"], data["smpl_poses"])


def test_bad_files_have_codes(tmp_path):
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(AistError) as err:
        read_aist_pickle(tmp_path / "junk.pkl")
    assert err.value.code == "bad_pickle"
    write_aist(tmp_path / "short.pkl", np.zeros((4, 69)), np.zeros((4, 3)), 1.0)
    with pytest.raises(AistError) as err:
        load_aist_motion(tmp_path / "short.pkl")
    assert err.value.code == "bad_shape"
    with open(tmp_path / "nokey.pkl", "wb") as f:
        pickle.dump({"smpl_poses": np.zeros((4, 72))}, f)
    with pytest.raises(AistError) as err:
        load_aist_motion(tmp_path / "nokey.pkl")
    assert err.value.code == "missing_key" and "smpl_trans" in str(err.value)
    with pytest.raises(AistError) as err:
        aist_to_clip(np.zeros((4, 72)), np.zeros((4, 3)), 0.0)
    assert err.value.code == "bad_scaling"


def test_music_id():
    assert music_id("gBR_sBM_cAll_d04_mBR0_ch01") == "mBR0"
    assert music_id("gJS_sFM_c01_d02_mJS3_ch03") == "mJS3"
    with pytest.raises(AistError) as err:
        music_id("gBR_sBM_cAll_d04_ch01")
    assert err.value.code == "bad_sequence_name"


def test_folder_listing_with_ignore_list_and_missing_music(tmp_path):
    (tmp_path / "motions").mkdir()
    (tmp_path / "wavs").mkdir()
    for name in ("gBR_sBM_cAll_d04_mBR0_ch01", "gBR_sBM_cAll_d04_mBR0_ch02",
                 "gPO_sBM_cAll_d10_mPO1_ch01", "gHO_sBM_cAll_d19_mHO2_ch01"):
        write_aist(tmp_path / "motions" / f"{name}.pkl", np.zeros((4, 72)), np.zeros((4, 3)), 1.0)
    (tmp_path / "wavs" / "mBR0.wav").write_bytes(b"")
    (tmp_path / "wavs" / "mHO2.wav").write_bytes(b"")
    (tmp_path / "ignore_list.txt").write_text("gBR_sBM_cAll_d04_mBR0_ch02\n")
    found, no_music = list_aist_sequences(tmp_path)
    assert [s.name for s in found] == ["gBR_sBM_cAll_d04_mBR0_ch01", "gHO_sBM_cAll_d19_mHO2_ch01"]
    assert found[0].audio_path == tmp_path / "wavs" / "mBR0.wav"
    assert no_music == ["gPO_sBM_cAll_d10_mPO1_ch01"]
    with pytest.raises(AistError) as err:
        list_aist_sequences(tmp_path / "wavs")
    assert err.value.code == "not_aist_folder"
