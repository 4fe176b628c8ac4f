"""EDGE-style generation of a dance of any length, streamed window by window.

The denoiser sees a fixed window (5 s by default). A song of any length is cut into
windows that overlap the previous one; the overlap is held to the frames already
made (diffusion inpainting at every DDIM step), so each window continues the last
one instead of starting over. Frames are final once streamed, so the first chunk
arrives after one window's sampling, not after the whole song.

Where a window hands over to the next is chosen, not fixed: each window commits its
frames up to the stillest frame of its last second (``SEAM_SEARCH_SECONDS``), and the
next window starts from there. Dances stop on the beat and move between beats, so
seams land where the body is nearly still, and ``blend_seam`` joins position and
speed there; a seam never cuts through the middle of a fast move.

EDGE (Tseng et al. 2023) samples all windows of a long song together in one batch;
we go one window at a time because animators watch the dance arrive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import torch

from backend.models.base import (
    Cancelled, GenerationRequest, MotionChunk, OptionSpec, ProgressCallback, StopCheck,
)
from backend.models.checkpoint import load_checkpoint
from backend.models.diffusion import GaussianDiffusion, Inpainting
from backend.models.edge import EdgeConfig, EdgeDenoiser
from backend.motion.kinematics import forward_kinematics
from backend.motion.layout import LAYOUTS, MotionLayout
from backend.motion.normalizer import Normalizer
from backend.motion.rotations import rot6d_to_matrix

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("steps", "int", 20, 1, 200, description="DDIM sampling steps per window"),
    OptionSpec("guidance", "float", 2.0, 0.0, 10.0,
               description="Classifier-free guidance weight: 1 = plain conditional, higher follows the music harder"),
    OptionSpec("eta", "float", 1.0, 0.0, 1.0,
               description="DDIM noise: 0 = deterministic given the seed's starting noise, 1 = fresh noise each step (more variety)"),
    OptionSpec("overlap_seconds", "float", 1.5, 0.2, 4.0,
               description="How much of the previous window each new window is held to"),
)


SEAM_SEARCH_SECONDS = 1.0


def next_window(committed: int, total: int, window: int, overlap: int) -> tuple[int, int]:
    """(start, end) of the window that continues a dance committed up to frame ``committed``.

    It holds ``overlap`` frames before ``committed`` (more near the end of the song,
    where it is pulled back to keep a full length; never a stub window).
    """
    if committed == 0 or total <= window:
        return 0, min(window, total)
    start = max(0, min(committed - overlap, total - window))
    return start, start + window


def commit_point(speed: torch.Tensor, first: int, end: int, total: int, search: int) -> int:
    """Where a window's committed part ends: ``end`` for the last window, else the
    stillest frame among the window's last ``search`` frames (after ``first``).

    speed[i] is the joint speed from frame i-1 to frame i, in window frames. The next
    window's first frame continues at the last committed frame's speed, so the seam
    is placed where the speeds into and out of it are least.
    """
    if end >= total:
        return end
    lo = max(first + 1, end - search)
    stillness = speed[lo - 1:end - 1] + speed[lo:end]
    return lo + int(torch.argmin(stillness))


SEAM_BLEND_FRAMES = 10


def blend_seam(held: torch.Tensor, new: torch.Tensor, frames: int = SEAM_BLEND_FRAMES) -> torch.Tensor:
    """Join a new window's frames onto the held frames without a jump in speed.

    The first new frame is moved to where the held motion was heading (the last held
    frame plus its last velocity); the correction fades out over ``frames`` frames
    with a cosine, so both position and speed stay continuous at the seam. The
    network already continues the held frames (they were inpainted at every step),
    so the correction is small; it removes what is left.
    held: (K, C) the held frames, K >= 1; new: (N, C); both normalised.
    """
    heading = held[-1] + (held[-1] - held[-2] if held.shape[0] > 1 else 0.0)
    offset = heading - new[0]
    n = min(frames, new.shape[0])
    fade = 0.5 * (1 + torch.cos(torch.pi * torch.arange(n, device=new.device) / frames))
    out = new.clone()
    out[:n] += fade[:, None] * offset
    return out


class EdgeGenerator:
    """A loaded EDGE-style model behind the ``Generator`` interface."""

    family = "diffusion"
    options = OPTIONS

    def __init__(self, model: EdgeDenoiser, normalizer: Normalizer, name: str = "edge",
                 device: str | torch.device = "cpu", info: dict[str, Any] | None = None) -> None:
        self.model = model.to(device).eval()
        self.cfg: EdgeConfig = model.cfg
        self.layout: MotionLayout = LAYOUTS[self.cfg.layout]
        self.normalizer = normalizer
        self.diffusion = GaussianDiffusion(self.cfg.diffusion_steps)
        self.device = torch.device(device)
        self.name = name
        self.fps = self.cfg.fps
        self.contact_names = self.layout.contact_names
        self.info = info or {}

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu",
                        name: str = "edge") -> "EdgeGenerator":
        data = load_checkpoint(path)
        cfg = EdgeConfig.from_dict(data["config"])
        model = EdgeDenoiser(cfg)
        model.load_state_dict({k: v.float() for k, v in data["ema"].items()})
        normalizer = Normalizer.from_state_dict(data["normalizer"])
        info = {"checkpoint": str(path), "trained_steps": int(data.get("step", 0))}
        return cls(model, normalizer, name=name, device=device, info=info)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "fps": self.fps,
            "contact_names": list(self.contact_names),
            "options": [o.to_dict() for o in self.options],
            "window_seconds": self.cfg.window_frames / self.fps,
            "editing": {"inpaint": False},  # the editing engine lands with the next protocol minor
            **self.info,
        }

    def _joint_speed(self, motion: torch.Tensor) -> torch.Tensor:
        """(T,) mean joint speed into each frame (metres per frame; 0 for the first)."""
        root, rot6d, _ = self.layout.unpack(motion)
        positions, _ = forward_kinematics(rot6d_to_matrix(rot6d), root)
        step = torch.linalg.norm(positions[1:] - positions[:-1], dim=-1).mean(dim=-1)
        return torch.cat([step.new_zeros(1), step])

    @torch.inference_mode()
    def generate(self, request: GenerationRequest, should_stop: StopCheck,
                 on_progress: ProgressCallback) -> Iterator[MotionChunk]:
        opts = {o.name: request.options.get(o.name, o.default) for o in self.options}
        features = torch.tensor(request.music_features, dtype=torch.float32, device=self.device)
        total = int(features.shape[0])
        window = self.cfg.window_frames
        overlap = min(int(round(float(opts["overlap_seconds"]) * self.fps)), window // 2)
        search = int(round(SEAM_SEARCH_SECONDS * self.fps))
        rng = torch.Generator(device=self.device).manual_seed(int(request.seed))
        made = torch.zeros((total, self.layout.num_channels), device=self.device)  # normalised
        committed, shown = 0, [0.0]
        while committed < total:
            start, end = next_window(committed, total, window, overlap)
            known, length = committed - start, end - start

            def on_step(step: int, steps: int, first: int = committed, last: int = end) -> None:
                if should_stop():
                    raise Cancelled()
                # a window may commit less than it makes: never report going backwards
                shown[0] = max(shown[0], (first + (last - first) * step / steps) / total)
                on_progress("sampling", shown[0])

            inpainting = None
            if known:
                mask = torch.zeros((1, length, self.layout.num_channels), device=self.device)
                mask[:, :known] = 1.0
                inpainting = Inpainting(known=made[start:end].unsqueeze(0) * mask, mask=mask)
            denoise = self.model.guided_denoiser(features[start:end].unsqueeze(0), float(opts["guidance"]))
            x0 = self.diffusion.ddim_sample(
                denoise, (1, length, self.layout.num_channels), int(opts["steps"]),
                generator=rng, device=self.device, eta=float(opts["eta"]), inpainting=inpainting,
                on_step=on_step)[0]
            if known:
                x0[known:] = blend_seam(made[start:committed], x0[known:])
            physical = self.normalizer.denormalize(x0)
            stop = start + commit_point(self._joint_speed(physical), known, length, total - start, search)
            made[committed:stop] = x0[known:stop - start]
            rotations, root, contacts = self.layout.to_quaternions(physical[known:stop - start])
            yield MotionChunk(start=committed, rotations=rotations, root_translation=root,
                              contacts=contacts)
            committed = stop
        on_progress("sampling", 1.0)
