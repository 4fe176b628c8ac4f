"""FACT, the autoregressive generator: its network, and the bundled model through a real server.

The network test trains a tiny FACT on a synthetic batch. Everything else runs the
bundled checkpoint (``backend/checkpoints/fact_default.pt``, through the registry) in
a real backend process that loads only ``fact``: a 30 s dance to the bundled song,
streamed in chunks, measured with ``backend.metrics.dance_report`` (keeps moving,
on the beat, feet on the floor), seeds (each draws its own seed motion from the library; one
seed repeats its dance), cancellation, and both edits it offers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.editing import masks
from backend.examples import EXAMPLE_SONG
from backend.metrics.basic import border_jump_ratio, joint_positions
from backend.metrics.dance_report import measure_dance
from backend.models.base import EditRequest
from backend.models.fact import Fact, FactConfig
from backend.models.fact_generator import CHUNK_FRAMES
from backend.models.registry import MODELS, load_generator
from backend.motion.clip import MotionClip
from backend.music.audio import decode_audio
from backend.music.features import FEATURE_SAMPLE_RATE, analyse_music
from backend.training.recipe_fact import make
from backend.training.recipes import Batch
from tests.server_fixtures import assert_cancel_while_sampling, result_clip, start_test_server, wav_bytes

SONG = EXAMPLE_SONG.read_bytes()
SECONDS = 30.0
FRAMES = int(SECONDS * 30)
EDIT_FRAMES = 300


# -- the network ---------------------------------------------------------------------


TINY = dict(d_model=32, num_heads=2, ff_mult=2, motion_layers=1, music_layers=1, num_layers=1,
            seed_frames=8, music_frames=16, predict_frames=4)


def test_network_shapes_full_attention_and_a_few_steps_learn():
    torch.manual_seed(0)
    recipe = make({**TINY, "rollout_frames": 2, "not_a_fact_key": 1})
    assert recipe.window_frames == 16  # max(seed + N, music)
    net = recipe.build(("unknown",))
    channels = recipe.layout.num_channels
    seed, music = torch.randn(3, 8, channels), torch.randn(3, 16, 35)
    out = net(seed, music)
    assert out.shape == (3, 4, channels)
    torch.testing.assert_close(out, seed[:, -1:].expand_as(out))  # untrained: holds the last pose

    batch = Batch(motion=torch.randn(8, 16, channels), music=torch.randn(8, 16, 35),
                  style=torch.zeros(8, dtype=torch.long), denormalize=lambda x: x)
    gen = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = recipe.losses(net, batch, gen)
        assert set(loss) == {"pose", "velocity", "total"}
        optimizer.zero_grad()
        loss["total"].backward()
        optimizer.step()
        losses.append(loss["total"].item())
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    later_music = music.clone()
    later_music[:, -1] += 1.0  # the last music frame lies after every predicted frame
    assert not torch.allclose(net(seed, later_music), net(seed, music))  # full attention: the future is heard
    assert Fact(FactConfig.from_dict(recipe.config())).state_dict().keys() == net.state_dict().keys()


# -- the bundled model, in process -------------------------------------------------------


@pytest.fixture(scope="module")
def generator():
    return load_generator("fact", device="cpu")


def test_bundled_checkpoint_loads_and_describes_itself(generator):
    assert MODELS["fact"].default_checkpoint.stat().st_size <= 20 * 1024 * 1024
    info = generator.describe()
    assert info["family"] == "autoregressive" and info["deterministic"] is False  # seeds draw seed motion
    assert info["editing"] == {"inpaint": True, "abilities": ["continuation", "range"]}
    step = next(o for o in info["options"] if o["name"] == "step")
    assert step["min"] == 1 and step["max"] == generator.cfg.predict_frames and info["trained_steps"] > 0


def test_a_range_edit_streamed_as_made_is_the_edit_made_whole(generator):
    """Chunks go out before the run is complete, so they must already be the joined run's final frames."""
    rng = np.random.default_rng(0)
    features = rng.standard_normal((240, 35)).astype(np.float32)
    quats = np.zeros((240, 24, 4), np.float32)
    quats[..., 0] = 1.0
    root = np.tile(np.array([[1.3, -2.2, 0.92]], np.float32), (240, 1))  # away from the origin
    first, stop = 70, 200
    request = EditRequest(features, quats, root, None, masks.range_mask(240, first, stop), (first, stop),
                          options={"step": 7})
    streamed = list(generator.edit(request, lambda: False, lambda stage, fraction: None))
    assert len(streamed) >= 3 and streamed[0].start == first
    assert [c.start + c.num_frames for c in streamed[:-1]] == [c.start for c in streamed[1:]]
    generator.chunk_frames = stop - first
    try:
        whole = list(generator.edit(request, lambda: False, lambda stage, fraction: None))
    finally:
        generator.chunk_frames = CHUNK_FRAMES
    assert len(whole) == 1
    np.testing.assert_array_equal(np.concatenate([c.rotations for c in streamed]), whole[0].rotations)
    np.testing.assert_array_equal(np.concatenate([c.root_translation for c in streamed]), whole[0].root_translation)
    assert np.abs(whole[0].root_translation[:, :2] - root[0, :2]).max() < 1.0  # it stays where it was


# -- the bundled model through the server ------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_test_server(tmp_path_factory.mktemp("fact"), models=("fact",))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dance(server):
    chunks = []
    with server.client(timeout=120) as client:
        result = client.generate(SONG, model="fact", seed=0, seconds=SECONDS, on_chunk=chunks.append)
    return result, chunks


@pytest.fixture(scope="module")
def music():
    return analyse_music(decode_audio(EXAMPLE_SONG, FEATURE_SAMPLE_RATE)[:int(SECONDS * FEATURE_SAMPLE_RATE)])


def test_hello_lists_fact_with_its_options_and_edits(server):
    with server.client() as client:
        models = {m["name"]: m for m in client.hello()["models"]}
    assert models["fact"]["family"] == "autoregressive" and models["fact"]["deterministic"] is False
    assert {o["name"] for o in models["fact"]["options"]} == {"step", "ground", "blend_frames"}
    assert models["fact"]["editing"]["abilities"] == ["continuation", "range"]


def test_a_30_s_dance_streams_in_order_in_several_chunks(dance):
    result, chunks = dance
    assert result.num_frames == FRAMES and len(chunks) >= 10
    assert chunks[0].start == 0 and all(c.num_frames <= 30 for c in chunks)
    assert [c.start + c.num_frames for c in chunks[:-1]] == [c.start for c in chunks[1:]]
    assert sum(c.num_frames for c in chunks) == FRAMES
    np.testing.assert_allclose(np.linalg.norm(result.rotations, axis=-1), 1.0, atol=1e-4)
    assert np.isfinite(result.root_translation).all()


def test_it_does_not_freeze_and_dances_on_the_beat_on_the_floor(dance, music):
    result, chunks = dance
    m = measure_dance(result_clip(result), music, [c.start for c in chunks[1:]])
    assert m.seconds == pytest.approx(SECONDS, abs=0.05)
    assert m.speed_last_10s >= 0.5 * m.speed_first_10s  # no freezing after the seed
    assert m.speed_last_10s > 0.004  # metres per frame, mean over joints: clearly dancing
    assert m.beat_alignment > m.beat_alignment_half_beat_off + 0.05
    assert abs(m.sole_height_median_m) < 0.05


def test_one_seed_repeats_its_dance_two_seeds_differ_and_step_changes_it(server):
    song = wav_bytes(4.0, bpm=110, seed=4)
    with server.client(timeout=60) as client:
        a = client.generate(song, model="fact", seed=1)
        b = client.generate(song, model="fact", seed=2)
        again = client.generate(song, model="fact", seed=1)
        c = client.generate(song, model="fact", seed=1, options={"step": 3})
    np.testing.assert_array_equal(a.rotations, again.rotations)
    np.testing.assert_array_equal(a.root_translation, again.root_translation)
    pa, pb = (joint_positions(MotionClip(x.rotations, x.root_translation)) for x in (a, b))
    assert np.linalg.norm(pa - pb, axis=-1).mean() >= 0.05  # the bar: two seeds differ by >= 5 cm
    assert not np.allclose(a.rotations, c.rotations, atol=1e-4)


def test_the_seed_motion_is_library_dance_at_the_origin_facing_minus_y_on_the_floor(generator):
    """The library frames a seed draws, in FACT's layout and normaliser, are the same body pose moved."""
    from backend.library.library import heading, turn_xy

    first = generator.seed_frames(3)
    assert first is not None and generator.seed_frames(3)[1:] == first[1:]
    assert {generator.seed_frames(s)[1] for s in range(8)} != {first[1]}  # seeds draw different stretches
    lib, a, b = first
    assert b - a == generator.cfg.seed_frames and lib.clip_starts[np.searchsorted(lib.clip_starts, a, "right") - 1] \
        <= a and b <= lib.clip_starts[np.searchsorted(lib.clip_starts, a, "right")]  # inside one clip
    from backend.models.fact_generator import SEED_CLAMP_STD

    assert generator.library_seed(3, clamp=True).abs().max() <= SEED_CLAMP_STD  # what a dance starts from
    pad = generator.library_seed(3)
    assert pad.shape == (generator.cfg.seed_frames, generator.layout.num_channels)
    raw = generator.normalizer.denormalize(pad)
    q, root, contacts = generator.layout.to_quaternions(raw)
    assert abs(float(heading(q[-1, 0]))) < 1e-4  # faces -Y at its last frame
    np.testing.assert_allclose(root[-1, :2], 0.0, atol=1e-4)  # over the origin
    assert abs(float(generator._sole_height(raw).median())) < 1e-3  # on the floor
    # the same pose: library joint positions turned about the last frame's pelvis, heights shifted once
    want = lib.world_positions(a, b)
    yaw = float(heading(lib.rotations[b - 1, 0].astype(np.float64)))
    want[..., :2] -= lib.root[b - 1, :2]
    want = turn_xy(want, -yaw)
    got = joint_positions(MotionClip(q, root))
    shift = np.median(got[..., 2] - want[..., 2])
    want[..., 2] += shift
    assert np.abs(got - want).max() < 2e-3
    if tuple(generator.layout.contact_names) == tuple(lib.meta["contact_names"]):
        np.testing.assert_array_equal(contacts.round(), lib.contacts[a:b])


def test_cancel_stops_a_running_dance_and_the_server_still_serves(server):
    assert_cancel_while_sampling(server, "fact", wav_bytes(120.0, seed=3), options={"step": 1})


@pytest.fixture(scope="module")
def other_dance(server):
    """FACT's own dance to other music: edits with the example song then really change it."""
    with server.client(timeout=120) as client:
        return client.generate(wav_bytes(EDIT_FRAMES / 30, bpm=96, seed=7), model="fact", seed=0)


@pytest.mark.parametrize("keep", [masks.continuation(EDIT_FRAMES, 100), masks.range_mask(EDIT_FRAMES, 90, 210)],
                         ids=["continuation", "range"])
def test_edits_remake_the_span_only_and_join_the_kept_motion(server, other_dance, keep):
    first, stop = masks.edited_span(keep)
    chunks = []
    with server.client(timeout=120) as client:
        result = client.inpaint(SONG, rotations=other_dance.rotations, root_translation=other_dance.root_translation,
                                contacts=other_dance.contacts, keep=keep, model="fact", seed=0,
                                on_chunk=chunks.append)
    assert chunks[0].start == first and len(chunks) >= 2
    assert sum(c.num_frames for c in chunks) == stop - first
    assert (result.summary["edit_start"], result.summary["edit_stop"]) == (first, stop)
    assert np.array_equal(result.rotations[:first], other_dance.rotations[:first])
    assert np.array_equal(result.rotations[stop:], other_dance.rotations[stop:])
    assert np.array_equal(result.root_translation[stop:], other_dance.root_translation[stop:])
    assert np.abs(result.rotations[first:stop] - other_dance.rotations[first:stop]).max() > 0.05
    positions = joint_positions(MotionClip(result.rotations, result.root_translation))
    assert border_jump_ratio(positions, ~keep.all(axis=1)) <= 3.0
