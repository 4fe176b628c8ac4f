"""The pure core of editing: mask presets and checks, border joins, the border metric,
RePaint resampling, and the layout's channel mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.editing import masks
from backend.editing.joins import BRIDGE_FRAMES, join_runs, runs
from backend.metrics.basic import border_jump_ratio
from backend.models.diffusion import GaussianDiffusion, Inpainting
from backend.motion.layout import FOOT_LAYOUT, ROOT, joint_rotation_slice
from backend.motion.skeleton import JOINT_INDEX, LOWER_BODY, UPPER_BODY


def test_presets_are_one_mask():
    keep = masks.range_mask(100, 20, 50)
    assert keep.shape == (100, 25) and keep.dtype == bool
    assert keep[:20].all() and keep[50:].all() and not keep[20:50].any()
    assert masks.edited_span(keep) == (20, 50)
    assert np.array_equal(masks.in_between(100, 20, 50), keep)
    assert masks.edited_span(masks.continuation(100, 70)) == (70, 100)
    upper = masks.range_mask(100, 10, 30, joints=UPPER_BODY, root=False)
    assert not upper[10:30, list(UPPER_BODY)].any() and upper[10:30, list(LOWER_BODY)].all()
    assert upper[:, masks.ROOT_COLUMN].all()
    with_keys = masks.keep_frames(keep, [30, 40])
    assert with_keys[30].all() and with_keys[40].all() and not with_keys[31].any()


def test_required_abilities_name_what_a_mask_asks_for():
    assert masks.required_abilities(masks.continuation(100, 60)) == {"continuation"}
    assert masks.required_abilities(masks.range_mask(100, 20, 50)) == {"range"}
    body = masks.range_mask(100, 20, 50, joints=UPPER_BODY, root=False)
    assert masks.required_abilities(body) == {"range", "joints"}
    keys = masks.keep_frames(masks.continuation(100, 20), [50])
    assert masks.required_abilities(keys) == {"continuation", "keyframes"}


def test_a_model_without_an_ability_refuses_the_mask_and_says_why():
    autoregressive = ("continuation", "range")  # what an FACT-style model can honour
    masks.check_abilities("fact", autoregressive, masks.range_mask(100, 20, 50))
    with pytest.raises(masks.EditError) as err:
        masks.check_abilities("fact", autoregressive,
                              masks.range_mask(100, 20, 50, joints=UPPER_BODY, root=False))
    assert err.value.code == "unsupported_edit"
    assert "keep some joints" in err.value.message and "'fact'" in err.value.message
    with pytest.raises(masks.EditError, match="cannot"):
        masks.check_abilities("plain", (), masks.continuation(100, 50))


def test_joint_and_frame_parsing():
    assert masks.parse_joints("upper") == (UPPER_BODY, False)
    joints, root = masks.parse_joints("lower,root")
    assert joints == tuple(sorted(LOWER_BODY)) and root
    assert masks.parse_joints("left_wrist, right_wrist")[0] == tuple(
        sorted((JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"])))
    for bad in ("elbow", ""):
        with pytest.raises(masks.EditError) as err:
            masks.parse_joints(bad)
        assert err.value.code == "bad_mask"
    assert masks.parse_frame_range("10:20", 100) == (10, 20)
    assert masks.parse_frame_range("10:", 100) == (10, 100)
    assert masks.parse_frame_range(":20", 100) == (0, 20)
    for bad in ("20:10", "0:101", "x", "5", "-1:4"):
        with pytest.raises(masks.EditError) as err:
            masks.parse_frame_range(bad, 100)
        assert err.value.code == "bad_range"


def test_mask_and_motion_checks():
    rot = np.tile(np.array([1.0, 0, 0, 0], np.float32), (10, 24, 1))
    root = np.zeros((10, 3), np.float32)
    assert masks.check_motion(rot, root, None, 4) == 10
    with pytest.raises(masks.EditError, match="contacts"):
        masks.check_motion(rot, root, np.zeros((10, 9)), 4)
    bad = rot.copy()
    bad[7, 2, 0] = np.inf
    with pytest.raises(masks.EditError, match="frame 7"):
        masks.check_motion(bad, root, None, 4)
    assert masks.check_keep(np.ones((10, 25), np.uint8) - np.eye(10, 25, dtype=np.uint8), 10).dtype == bool
    for keep in (np.ones((10, 25), bool), np.zeros((9, 25), bool), np.full((10, 25), 2, np.uint8)):
        with pytest.raises(masks.EditError) as err:
            masks.check_keep(keep, 10)
        assert err.value.code == "bad_mask"
    keep = masks.range_mask(10, 3, 6)
    scaled = rot.copy()
    scaled[4] *= 3.0  # inside the regenerated span: ignored
    masks.check_unit(scaled, keep)
    scaled[1, 5] *= 3.0  # kept: refused
    with pytest.raises(masks.EditError, match="unit quaternion"):
        masks.check_unit(scaled, keep)


def test_restore_kept_copies_bits():
    rng = np.random.default_rng(0)
    current_rot = rng.standard_normal((20, 24, 4)).astype(np.float32)
    current_root = rng.standard_normal((20, 3)).astype(np.float32)
    current_con = rng.random((20, 4)).astype(np.float32)
    keep = masks.keep_frames(masks.range_mask(20, 5, 15, joints=UPPER_BODY, root=False), [10])
    made_rot, made_root, made_con = np.zeros((10, 24, 4), np.float32), np.zeros((10, 3), np.float32), \
        np.zeros((10, 4), np.float32)
    masks.restore_kept(5, made_rot, made_root, made_con, keep, current_rot, current_root, current_con)
    assert np.array_equal(made_rot[:, list(LOWER_BODY)], current_rot[5:15, list(LOWER_BODY)])
    assert not made_rot[0, list(UPPER_BODY)].any()
    assert np.array_equal(made_rot[5], current_rot[10])  # the keyframe, whole
    assert np.array_equal(made_root, current_root[5:15])
    assert np.array_equal(made_con[5], current_con[10]) and not made_con[0].any()


def test_runs():
    assert runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]
    assert runs(np.zeros(3, bool)) == []


def _kept_then_jump(total: int = 80, a: int = 30, b: int = 60):
    """A kept ramp with a regenerated run [a, b) that starts 1.0 off and ends 2.0 off."""
    t = torch.arange(total, dtype=torch.float32)[:, None]
    kept = 0.05 * t.repeat(1, 3)
    motion = kept.clone()
    motion[a:b] = kept[a:b] + torch.linspace(1.0, 2.0, b - a)[:, None] + 0.01 * torch.sin(t[a:b])
    keep = torch.ones((total, 3), dtype=torch.bool)
    keep[a:b] = False
    return kept, motion, keep


def test_join_runs_keeps_kept_values_and_is_continuous_in_position_and_speed():
    kept, motion, keep = _kept_then_jump()
    out = join_runs(motion, keep)
    assert torch.equal(out[keep], motion[keep])
    step = out[1:] - out[:-1]  # the kept ramp moves 0.05 per frame
    assert (step - 0.05).abs().max() < 0.2  # no pop anywhere (the raw run starts 1.0 off)
    accel = step[1:] - step[:-1]
    assert accel[27:32].abs().max() < 0.03 and accel[57:62].abs().max() < 0.03  # speed continuous
    # past the bridges the model's own motion is untouched
    middle = slice(30 + BRIDGE_FRAMES, 60 - BRIDGE_FRAMES)
    assert torch.equal(out[middle], motion[middle])


def test_join_runs_handles_short_runs_and_channel_groups():
    kept, motion, keep = _kept_then_jump(a=30, b=34)  # too short for bridges: one Hermite curve
    out = join_runs(motion, keep)
    assert ((out[1:] - out[:-1]) - 0.05).abs().max() < 1e-4  # on a ramp, the curve is the ramp
    # channel 0 regenerated, channels 1-2 kept over the same frames: only channel 0 moves
    keep2 = torch.ones_like(keep)
    keep2[30:60, 0] = False
    out2 = join_runs(motion, keep2)
    assert torch.equal(out2[:, 1:], motion[:, 1:])
    assert (out2[30, 0] - kept[30, 0]).abs() < 0.01
    # a run at the end of a window (no kept frame after it) starts where the kept motion heads
    keep3 = torch.ones_like(keep)
    keep3[70:] = False
    out3 = join_runs(motion + 1.0 * ~keep3, keep3)
    assert (out3[70] - (kept[69] + 0.05)).abs().max() < 1e-5


def test_border_jump_ratio_sees_a_pop_but_not_a_beat_hit_in_the_kept_motion():
    t = np.arange(120, dtype=np.float64)
    smooth = np.stack([0.02 * np.sin(t / 5), np.zeros_like(t), np.ones_like(t)], axis=-1)[:, None, :]
    regenerated = np.zeros(120, bool)
    regenerated[40:80] = True
    assert border_jump_ratio(smooth, regenerated) < 0.5
    popped = smooth.copy()
    popped[40:80, 0, 0] += 0.05  # a 5 cm pop at both borders
    assert border_jump_ratio(popped, regenerated) > 3.0
    hit = smooth.copy()
    hit[82:, 0, 0] += np.cumsum(np.full(38, 0.03))  # the kept motion takes off right after the border
    hit[80:82, 0, 0] += [0.0, 0.015]
    assert border_jump_ratio(hit, regenerated) < 1.0


def test_resampling_repeats_each_step_and_still_holds_the_known_part():
    diffusion = GaussianDiffusion(1000)
    known = torch.randn(1, 12, 5)
    mask = torch.zeros_like(known)
    mask[:, :4] = 1.0
    calls = []

    def denoise(x, t):
        calls.append(int(t[0]))
        return torch.zeros_like(x)

    out = diffusion.ddim_sample(denoise, known.shape, 5, generator=torch.Generator().manual_seed(0),
                                inpainting=Inpainting(known=known, mask=mask), resample=2)
    steps = diffusion.ddim_timesteps(5)
    assert calls == [t for t in steps[:-1] for _ in range(3)] + [steps[-1]]
    assert torch.equal(out[:, :4], known[:, :4])


def test_channel_mask_follows_the_layout():
    joints = np.ones((5, 24), bool)
    joints[:, JOINT_INDEX["left_wrist"]] = False
    root = np.array([True, True, False, True, True])
    contacts = joints.all(axis=1)
    m = FOOT_LAYOUT.channel_mask(joints, root, contacts)
    assert m.shape == (5, FOOT_LAYOUT.num_channels)
    assert not m[:, joint_rotation_slice(JOINT_INDEX["left_wrist"])].any()
    assert m[:, joint_rotation_slice(JOINT_INDEX["right_wrist"])].all()
    assert not m[2, ROOT].any() and m[0, ROOT].all()
    assert not m[:, FOOT_LAYOUT.contacts].any()
