"""DanceNet: the network's promises in small, and the bundled model through the real server.

Unit tests build small real networks: the stack is causal, streaming one frame at a
time gives the numbers of one pass over the whole sequence, the mixture likelihood is
the Gaussian log-density it claims to be, and a few training steps lower the loss.

The server tests start one real backend process with only ``dancenet`` loaded (the
bundled checkpoint, through the registry) and talk ZeroMQ to it: a 30 s dance on the
bundled example song, streamed in chunks and measured with ``dance_report`` (it keeps
moving, on the beat, feet on the floor), seeds, the style option, cancellation, and
continuation and range edits.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from backend.editing import masks
from backend.examples import EXAMPLE_SONG
from backend.metrics.dance_report import measure_dance
from backend.models.autoregressive import standing_motion
from backend.models.checkpoint import load_checkpoint
from backend.models.dancenet import DanceNet, DanceNetConfig, DanceNetStream, Mixture
from backend.models.registry import MODELS, available_models
from backend.motion.clip import MotionClip
from backend.motion.layout import LAYOUTS
from backend.motion.normalizer import Normalizer
from backend.music.features import NUM_FEATURES
from backend.training.recipe_dancenet import make
from backend.training.recipes import Batch
from protocol import ChoreoError
from tests.server_fixtures import start_test_server, wait_for, wav_bytes

LAYOUT = LAYOUTS["foot_contacts"]
SMALL = {"residual_channels": 16, "skip_channels": 16, "control_channels": 8, "dilations": [1, 2, 4],
         "mixtures": 2, "styles": ["unknown", "house", "rock"]}


def _small_net(seed: int = 0) -> DanceNet:
    torch.manual_seed(seed)
    return DanceNet(DanceNetConfig.from_dict(SMALL)).eval()


def _inputs(frames: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    music = torch.randn(1, frames, NUM_FEATURES, generator=g)
    return torch.randn(1, frames, LAYOUT.num_channels, generator=g), music, torch.tensor([1])


# ---------------------------------------------------------------- the network


@torch.no_grad()
def test_output_at_t_ignores_every_input_after_t():
    net = _small_net()
    motion, music, style = _inputs(40)
    before = net(motion, music, style)
    t = 25
    motion2, music2 = motion.clone(), music.clone()
    motion2[:, t + 1:] += 3.0
    music2[:, t + 1:] += 3.0
    after = net(motion2, music2, style)
    for a, b in ((before.logits, after.logits), (before.mean, after.mean), (before.log_std, after.log_std)):
        torch.testing.assert_close(a[:, :t + 1], b[:, :t + 1], rtol=0, atol=0)
    assert not torch.allclose(before.mean[:, t + 1], after.mean[:, t + 1])  # the change does reach t + 1


@torch.no_grad()
def test_receptive_field_is_what_the_config_says():
    net = _small_net()
    rf = net.cfg.receptive_field
    assert rf == 1 + sum(SMALL["dilations"])
    motion, music, style = _inputs(40)
    t, moved = 30, motion.clone()
    moved[:, t - rf - 1] += 3.0  # just outside what position t sees (the root step into t - rf reads it)
    torch.testing.assert_close(net(motion, music, style).mean[:, t], net(moved, music, style).mean[:, t])
    moved[:, t - rf] += 3.0  # the oldest frame it does see
    assert not torch.allclose(net(motion, music, style).mean[:, t], net(moved, music, style).mean[:, t])


@torch.no_grad()
def test_streaming_frame_by_frame_matches_one_pass():
    net = _small_net()
    motion, music, style = _inputs(30)
    whole = net(motion, music, style)
    control = net.control_signals(music, style)
    stream = DanceNetStream(net)
    parts = [stream.feed(motion[:, :12], control[:, :12])]  # a primed start, then frame by frame
    parts += [stream.feed(motion[:, t:t + 1], control[:, t:t + 1]) for t in range(12, 30)]
    torch.testing.assert_close(torch.cat([p.mean for p in parts], dim=1), whole.mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([p.logits for p in parts], dim=1), whole.logits, rtol=1e-5, atol=1e-5)


def test_one_component_nll_is_the_gaussian_log_density():
    mean = torch.tensor([[[0.5, -1.0, 2.0]]])
    log_std = torch.log(torch.tensor([[[0.3, 1.5, 0.7]]]))
    x = torch.tensor([0.2, 0.1, 2.5])
    mixture = Mixture(logits=torch.tensor([0.7]), mean=mean[0], log_std=log_std[0])
    by_hand = 0.0
    for xi, mi, si in zip([0.2, 0.1, 2.5], [0.5, -1.0, 2.0], [0.3, 1.5, 0.7], strict=True):
        by_hand += 0.5 * ((xi - mi) / si) ** 2 + math.log(si) + 0.5 * math.log(2 * math.pi)
    assert float(mixture.nll(x)) == pytest.approx(by_hand, rel=1e-6)


def test_two_component_nll_weighs_the_components():
    mixture = Mixture(logits=torch.log(torch.tensor([0.25, 0.75])), mean=torch.tensor([[0.0], [4.0]]),
                      log_std=torch.zeros(2, 1))
    density = lambda x, m: math.exp(-0.5 * (x - m) ** 2) / math.sqrt(2 * math.pi)  # noqa: E731
    for x in (0.0, 1.0, 3.5):
        expected = -math.log(0.25 * density(x, 0.0) + 0.75 * density(x, 4.0))
        assert float(mixture.nll(torch.tensor([x]))) == pytest.approx(expected, rel=1e-5)


def test_temperature_zero_is_the_likeliest_mean_and_temperature_scales_the_spread():
    mixture = Mixture(logits=torch.tensor([[0.1, 2.0]]).expand(4000, 2),
                      mean=torch.tensor([[[1.0, 1.0], [-3.0, 5.0]]]).expand(4000, 2, 2),
                      log_std=torch.zeros(4000, 2, 2))
    g = torch.Generator().manual_seed(0)
    torch.testing.assert_close(mixture.sample(0.0, g)[0], torch.tensor([-3.0, 5.0]))
    picked_second = (mixture.sample(0.5, g)[:, 1] > 3.0).float().mean()
    assert 0.82 < float(picked_second) < 0.90  # softmax([0.1, 2.0])[1] = 0.87
    wide = mixture.sample(1.0, g)[:, 1]
    narrow = mixture.sample(0.5, g)[:, 1]
    tight = lambda s: float((s[s > 3.0] - 5.0).std())  # noqa: E731
    assert tight(narrow) == pytest.approx(0.5 * tight(wide), rel=0.15)


def test_a_few_training_steps_lower_the_loss():
    torch.manual_seed(0)
    recipe = make({**SMALL, "window_frames": 40, "input_noise": 0.02})
    net = recipe.build(("unknown", "house", "rock"))
    # a real motion to learn: the standing pose swaying its pelvis and bending one joint
    t = torch.arange(4 * 40, dtype=torch.float32) / 30.0
    raw = standing_motion(len(t), LAYOUT)
    raw[:, 0] += 0.1 * torch.sin(2 * math.pi * t)
    raw[:, 4:6] += 0.3 * torch.sin(2 * math.pi * t)[:, None]
    normalizer = Normalizer.fit(raw, LAYOUT)
    motion = normalizer.normalize(raw).view(4, 40, -1)
    music = torch.randn(4, 40, NUM_FEATURES, generator=torch.Generator().manual_seed(2))
    batch = Batch(motion=motion, music=music, style=torch.tensor([0, 1, 2, 1]),
                  denormalize=normalizer.denormalize)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # the same input noise before and after
        first = recipe.losses(net, batch, torch.Generator().manual_seed(7))
    for _ in range(40):
        losses = recipe.losses(net, batch, gen)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
    with torch.no_grad():
        last = recipe.losses(net, batch, torch.Generator().manual_seed(7))
    assert set(last) == {"nll", "kinematic", "contact", "total"}
    assert float(last["total"]) < float(first["total"]) - 0.3
    assert float(last["nll"]) < float(first["nll"]) - 0.3
    assert recipe.config()["styles"] == ["unknown", "house", "rock"]


# ---------------------------------------------------------------- through the server

SONG = EXAMPLE_SONG.read_bytes()


def test_bundled_checkpoint_is_small_loadable_and_registered():
    path = MODELS["dancenet"].default_checkpoint
    assert "dancenet" in available_models()
    assert path.stat().st_size <= 20 * 1024 * 1024
    ckpt = load_checkpoint(path)
    assert ckpt["model"] == "dancenet" and ckpt["step"] > 0 and "optimizer" not in ckpt
    assert ckpt["config"]["styles"][0] == "unknown" and len(ckpt["config"]["styles"]) > 1


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_test_server(tmp_path_factory.mktemp("dancenet"), models=("dancenet",))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dance(server):
    """30 s of the bundled example song, as streamed."""
    chunks: list = []
    with server.client(timeout=120) as client:
        result = client.generate(SONG, model="dancenet", seed=0, seconds=30.0, on_chunk=chunks.append)
    return result, chunks


def test_hello_lists_dancenet_with_its_options_and_edits(server):
    with server.client() as client:
        hello = client.hello()
    model = {m["name"]: m for m in hello["models"]}["dancenet"]
    assert model["family"] == "autoregressive" and model["fps"] == 30
    assert model["editing"] == {"inpaint": True, "abilities": ["continuation", "range"]}
    options = {o["name"]: o for o in model["options"]}
    assert options["temperature"]["type"] == "float" and options["temperature"]["min"] == 0.0
    assert options["style"]["type"] == "choice" and options["style"]["default"] == "unknown"
    assert options["style"]["choices"][0] == "unknown" and "rock" in options["style"]["choices"]
    assert options["blend_frames"]["default"] == 15
    assert options["ground_feet"] == {"name": "ground_feet", "type": "bool", "default": True,
                                      "description": options["ground_feet"]["description"]}


def test_a_30_second_dance_streams_in_chunks(dance):
    result, chunks = dance
    assert result.num_frames == 900
    assert len(chunks) >= 10
    starts = [c.start for c in chunks]
    assert starts[0] == 0 and [c.start + c.num_frames for c in chunks[:-1]] == starts[1:]
    assert sum(c.num_frames for c in chunks) == 900
    np.testing.assert_allclose(np.linalg.norm(result.rotations, axis=-1), 1.0, atol=1e-4)
    assert np.isfinite(result.root_translation).all()
    assert ((result.contacts >= 0) & (result.contacts <= 1)).all()


@pytest.fixture(scope="module")
def measures(dance):
    result, _ = dance
    music = SimpleNamespace(beat_times=np.array(result.summary["beat_times"]))  # the server's analysis
    assert len(music.beat_times) > 40  # the example song is at 150 BPM
    clip = MotionClip(rotations=result.rotations, root_translation=result.root_translation, fps=30,
                      contacts=result.contacts, contact_names=tuple(result.contact_names))
    return measure_dance(clip, music, [])


def test_it_keeps_moving(measures):
    assert measures.speed_last_10s >= 0.5 * measures.speed_first_10s
    assert measures.speed_last_10s > 0.003  # metres per frame, mean over joints: dancing, not swaying


def test_it_moves_in_time_with_the_beat(measures):
    assert measures.beat_alignment > measures.beat_alignment_half_beat_off + 0.05


def test_feet_stay_on_the_floor(measures):
    assert abs(measures.sole_height_median_m) < 0.05
    assert measures.sole_height_p05_m > -0.08


def test_same_seed_same_dance_other_seed_other_dance(server):
    song = wav_bytes(5.0, bpm=110, seed=4)
    with server.client(timeout=60) as client:
        a = client.generate(song, model="dancenet", seed=3)
        b = client.generate(song, model="dancenet", seed=3)
        c = client.generate(song, model="dancenet", seed=4)
    np.testing.assert_array_equal(a.rotations, b.rotations)
    np.testing.assert_array_equal(a.root_translation, b.root_translation)
    assert not np.allclose(a.rotations, c.rotations, atol=1e-3)


def test_a_style_is_accepted_and_a_bad_one_refused(server):
    song = wav_bytes(3.0, seed=5)
    with server.client(timeout=60) as client:
        rock = client.generate(song, model="dancenet", seed=1, options={"style": "rock"})
        anything = client.generate(song, model="dancenet", seed=1)
        assert rock.summary["options"]["style"] == "rock" and rock.num_frames == 90
        assert not np.allclose(rock.rotations, anything.rotations, atol=1e-4)  # the style is used
        with pytest.raises(ChoreoError) as info:
            client.generate(song, model="dancenet", seed=1, options={"style": "polka-on-mars"})
    assert info.value.code == "bad_option" and "style" in str(info.value) and "rock" in str(info.value)


def test_cancel_mid_dance_stops_it_and_the_server_still_serves(server):
    with server.client(timeout=60, heartbeat_interval=0.5) as client:
        msg_id = client.submit_generate(wav_bytes(120.0, seed=6), model="dancenet", seed=1)
        seen = wait_for(client, msg_id, {"motion_chunk"})  # it is drawing frames now
        job_id = seen[-1].job_id
        client.cancel(job_id)
        seen += wait_for(client, msg_id, {"cancelled", "done", "error"})
        end = seen[-1]
        assert end.type == "cancelled" and end.content["reason"] == "cancel", end
        chunks = [m for m in seen if m.type == "motion_chunk"]
        assert 0 < len(chunks) < 120 * 30 // 20  # it stopped long before the song's end
        after = client.generate(wav_bytes(2.0, seed=7), model="dancenet", seed=2)  # still serving
        assert after.num_frames == 60


def _inpaint(server, dance, keep, seed=1):
    chunks: list = []
    with server.client(timeout=120) as client:
        result = client.inpaint(rotations=dance.rotations, root_translation=dance.root_translation,
                                contacts=dance.contacts, keep=keep, model="dancenet", seed=seed,
                                audio_hash=dance.summary["content_hash"], on_chunk=chunks.append)
    return result, chunks


def test_continuation_keeps_what_is_before_it_and_goes_on(server, dance):
    original, _ = dance
    keep = masks.continuation(original.num_frames, 600)
    result, chunks = _inpaint(server, original, keep)
    assert [c.start for c in chunks][0] == 600 and sum(c.num_frames for c in chunks) == 300
    np.testing.assert_array_equal(result.rotations[:600], original.rotations[:600])
    np.testing.assert_array_equal(result.root_translation[:600], original.root_translation[:600])
    assert not np.allclose(result.rotations[600:], original.rotations[600:], atol=1e-3)
    # it continues the kept motion: the first new frame is about as far from the last kept
    # one as the dance moves in a frame, not a jump back to a standing pose
    step = np.abs(np.diff(original.root_translation, axis=0)).max()
    assert np.abs(result.root_translation[600] - original.root_translation[599]).max() < 3 * step + 0.01


def test_a_range_edit_streams_its_span_and_joins_the_kept_frames(server, dance):
    original, _ = dance
    keep = masks.range_mask(original.num_frames, 300, 420)
    result, chunks = _inpaint(server, original, keep, seed=2)
    assert chunks[0].start == 300 and sum(c.num_frames for c in chunks) == 120
    assert [c.start + c.num_frames for c in chunks[:-1]] == [c.start for c in chunks[1:]]
    np.testing.assert_array_equal(result.rotations[420:], original.rotations[420:])
    step = np.abs(np.diff(original.root_translation, axis=0)).max()
    assert np.abs(result.root_translation[419] - original.root_translation[420]).max() < 3 * step + 0.01
