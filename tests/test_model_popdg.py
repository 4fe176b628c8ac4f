"""POPDG: its parts (DS-Attention, Space Augmentation, alignment, hybrid loss), and the
bundled model through a real server process.

The unit tests build small real networks. The server tests start ``python -m
backend.server`` with only ``popdg`` (the bundled checkpoint, found through the
registry) and talk ZeroMQ to it: a 30 s dance of the bundled example song streamed in
chunks and measured (moves, on the beat, on the floor), seeds, cancel, and edits.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.editing import masks
from backend.examples import EXAMPLE_SONG
from backend.metrics.basic import border_jump_ratio, joint_positions
from backend.metrics.dance_report import measure_dance
from backend.models.autoregressive import standing_motion
from backend.models.checkpoint import load_checkpoint
from backend.models.popdg import (
    SPACE_AUGMENTED_JOINTS, JointAttention, conv1d_time_mean, joint_attention, space_augment,
    space_augmentation_matrix,
)
from backend.models.registry import MODELS
from backend.motion.clip import MotionClip
from backend.motion.layout import LAYOUTS, ROTATIONS
from backend.motion.normalizer import Normalizer
from backend.motion.skeleton import BODY_CONTACT_JOINTS, JOINT_NAMES, NUM_JOINTS, PARENTS, UPPER_BODY
from backend.music.audio import decode_audio
from backend.music.features import FEATURE_SAMPLE_RATE, analyse_music
from backend.training.recipe_popdg import make
from backend.training.losses import body_contact_loss
from backend.training.recipes import Batch
from tests.server_fixtures import FAST_STEPS, assert_cancel_while_sampling, start_test_server, wav_bytes

SECONDS = 30.0
FRAMES = int(SECONDS * 30)

# ---------------------------------------------------------------- unit tests


@pytest.fixture
def one_thread():
    """Tiny networks gain nothing from threads, and on a busy machine lose a lot (10x measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_space_augmentation_passes_weight_from_parents_to_children_only():
    spine3, neck, head, l_collar, l_shoulder = (JOINT_NAMES.index(n) for n in
                                               ("spine3", "neck", "head", "left_collar", "left_shoulder"))
    matrix = space_augmentation_matrix()
    attn = torch.zeros(NUM_JOINTS, NUM_JOINTS)
    attn[0, spine3] = 1.0  # the root attends to spine3 only ...
    attn[neck, 0] = 0.8  # ... and the neck attends to the root
    attn[5, 7] = 0.3  # an entry off the root's row and column
    out = space_augment(attn, matrix)
    # spine3's weight halves at each step down the chain: neck and collars, then head and shoulders
    assert out[0, spine3] == pytest.approx(0.5)  # averaged with its parent spine2's (0)
    assert out[0, neck] == out[0, l_collar] == pytest.approx(0.25)
    assert out[0, head] == out[0, l_shoulder] == pytest.approx(0.125)
    assert out[0, PARENTS[spine3]] == 0 and out[0, 3] == 0  # nothing flows up to spine2 or spine1
    assert out[0, JOINT_NAMES.index("left_elbow")] == 0  # the elbow is off the augmented chain
    # the column: the neck's weight on the root reaches the head, not spine3 above it
    assert out[neck, 0] == pytest.approx(0.4) and out[head, 0] == pytest.approx(0.2)
    assert out[spine3, 0] == 0
    assert out[5, 7] == 0.3 and out[0, 0] == 0  # everything else is left alone
    untouched = torch.ones(NUM_JOINTS, NUM_JOINTS, dtype=torch.bool)
    untouched[0, :] = untouched[:, 0] = False
    assert torch.equal(out[untouched], attn[untouched])
    assert set(SPACE_AUGMENTED_JOINTS) <= set(range(NUM_JOINTS)) and 0 not in SPACE_AUGMENTED_JOINTS


def test_joint_attention_applies_space_augmentation_exactly(one_thread):
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 5, NUM_JOINTS, 4).unbind(0)
    matrix = space_augmentation_matrix()
    attn = torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1)
    torch.testing.assert_close(joint_attention(q, k, v, matrix), space_augment(attn, matrix) @ v)
    torch.testing.assert_close(joint_attention(q, k, v, None), attn @ v)


def test_ds_attention_is_joint_symmetric_without_the_skeleton_and_frame_local(one_thread):
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 4, NUM_JOINTS, 8).unbind(0)
    perm = torch.randperm(NUM_JOINTS)
    # plain attention over joints is permutation-equivariant: relabelling joints relabels the output
    torch.testing.assert_close(joint_attention(q[:, perm], k[:, perm], v[:, perm], None),
                               joint_attention(q, k, v, None)[:, perm])
    # Space Augmentation ties the weights to the kinematic chain: relabelling changes the result
    augmented = joint_attention(q, k, v, space_augmentation_matrix())
    assert not torch.allclose(joint_attention(q[:, perm], k[:, perm], v[:, perm], space_augmentation_matrix()),
                              augmented[:, perm], atol=1e-4)
    # the module mixes joints within a frame, never across frames
    layer = JointAttention(32, 8, 2, dropout=0.0, augment=True).eval()
    x = torch.randn(2, 10, 32)
    y = layer(x)
    x2 = x.clone()
    x2[:, 4] += 1.0
    changed = (layer(x2) - y).abs().amax(dim=(0, 2))
    assert changed[4] > 1e-3 and torch.all(changed[torch.arange(10) != 4] == 0)
    order = torch.randperm(10)
    torch.testing.assert_close(layer(x[:, order]), y[:, order])


def test_alignment_convolution_mean_equals_the_mean_of_the_convolution():
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(6, 5, 5, padding=2)
    for frames in (1, 3, 40):
        x = torch.randn(2, frames, 6)
        torch.testing.assert_close(conv1d_time_mean(x, conv), conv(x.transpose(1, 2)).mean(dim=-1))


def test_body_contact_loss_pins_only_joints_predicted_in_contact():
    positions = torch.zeros(1, 4, NUM_JOINTS, 3)
    head = JOINT_NAMES.index("head")
    positions[0, :, head, 0] = torch.tensor([0.0, 0.1, 0.2, 0.3])  # the head slides 10 cm a frame
    contacts = torch.zeros(1, 4, len(BODY_CONTACT_JOINTS))
    assert body_contact_loss(positions, contacts, BODY_CONTACT_JOINTS) == 0  # nobody claims contact
    contacts[0, :, BODY_CONTACT_JOINTS.index(head)] = 1.0  # "the head is in contact" while it slides
    loss = body_contact_loss(positions, contacts, BODY_CONTACT_JOINTS)
    assert loss == pytest.approx(0.1**2 * 3 / (3 * len(BODY_CONTACT_JOINTS) * 3))
    contacts[0, :, BODY_CONTACT_JOINTS.index(JOINT_NAMES.index("left_foot"))] = 1.0  # a still foot adds nothing
    assert body_contact_loss(positions, contacts, BODY_CONTACT_JOINTS) == loss


def _training_batch(gen: torch.Generator, batch: int = 4, frames: int = 32) -> tuple[Batch, Normalizer]:
    """Standing poses with smooth joint swings and a swaying root: a learnable little dataset."""
    layout = LAYOUTS["body_contacts"]
    t = torch.arange(frames, dtype=torch.float32) / 30.0
    motions = []
    for _ in range(batch):
        m = standing_motion(frames, layout).clone()
        phase, freq = torch.rand(2, generator=gen)
        m[:, ROTATIONS] += 0.2 * torch.sin(2 * torch.pi * (1 + 2 * freq) * t + 6 * phase)[:, None]
        m[:, 0] += 0.1 * torch.sin(2 * torch.pi * t + phase)
        motions.append(m)
    raw = torch.stack(motions)
    normalizer = Normalizer.fit(raw.flatten(0, 1), layout)
    music = torch.randn(batch, frames, 35, generator=gen)
    return Batch(normalizer.normalize(raw), music, torch.zeros(batch, dtype=torch.long),
                 normalizer.denormalize), normalizer


def test_a_few_training_steps_reduce_the_hybrid_loss(one_thread):
    torch.manual_seed(0)
    recipe = make({"d_model": 32, "num_layers": 1, "num_heads": 2, "joint_dim": 4, "music_layers": 1,
                   "dropout": 0.0, "window_frames": 32})
    net = recipe.build(("unknown",))
    batch, _ = _training_batch(torch.Generator().manual_seed(1))

    def loss() -> dict[str, torch.Tensor]:  # the same timesteps and noise every time
        return recipe.losses(net, batch, torch.Generator().manual_seed(7))

    with torch.no_grad():
        before = loss()
    assert set(before) == {"reconstruction", "velocity", "kinematics", "body_contact", "vlb", "total"}
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(3)
    for _ in range(40):
        losses = recipe.losses(net, batch, gen)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
    with torch.no_grad():
        after = loss()
    assert after["total"] < 0.7 * before["total"]
    assert after["reconstruction"] < before["reconstruction"]
    assert torch.isfinite(after["vlb"])
    assert net.variance_out.weight.abs().sum() > 0  # the bound trained the variance head (zero at start)


# ---------------------------------------------------------------- the bundled model, through the server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = start_test_server(tmp_path_factory.mktemp("popdg"), models=("popdg",))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def dance(server):
    """30 s of the bundled example song, default options, as streamed."""
    chunks = []
    with server.client(timeout=180) as client:
        result = client.generate(EXAMPLE_SONG.read_bytes(), model="popdg", seed=0, seconds=SECONDS,
                                 on_chunk=chunks.append)
    return result, chunks


def test_bundled_checkpoint_is_small_loads_weights_only_and_is_described(server):
    path = MODELS["popdg"].default_checkpoint
    assert path.stat().st_size <= 20 * 1024 * 1024
    ckpt = load_checkpoint(path)
    assert ckpt["model"] == "popdg" and ckpt["step"] > 0 and "optimizer" not in ckpt
    assert ckpt["config"]["layout"] == "body_contacts"
    with server.client() as client:
        hello = client.hello()
    (model,) = [m for m in hello["models"] if m["name"] == "popdg"]
    assert model["family"] == "diffusion"
    assert model["contact_names"] == [JOINT_NAMES[j] for j in BODY_CONTACT_JOINTS]
    assert {o["name"] for o in model["options"]} == {"steps", "guidance", "eta", "overlap_seconds",
                                                     "context_seconds", "resample"}
    assert model["editing"] == {"inpaint": True, "abilities": list(masks.ABILITIES)}


def test_streams_a_30_s_dance_that_moves_on_the_beat_with_feet_on_the_floor(dance):
    result, chunks = dance
    assert result.num_frames == FRAMES and result.contacts.shape == (FRAMES, len(BODY_CONTACT_JOINTS))
    starts = [c.start for c in chunks]
    assert len(chunks) >= 4 and starts[0] == 0
    assert [c.start + c.num_frames for c in chunks[:-1]] == starts[1:]
    assert sum(c.num_frames for c in chunks) == FRAMES
    np.testing.assert_allclose(np.linalg.norm(result.rotations, axis=-1), 1.0, atol=1e-4)

    samples = decode_audio(EXAMPLE_SONG, FEATURE_SAMPLE_RATE)[:int(SECONDS * FEATURE_SAMPLE_RATE)]
    clip = MotionClip(rotations=result.rotations, root_translation=result.root_translation, fps=30,
                      contacts=result.contacts, contact_names=tuple(result.contact_names))
    m = measure_dance(clip, analyse_music(samples), starts[1:])
    # keeps dancing to the end; a body standing still measures ~0 m/frame
    assert m.speed_last_10s >= 0.5 * m.speed_first_10s and m.speed_last_10s > 0.002
    assert m.beat_alignment > m.beat_alignment_half_beat_off + 0.05  # on the beat, not beside it
    assert abs(m.sole_height_median_m) < 0.05 and m.sole_height_p05_m > -0.08  # on the floor
    assert m.max_seam_jump <= 3.0


def test_same_seed_same_dance_other_seed_other_dance(server):
    song = wav_bytes(3.0, seed=4)
    with server.client(timeout=60) as client:
        a, b, c = (client.generate(song, model="popdg", seed=s, options={"steps": FAST_STEPS}) for s in (9, 9, 10))
    assert np.array_equal(a.rotations, b.rotations) and np.array_equal(a.root_translation, b.root_translation)
    assert not np.allclose(a.rotations, c.rotations, atol=1e-3)


def test_cancel_stops_a_running_job_and_the_server_serves_on(server):
    assert_cancel_while_sampling(server, "popdg", wav_bytes(20.0, seed=3), seed=1, options={"steps": 200})


def _edit(server, dance, keep, **request):
    chunks = []
    with server.client(timeout=120) as client:
        result = client.inpaint(rotations=dance.rotations, root_translation=dance.root_translation,
                                contacts=dance.contacts, keep=keep, model="popdg", seed=1,
                                audio_hash=dance.summary["content_hash"], on_chunk=chunks.append, **request)
    return result, chunks


def test_a_range_edit_keeps_everything_outside_the_range_bit_for_bit(server, dance):
    original, _ = dance
    first, stop = 300, 420
    result, chunks = _edit(server, original, masks.range_mask(FRAMES, first, stop))
    assert chunks[0].start == first and sum(c.num_frames for c in chunks) == stop - first
    assert (result.summary["edit_start"], result.summary["edit_stop"]) == (first, stop)
    for name in ("rotations", "root_translation", "contacts"):
        new, old = getattr(result, name), getattr(original, name)
        assert np.array_equal(new[:first], old[:first]) and np.array_equal(new[stop:], old[stop:])
    assert np.abs(result.rotations[first:stop] - original.rotations[first:stop]).max() > 0.05  # remade
    positions = joint_positions(MotionClip(result.rotations, result.root_translation))
    regenerated = np.zeros(FRAMES, dtype=bool)
    regenerated[first:stop] = True
    assert border_jump_ratio(positions, regenerated) <= 3.0  # joined onto the kept frames


def test_a_body_part_edit_streams_the_kept_joints_bit_for_bit(server, dance):
    original, _ = dance
    first, stop = 150, 270
    keep = masks.range_mask(FRAMES, first, stop, joints=UPPER_BODY, root=False)
    result, chunks = _edit(server, original, keep, options={"steps": FAST_STEPS})
    streamed_rot = np.concatenate([c.rotations for c in chunks])
    streamed_root = np.concatenate([c.root_translation for c in chunks])
    lower = [j for j in range(NUM_JOINTS) if j not in UPPER_BODY]
    assert np.array_equal(streamed_rot[:, lower], original.rotations[first:stop, lower])
    assert np.array_equal(streamed_root, original.root_translation[first:stop])
    assert np.abs(streamed_rot[:, list(UPPER_BODY)] - original.rotations[first:stop, list(UPPER_BODY)]).max() > 0.05
