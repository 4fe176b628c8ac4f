"""The diffusion maths, in one place: noise schedule, the training step, guidance, DDIM sampling.

Every diffusion model in Choreo (``edge``, ``popdg``) uses this module and only adds
its own network, which must offer what ``MusicDenoiser`` says. The network predicts
the clean sample x0 (as EDGE does), which makes inpainting simple: known channels
can be written straight into the prediction.

Sources of the formulas:
* cosine schedule: Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic
  Models", ICML 2021, eq. 17 (s = 0.008, betas clipped at 0.999);
* q(x_t | x_0) and the DDIM update: Song, Meng & Ermon, "Denoising Diffusion
  Implicit Models", ICLR 2021, eq. 12 (eta = 0 gives the deterministic sampler);
* classifier-free guidance: Ho & Salimans, 2022 (x0 = x0_u + w (x0_c - x0_u));
* learned variance and the variational bound (``LearnedVarianceDiffusion``, used by
  POPDG): Nichol & Dhariwal 2021, eq. 15 (log-space interpolation between beta_t and
  the posterior variance), eq. 16 (hybrid loss, lambda = 0.001), and Ho, Jain & Abbeel,
  "Denoising Diffusion Probabilistic Models", NeurIPS 2020, eqs. 5-7 (the posterior
  q(x_{t-1} | x_t, x_0) and the KL terms of the bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch
from torch import Tensor

Denoiser = Callable[[Tensor, Tensor], Tensor]
"""(x_t, t) -> predicted x0. Conditioning is bound in by the caller (``guided_denoiser``)."""


class MusicDenoiser(Protocol):
    """What the maths here needs from a diffusion network conditioned on music.

    Calling it predicts x0 from x_t (B, T, C), timesteps (B,) and music (B, T, D); rows
    where ``drop`` is True hear the network's learned "no music" instead (classifier-free
    guidance); ``music_tokens`` are ``encode_music``'s output, passed to skip the encoder.
    A network that predicts more than x0 (POPDG's variance) returns a tuple, x0 first.
    """

    def encode_music(self, music: Tensor, drop: Tensor | None) -> Tensor: ...

    def __call__(self, x_t: Tensor, t: Tensor, music: Tensor, drop: Tensor | None = None,
                 music_tokens: Tensor | None = None) -> Any: ...


def _x0(prediction: Tensor | tuple[Tensor, ...]) -> Tensor:
    return prediction[0] if isinstance(prediction, tuple) else prediction


def guided_denoiser(network: MusicDenoiser, music: Tensor, guidance: float) -> Denoiser:
    """The sampler's (x_t, t) -> x0 with classifier-free guidance, the music encoded once.

    guidance w: x0 = x0_uncond + w * (x0_cond - x0_uncond), both passes in one batch;
    w = 1 is plain conditional sampling and skips the unconditional pass. Only x0 is
    used: DDIM needs no variance.
    """
    b = music.shape[0]
    if guidance == 1.0:
        tokens = network.encode_music(music, None)
        return lambda x, t: _x0(network(x, t, music, music_tokens=tokens))
    drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(music.device)
    tokens = network.encode_music(torch.cat([music, music]), drop)

    def denoise(x: Tensor, t: Tensor) -> Tensor:
        out = _x0(network(torch.cat([x, x]), torch.cat([t, t]), music, music_tokens=tokens))
        cond, uncond = out[:b], out[b:]
        return uncond + guidance * (cond - uncond)

    return denoise


def cosine_alphas_cumprod(num_steps: int, s: float = 0.008) -> Tensor:
    """alpha-bar_t for t = 0..num_steps-1 (Nichol & Dhariwal eq. 17), float64."""
    steps = torch.arange(num_steps + 1, dtype=torch.float64)
    f = torch.cos(((steps / num_steps) + s) / (1 + s) * math.pi / 2) ** 2
    alphas_cumprod = f / f[0]
    betas = (1 - alphas_cumprod[1:] / alphas_cumprod[:-1]).clamp(max=0.999)
    return torch.cumprod(1.0 - betas, dim=0)


@dataclass(frozen=True)
class Inpainting:
    """Known values to hold during sampling: where ``mask`` is 1, the result equals ``known``.

    Both are (B, T, C) in the model's normalised space. At every step the known part
    of x_t is replaced by a correctly noised copy of ``known``, and the known part of
    the x0 prediction by ``known`` itself, so the unknown part is denoised in harmony
    with it at no extra cost (the same steps as plain generation).
    """

    known: Tensor
    mask: Tensor


class GaussianDiffusion:
    """Forward process and DDIM sampler over a fixed cosine schedule."""

    def __init__(self, num_steps: int = 1000) -> None:
        self.num_steps = num_steps
        self.alphas_cumprod = cosine_alphas_cumprod(num_steps)

    def _abar(self, t: Tensor, like: Tensor) -> Tensor:
        abar = self.alphas_cumprod.to(like.device)[t].to(like.dtype)
        return abar.view(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor | None = None) -> Tensor:
        """Sample x_t ~ q(x_t | x_0) = N(sqrt(abar) x0, (1 - abar) I)."""
        if noise is None:
            noise = torch.randn_like(x0)
        abar = self._abar(t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def sample_timesteps(self, batch: int, generator: torch.Generator | None = None,
                         device: torch.device | str = "cpu") -> Tensor:
        return torch.randint(0, self.num_steps, (batch,), generator=generator, device=device)

    def training_step(self, network: MusicDenoiser, x0: Tensor, music: Tensor, cond_drop_prob: float,
                      generator: torch.Generator) -> tuple[Tensor, Tensor, Any]:
        """A training step's forward pass: (t, x_t, the network's prediction).

        A uniform random t per item, x0 noised to it, and the music dropped for
        ``cond_drop_prob`` of the batch, which is how the network learns the
        unconditional prediction that guidance needs (Ho & Salimans; EDGE drops 25 %).
        The losses on the prediction are the model's own. ``generator`` is a CPU
        generator and the draws move to x0's device afterwards, so a seed gives the
        same training run on any device.
        """
        t = self.sample_timesteps(x0.shape[0], generator).to(x0.device)
        x_t = self.q_sample(x0, t, torch.randn(x0.shape, generator=generator).to(x0.device))
        drop = (torch.rand(x0.shape[0], generator=generator) < cond_drop_prob).to(x0.device)
        return t, x_t, network(x_t, t, music, drop)

    def ddim_timesteps(self, steps: int) -> list[int]:
        """Evenly spaced timesteps from T-1 down to 0, ``steps`` of them."""
        steps = max(1, min(steps, self.num_steps))
        return torch.linspace(self.num_steps - 1, 0, steps).round().long().tolist()

    @torch.no_grad()
    def ddim_sample(
        self,
        denoise: Denoiser,
        shape: tuple[int, ...],
        steps: int,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        eta: float = 0.0,
        inpainting: Inpainting | None = None,
        on_step: Callable[[int, int], None] | None = None,
        resample: int = 0,
    ) -> Tensor:
        """Run the DDIM sampler from pure noise to x0.

        ``on_step(i, steps)`` runs before each network call; it may raise to stop
        (the server's cancel check lives there, so a cancel lands within one step).
        ``resample`` r > 0 repeats every step r more times, each time noising the
        result back up to the step's level first (RePaint, Lugmayr et al. CVPR 2022):
        more network calls, better harmony between the known and the made parts.
        """
        x = torch.randn(shape, generator=generator, device=device)
        timesteps = self.ddim_timesteps(steps)
        for i, t in enumerate(timesteps):
            last = i == len(timesteps) - 1
            t_batch = torch.full((shape[0],), t, device=device, dtype=torch.long)
            for r in range(1 if last else resample + 1):
                if on_step is not None:
                    on_step(i, len(timesteps))
                if inpainting is not None:
                    noised_known = self.q_sample(
                        inpainting.known, t_batch,
                        torch.randn(shape, generator=generator, device=device))
                    x = torch.lerp(x, noised_known, inpainting.mask)
                x0 = denoise(x, t_batch)
                if inpainting is not None:
                    x0 = torch.lerp(x0, inpainting.known, inpainting.mask)
                if last:
                    return x0
                x_next = self._ddim_step(x, x0, t, timesteps[i + 1], eta, generator)
                if r < resample:
                    x = self._renoise(x_next, timesteps[i + 1], t, generator)
            x = x_next
        raise AssertionError("unreachable")

    def _renoise(self, x: Tensor, t_from: int, t_to: int, generator: torch.Generator | None) -> Tensor:
        """Sample q(x_{t_to} | x_{t_from}) for t_to > t_from: noise a sample back up."""
        ratio = (self.alphas_cumprod[t_to] / self.alphas_cumprod[t_from]).item()
        noise = torch.randn(x.shape, generator=generator, device=x.device)
        return math.sqrt(ratio) * x + math.sqrt(1 - ratio) * noise

    def _ddim_step(self, x: Tensor, x0: Tensor, t: int, t_next: int, eta: float,
                   generator: torch.Generator | None) -> Tensor:
        abar = self.alphas_cumprod[t].item()
        abar_next = self.alphas_cumprod[t_next].item()
        eps = (x - math.sqrt(abar) * x0) / math.sqrt(1 - abar)
        sigma = eta * math.sqrt((1 - abar_next) / (1 - abar) * (1 - abar / abar_next))
        direction = math.sqrt(max(1 - abar_next - sigma**2, 0.0)) * eps
        x_next = math.sqrt(abar_next) * x0 + direction
        if sigma > 0:
            x_next = x_next + sigma * torch.randn(x.shape, generator=generator, device=x.device)
        return x_next


# ---------------------------------------------------------------- improved DDPM


def normal_kl(mean1: Tensor, log_var1: Tensor, mean2: Tensor, log_var2: Tensor) -> Tensor:
    """KL(N(mean1, e^log_var1) || N(mean2, e^log_var2)) per element, in nats."""
    return 0.5 * (log_var2 - log_var1 + torch.exp(log_var1 - log_var2)
                  + (mean1 - mean2) ** 2 * torch.exp(-log_var2) - 1.0)


def gaussian_nll(x: Tensor, mean: Tensor, log_var: Tensor) -> Tensor:
    """-log N(x; mean, e^log_var) per element, in nats.

    The bound's t = 0 term. Nichol & Dhariwal use a discretised Gaussian because image
    pixels are 8-bit integers; motion channels are continuous, so the term is the plain
    Gaussian density (a density, so it can go below zero).
    """
    return 0.5 * (math.log(2 * math.pi) + log_var + (x - mean) ** 2 * torch.exp(-log_var))


class LearnedVarianceDiffusion(GaussianDiffusion):
    """The cosine schedule plus what a learned reverse variance needs (improved DDPM).

    The network predicts x0 (the mean parametrisation EDGE uses and POPDG builds on)
    and, per channel, a value v in [0, 1]; the reverse process is

        p(x_{t-1} | x_t) = N(mu~(x_t, x0_hat), exp(v log beta_t + (1 - v) log beta~_t))

    where mu~ and beta~ are the mean and variance of the true posterior
    q(x_{t-1} | x_t, x0). Sampling is still DDIM (``ddim_sample``, which needs only x0);
    the variance is what the variational-bound term of the hybrid loss trains.
    """

    def __init__(self, num_steps: int = 1000) -> None:
        super().__init__(num_steps)
        abar = self.alphas_cumprod
        abar_prev = torch.cat([abar.new_ones(1), abar[:-1]])
        self.betas = 1.0 - abar / abar_prev
        self.posterior_variance = self.betas * (1.0 - abar_prev) / (1.0 - abar)
        # beta~_0 = 0; like Nichol & Dhariwal, its log takes beta~_1 so it stays finite.
        self.posterior_log_variance = torch.log(
            torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]]))
        self.posterior_mean_x0 = self.betas * abar_prev.sqrt() / (1.0 - abar)
        self.posterior_mean_xt = (1.0 - abar_prev) * (1.0 - self.betas).sqrt() / (1.0 - abar)

    def _at(self, table: Tensor, t: Tensor, like: Tensor) -> Tensor:
        return table.to(like.device)[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log variance of q(x_{t-1} | x_t, x0) (Ho et al. eqs. 6-7)."""
        mean = self._at(self.posterior_mean_x0, t, x_t) * x0 + self._at(self.posterior_mean_xt, t, x_t) * x_t
        return mean, self._at(self.posterior_log_variance, t, x_t).expand_as(x_t)

    def model_log_variance(self, v: Tensor, t: Tensor) -> Tensor:
        """log sigma_t^2 = v log beta_t + (1 - v) log beta~_t, v in [0, 1] (N&D eq. 15)."""
        max_log = self._at(torch.log(self.betas), t, v)
        min_log = self._at(self.posterior_log_variance, t, v)
        return v * max_log + (1.0 - v) * min_log

    def vlb_terms(self, x0: Tensor, x_t: Tensor, t: Tensor, x0_pred: Tensor, v: Tensor) -> Tensor:
        """L_t per sample in bits per dimension: KL(q(x_{t-1}|x_t,x0) || p(x_{t-1}|x_t)),
        or at t = 0 the Gaussian NLL of x0 under p(x_0 | x_1).

        The model's mean uses ``x0_pred`` detached: the bound only trains the variance,
        the simple loss trains the mean (N&D sec. 3.1, the stop-gradient of L_hybrid).
        """
        true_mean, true_log_var = self.q_posterior(x0, x_t, t)
        model_mean, _ = self.q_posterior(x0_pred.detach(), x_t, t)
        model_log_var = self.model_log_variance(v, t)
        kl = normal_kl(true_mean, true_log_var, model_mean, model_log_var).flatten(1).mean(1)
        nll = gaussian_nll(x0, model_mean, model_log_var).flatten(1).mean(1)
        return torch.where(t == 0, nll, kl) / math.log(2.0)

    def hybrid_vlb_weight(self, lam: float = 0.001) -> float:
        """The weight of one sampled L_t in L_hybrid = L_simple + lam L_vlb.

        L_vlb sums L_t over all T steps; with t drawn uniformly, T * L_t estimates it,
        so one term weighs lam * T (N&D eq. 16; lam = 0.001 and T = 1000 give 1).
        """
        return lam * self.num_steps
