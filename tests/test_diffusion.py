"""The diffusion maths: schedule, forward noising, DDIM, inpainting, guidance, learned variance."""

from __future__ import annotations

import math

import torch

from backend.models.diffusion import (
    GaussianDiffusion, Inpainting, LearnedVarianceDiffusion, cosine_alphas_cumprod, gaussian_nll, guided_denoiser,
    normal_kl,
)
from backend.models.edge import EdgeConfig, EdgeDenoiser
from backend.models.popdg import PopdgConfig, PopdgDenoiser


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
        guided = guided_denoiser(model, music, 2.5)(x, t)
        plain = guided_denoiser(model, music, 1.0)(x, t)
    torch.testing.assert_close(guided, uncond + 2.5 * (cond - uncond), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plain, cond, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(cond, uncond)


def test_guidance_takes_x0_from_a_network_that_also_predicts_a_variance():
    torch.manual_seed(0)
    cfg = PopdgConfig(d_model=32, num_layers=1, num_heads=2, music_layers=1, dropout=0.0)
    model = PopdgDenoiser(cfg).eval()
    with torch.no_grad():  # a trained null music, far from the encoded music
        model.null_music.copy_(torch.randn(cfg.d_model))
    music, x, t = torch.randn(1, 30, cfg.music_channels), torch.randn(1, 30, cfg.motion_channels), torch.tensor([40])
    with torch.no_grad():
        cond, _ = model(x, t, music)
        uncond, _ = model(x, t, music, drop=torch.tensor([True]))
        guided = guided_denoiser(model, music, 3.0)(x, t)
    torch.testing.assert_close(guided, uncond + 3.0 * (cond - uncond), atol=1e-5, rtol=1e-5)
    assert guided.shape == x.shape and not torch.allclose(cond, uncond)


def test_the_training_step_noises_to_a_random_t_and_drops_the_music_at_its_rate():
    diffusion = GaussianDiffusion(1000)
    heard = []

    def network(x_t, t, music, drop):
        heard.append(drop)
        return x_t + 1.0

    x0, music = torch.randn(400, 6, 3), torch.randn(400, 6, 2)
    t, x_t, prediction = diffusion.training_step(network, x0, music, 0.25, torch.Generator().manual_seed(4))
    assert torch.equal(prediction, x_t + 1.0) and len(t.unique()) > 300
    again = torch.Generator().manual_seed(4)  # the same draws, in the same order
    t_again = diffusion.sample_timesteps(400, again)
    assert torch.equal(t, t_again)
    torch.testing.assert_close(x_t, diffusion.q_sample(x0, t, torch.randn(x0.shape, generator=again)))
    assert torch.equal(heard[0], torch.rand(400, generator=again) < 0.25)
    assert 0.18 < heard[0].float().mean() < 0.32
    for rate, dropped in ((0.0, False), (1.0, True)):
        diffusion.training_step(network, x0, music, rate, torch.Generator().manual_seed(5))
        assert bool(heard[-1].all()) is dropped and bool(heard[-1].any()) is dropped


# ---------------------------------------------------------------- improved DDPM (POPDG)


def test_kl_between_gaussians_has_its_known_values():
    m, lv = torch.randn(50), torch.randn(50)
    torch.testing.assert_close(normal_kl(m, lv, m, lv), torch.zeros(50))
    zero = torch.zeros(1)
    # KL(N(0,1) || N(1,1)) = 1/2; KL(N(0,1) || N(0,e^2)) = (2 + e^-2 - 1) / 2
    torch.testing.assert_close(normal_kl(zero, zero, zero + 1, zero), torch.tensor([0.5]))
    torch.testing.assert_close(normal_kl(zero, zero, zero, zero + 2), torch.tensor([0.5 * (1 + math.exp(-2))]))
    assert torch.all(normal_kl(m, lv, torch.randn(50), torch.randn(50)) >= 0)


def test_gaussian_nll_is_the_negative_log_density():
    x, mean, log_var = torch.tensor([0.3]), torch.tensor([-0.2]), torch.tensor([math.log(0.25)])
    expected = -torch.distributions.Normal(mean, 0.5).log_prob(x)
    torch.testing.assert_close(gaussian_nll(x, mean, log_var), expected)


def test_posterior_matches_bayes_rule_and_the_variance_interpolates_in_log_space():
    d = LearnedVarianceDiffusion(1000)
    abar = d.alphas_cumprod
    t = torch.tensor([1, 10, 500, 999])
    x0, xt = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    # Bayes: q(x_{t-1} | x0) = N(sqrt(abar') x0, 1 - abar'), q(x_t | x_{t-1}) = N(sqrt(a_t) x_{t-1}, b_t)
    prev, alpha = abar[t - 1][:, None], (abar[t] / abar[t - 1])[:, None]
    precision = 1 / (1 - prev) + alpha / (1 - alpha)
    mean = (prev.sqrt() * x0 / (1 - prev) + alpha.sqrt() * xt / (1 - alpha)) / precision
    got_mean, got_log_var = d.q_posterior(x0, xt, t)
    torch.testing.assert_close(got_mean, mean)
    torch.testing.assert_close(got_log_var, (1 / precision).log().expand_as(xt))
    # v = 1 gives log beta_t, v = 0 the posterior's log beta~_t, v = 1/2 halfway in log space
    ones = torch.ones(4, 3, dtype=torch.float64)
    torch.testing.assert_close(d.model_log_variance(ones, t), (1 - alpha).log().expand_as(xt))
    torch.testing.assert_close(d.model_log_variance(0 * ones, t), got_log_var)
    torch.testing.assert_close(d.model_log_variance(0.5 * ones, t), 0.5 * ((1 - alpha).log() + got_log_var))
    assert torch.all(d.posterior_log_variance[1:] < torch.log(d.betas[1:]))  # beta~_t < beta_t
    assert torch.isfinite(d.posterior_log_variance).all()  # t = 0 clipped to beta~_1


def test_vlb_is_zero_for_a_perfect_model_and_trains_only_the_variance():
    d = LearnedVarianceDiffusion(1000)
    x0 = torch.randn(3, 8, 4)
    t = torch.tensor([5, 300, 990])
    xt = d.q_sample(x0, t)
    exact = d.vlb_terms(x0, xt, t, x0.clone(), torch.zeros_like(x0))  # v = 0: the true posterior
    torch.testing.assert_close(exact, torch.zeros(3), atol=1e-5, rtol=0)
    pred = (x0 + 0.1 * torch.randn_like(x0)).requires_grad_()
    v = torch.full_like(x0, 0.5).requires_grad_()
    loss = d.vlb_terms(x0, xt, t, pred, v).mean()
    loss.backward()
    assert loss > 0 and pred.grad is None and v.grad.abs().sum() > 0  # stop-gradient on the mean
    t0 = torch.tensor([0, 0, 0])  # the t = 0 term: Gaussian NLL of x0, in bits per dimension
    nll = d.vlb_terms(x0, d.q_sample(x0, t0), t0, x0, torch.ones_like(x0))
    torch.testing.assert_close(nll, torch.full((3,), 0.5 * (math.log(2 * math.pi) + math.log(d.betas[0])) / math.log(2)))
    assert d.hybrid_vlb_weight(0.001) == 1.0
