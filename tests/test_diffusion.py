"""The diffusion maths: schedule, forward noising, DDIM, inpainting, guidance."""

from __future__ import annotations

import torch

from backend.models.diffusion import GaussianDiffusion, Inpainting, cosine_alphas_cumprod
from backend.models.edge import EdgeConfig, EdgeDenoiser


def test_cosine_schedule_runs_from_signal_to_noise():
    abar = cosine_alphas_cumprod(1000)
    assert abar.shape == (1000,)
    assert abar[0] > 0.999 and abar[-1] < 1e-3
    assert torch.all(abar[1:] < abar[:-1])


def test_q_sample_has_the_forward_process_statistics():
    diffusion = GaussianDiffusion(1000)
    x0 = torch.full((20000, 1), 2.0, dtype=torch.float64)
    t = torch.full((20000,), 500)
    xt = diffusion.q_sample(x0, t)
    abar = diffusion.alphas_cumprod[500]
    assert abs(xt.mean() - 2.0 * abar.sqrt()) < 0.03
    assert abs(xt.var() - (1 - abar)) < 0.03


def test_ddim_with_an_oracle_denoiser_returns_the_target():
    diffusion = GaussianDiffusion(1000)
    target = torch.randn(2, 10, 3)
    out = diffusion.ddim_sample(lambda x, t: target, target.shape, steps=10,
                                generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, target)


def test_ddim_is_deterministic_for_a_seed_and_varies_across_seeds():
    diffusion = GaussianDiffusion(1000)
    # A denoiser that depends on its input, so the starting noise matters.
    def denoise(x, t):
        return 0.5 * x
    a = diffusion.ddim_sample(denoise, (1, 8, 4), 5, generator=torch.Generator().manual_seed(1))
    b = diffusion.ddim_sample(denoise, (1, 8, 4), 5, generator=torch.Generator().manual_seed(1))
    c = diffusion.ddim_sample(denoise, (1, 8, 4), 5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_inpainting_holds_the_known_part_exactly_and_feeds_it_to_the_model():
    diffusion = GaussianDiffusion(1000)
    known = torch.randn(1, 12, 5)
    mask = torch.zeros_like(known)
    mask[:, :4] = 1.0
    seen_known_error = []

    def denoise(x, t):
        abar = diffusion.alphas_cumprod[t[0]].float()
        # At small t the model must be looking at (nearly) the known frames.
        if t[0] < 50:
            seen_known_error.append(float((x[:, :4] - abar.sqrt() * known[:, :4]).abs().max()))
        return torch.zeros_like(x)

    steps = diffusion.ddim_timesteps(20)
    assert steps[0] == 999 and steps[-1] == 0 and len(steps) == 20
    out = diffusion.ddim_sample(denoise, known.shape, 20, generator=torch.Generator().manual_seed(0),
                                inpainting=Inpainting(known=known, mask=mask))
    assert torch.equal(out[:, :4], known[:, :4])
    assert torch.all(out[:, 4:] == 0)
    assert seen_known_error and min(seen_known_error) < 0.2


def test_denoiser_accepts_any_window_length_and_guidance_blends_two_passes():
    torch.manual_seed(0)
    cfg = EdgeConfig(d_model=32, num_layers=1, num_heads=2, music_layers=1, dropout=0.0)
    model = EdgeDenoiser(cfg).eval()
    for frames in (17, 150, 301):  # no parameter is shaped by the window
        x = torch.randn(2, frames, cfg.motion_channels)
        music = torch.randn(2, frames, cfg.music_channels)
        assert model(x, torch.tensor([3, 900]), music).shape == x.shape
    music = torch.randn(1, 40, cfg.music_channels)
    x = torch.randn(1, 40, cfg.motion_channels)
    t = torch.tensor([10])
    with torch.no_grad():
        cond = model(x, t, music)
        uncond = model(x, t, music, drop=torch.tensor([True]))
        guided = model.guided_denoiser(music, 2.5)(x, t)
        plain = model.guided_denoiser(music, 1.0)(x, t)
    torch.testing.assert_close(guided, uncond + 2.5 * (cond - uncond), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plain, cond, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(cond, uncond)
