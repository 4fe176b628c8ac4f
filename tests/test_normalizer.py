"""The per-channel normaliser: statistics, fixed contact mapping, checkpoint round trip."""

from __future__ import annotations

import pytest
import torch

from backend.motion.layout import BODY_LAYOUT, FOOT_LAYOUT
from backend.motion.normalizer import Normalizer, NormalizerError


def motion_batch(layout, frames: int = 400, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(frames, layout.num_channels, generator=g, dtype=torch.float64)
    x = x * torch.linspace(0.05, 3.0, layout.num_channels, dtype=torch.float64) + 2.0
    x[:, layout.contacts] = (torch.rand(frames, len(layout.contact_joints), generator=g) > 0.7).double()
    x[:, 10] = 0.25  # a channel that never moves
    return x


@pytest.mark.parametrize("layout", [FOOT_LAYOUT, BODY_LAYOUT], ids=lambda l: l.name)
def test_fit_standardises_and_round_trips(layout):
    x = motion_batch(layout)
    norm = Normalizer.fit(x, layout)
    y = norm.normalize(x)
    moving = [c for c in range(layout.contacts.start) if c != 10]
    assert torch.allclose(y[:, moving].mean(0), torch.zeros(len(moving), dtype=y.dtype), atol=1e-4)
    assert torch.allclose(y[:, moving].std(0, unbiased=False), torch.ones(len(moving), dtype=y.dtype),
                          atol=1e-4)
    assert torch.allclose(norm.denormalize(y), x, atol=1e-5)


def test_contacts_map_zero_one_to_minus_one_one_and_constants_stay_finite():
    x = motion_batch(FOOT_LAYOUT)
    norm = Normalizer.fit(x, FOOT_LAYOUT)
    y = norm.normalize(x)
    assert set(y[:, FOOT_LAYOUT.contacts].unique().tolist()) == {-1.0, 1.0}
    assert torch.all(torch.isfinite(y)) and torch.all(y[:, 10] == 0)
    assert norm.std[10] == pytest.approx(1e-2)


def test_fit_on_clip_list_equals_fit_on_concatenation():
    a, b = motion_batch(FOOT_LAYOUT, 100, seed=1), motion_batch(FOOT_LAYOUT, 250, seed=2)
    whole = Normalizer.fit(torch.cat([a, b]), FOOT_LAYOUT)
    parts = Normalizer.fit([a, b.numpy()], FOOT_LAYOUT)
    assert torch.allclose(whole.mean, parts.mean) and torch.allclose(whole.std, parts.std)


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    norm = Normalizer.fit(motion_batch(BODY_LAYOUT), BODY_LAYOUT)
    path = tmp_path / "ckpt.pt"
    torch.save({"normalizer": norm.state_dict(), "step": 3}, path)
    loaded = Normalizer.from_state_dict(torch.load(path, weights_only=True)["normalizer"])
    x = torch.randn(2, 7, BODY_LAYOUT.num_channels)
    assert torch.equal(loaded.normalize(x), norm.normalize(x))
    assert loaded.normalize(x).dtype == torch.float32


def test_bad_input_has_codes():
    norm = Normalizer.fit(motion_batch(FOOT_LAYOUT), FOOT_LAYOUT)
    with pytest.raises(NormalizerError) as err:
        norm.normalize(torch.zeros(3, BODY_LAYOUT.num_channels))
    assert err.value.code == "channel_mismatch"
    with pytest.raises(NormalizerError) as err:
        Normalizer.fit(torch.zeros(0, FOOT_LAYOUT.num_channels), FOOT_LAYOUT)
    assert err.value.code == "no_data"
    with pytest.raises(NormalizerError) as err:
        Normalizer.from_state_dict({"mean": torch.zeros(4)})
    assert err.value.code == "bad_state"
    with pytest.raises(NormalizerError) as err:
        Normalizer(torch.zeros(4), torch.zeros(4))
    assert err.value.code == "bad_values"
