"""EDGE-style generation of a dance of any length, streamed window by window.

The denoiser sees a fixed window (5 s by default). A song of any length is cut into
windows that overlap the previous one; the overlap is held to the frames already
made (diffusion inpainting at every DDIM step), so each window continues the last
one instead of starting over. Frames are final once streamed, so the first chunk
arrives after one window's sampling, not after the whole song.

Where a window hands over to the next is chosen, not fixed: each window commits its
frames up to the stillest frame of its last second (``SEAM_SEARCH_SECONDS``), and the
next window starts from there. Dances stop on the beat and move between beats, so
seams land where the body is nearly still, and ``join_runs`` joins position and
speed there; a seam never cuts through the middle of a fast move.

Editing runs the same loop (``edit``): the kept joints, root and frames of the
current motion are inpainted at every step along with the committed frames, only
the edited span is made, and its borders are joined the same way. So an edit costs
what generating its span costs, plus the context the model sees around it.

EDGE (Tseng et al. 2023) samples all windows of a long song together in one batch;
we go one window at a time because animators watch the dance arrive.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from backend.editing.joins import BRIDGE_FRAMES, join_runs
from backend.editing.masks import ABILITIES, ROOT_COLUMN, contacts_kept
from backend.models.base import (
    Cancelled, EditRequest, GenerationRequest, MotionChunk, OptionSpec, ProgressCallback, StopCheck, description,
)
from backend.models.loaded import LoadedGenerator
from backend.models.diffusion import GaussianDiffusion, Inpainting, guided_denoiser
from backend.models.edge import EdgeConfig
from backend.motion.kinematics import forward_kinematics
from backend.motion.normalizer import Normalizer
from backend.motion.rotations import rot6d_to_matrix
from backend.motion.skeleton import NUM_JOINTS

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("steps", "int", 20, 1, 200, description="DDIM sampling steps per window"),
    OptionSpec("guidance", "float", 2.0, 0.0, 10.0,
               description="Classifier-free guidance weight: 1 = plain conditional, higher follows the music harder"),
    OptionSpec("eta", "float", 1.0, 0.0, 1.0,
               description="DDIM noise: 0 = deterministic given the seed's starting noise, 1 = fresh noise each step (more variety)"),
    OptionSpec("overlap_seconds", "float", 1.5, 0.2, 4.0,
               description="How much of the previous window each new window is held to"),
    OptionSpec("context_seconds", "float", 1.0, 0.2, 4.0,
               description="Editing: how much kept motion on each side of a regenerated span the model sees"),
    OptionSpec("resample", "int", 0, 0, 4,
               description="Editing: repeat each sampling step this many more times for better harmony "
                           "with the kept motion (RePaint); each costs one more generation's time"),
)


SEAM_SEARCH_SECONDS = 1.0


def plan_window(committed: int, end: int, total: int, window: int, context: int) -> tuple[int, int]:
    """(start, stop) of the window that carries on from frame ``committed`` towards ``end``.

    It holds ``context`` frames before ``committed`` (for a dance: the overlap with
    the previous window; for an edit: kept motion to continue), is ``window`` frames
    long (never a stub: pulled back from the end of the motion), and when the frames
    still to make plus ``context`` after them need less than a window, the spare
    frames go half before, half after, so an edit sees kept motion on both sides.
    """
    if total <= window:
        return 0, total
    start = max(0, min(committed - context, total - window))
    spare = start + window - min(total, end + context)
    if spare > 0:
        start = max(0, start - spare // 2)
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


class EdgeGenerator(LoadedGenerator):
    """A loaded diffusion model behind the ``Generator`` interface: ``edge``, and ``popdg``.

    Nothing here is specific to one network: any ``diffusion.MusicDenoiser`` whose config
    has ``window_frames`` and ``diffusion_steps`` streams and edits the same way (POPDG's
    variance head is for training; DDIM does not read it).
    """

    family = "diffusion"
    options = OPTIONS

    def __init__(self, model: nn.Module, normalizer: Normalizer, name: str = "edge",
                 device: str | torch.device = "cpu", info: dict[str, Any] | None = None) -> None:
        super().__init__(model, normalizer, name, device, info)
        self.cfg: EdgeConfig = model.cfg  # or a PopdgConfig: the fields used here are shared
        self.diffusion = GaussianDiffusion(self.cfg.diffusion_steps)
        self.edit_bridge_frames = BRIDGE_FRAMES  # benchmarks/edit_check.py tries others

    def describe(self) -> dict[str, Any]:
        return description(self, ABILITIES, window_seconds=self.cfg.window_frames / self.fps, **self.info)

    def _joint_speed(self, motion: torch.Tensor) -> torch.Tensor:
        """(T,) mean joint speed into each frame (metres per frame; 0 for the first)."""
        root, rot6d, _ = self.layout.unpack(motion)
        positions, _ = forward_kinematics(rot6d_to_matrix(rot6d), root)
        step = torch.linalg.norm(positions[1:] - positions[:-1], dim=-1).mean(dim=-1)
        return torch.cat([step.new_zeros(1), step])

    @torch.inference_mode()
    def generate(self, request: GenerationRequest, should_stop: StopCheck,
                 on_progress: ProgressCallback) -> Iterator[MotionChunk]:
        """A new dance: the edit that keeps nothing, in trained-length windows."""
        opts = self._options(request.options)
        features = torch.tensor(request.music_features, dtype=torch.float32, device=self.device)
        total, channels = int(features.shape[0]), self.layout.num_channels
        overlap = min(int(round(float(opts["overlap_seconds"]) * self.fps)), self.cfg.window_frames // 2)
        nothing = torch.zeros((total, channels), dtype=torch.bool, device=self.device)
        yield from self._fill(features, torch.zeros((total, channels), device=self.device), nothing,
                              0, total, self.cfg.window_frames, overlap, request.seed, opts,
                              should_stop, on_progress, bridge=0)

    @torch.inference_mode()
    def edit(self, request: EditRequest, should_stop: StopCheck,
             on_progress: ProgressCallback) -> Iterator[MotionChunk]:
        """Regenerate what ``request.keep`` does not keep, inpainting at every DDIM step.

        The same sampler and step count as ``generate``. A span that fits in one
        window, with ``context_seconds`` of kept motion on each side, is one window
        (longer than the trained one when the span is: the attention is rotary, so
        the window length is free); longer spans go window by window like a dance.
        """
        opts = self._options(request.options)
        features = torch.tensor(request.music_features, dtype=torch.float32, device=self.device)
        total = int(features.shape[0])
        keep = np.asarray(request.keep, dtype=bool)
        first, stop = request.span
        contacts = request.contacts
        if contacts is None:
            contacts = self._contact_labels(request.rotations, request.root_translation)
        known = self.normalizer.normalize(self.layout.from_quaternions(
            request.rotations, request.root_translation, contacts).to(self.device))
        mask = self.layout.channel_mask(keep[:, :NUM_JOINTS], keep[:, ROOT_COLUMN],
                                        contacts_kept(keep)).to(self.device)
        known = torch.where(mask, known, torch.zeros_like(known))  # what is not kept is never read
        context = min(int(round(float(opts["context_seconds"]) * self.fps)), self.cfg.window_frames // 2)
        window = min(total, max(self.cfg.window_frames, min(stop - first, self.cfg.window_frames) + 2 * context))
        yield from self._fill(features, known, mask, first, stop, window, context, request.seed, opts,
                              should_stop, on_progress, bridge=self.edit_bridge_frames)

    def _fill(self, features: torch.Tensor, known: torch.Tensor, keep: torch.Tensor, first: int,
              stop: int, window: int, context: int, seed: int, opts: dict[str, Any],
              should_stop: StopCheck, on_progress: ProgressCallback,
              bridge: int) -> Iterator[MotionChunk]:
        """Make frames [first, stop) window by window around what ``keep`` holds.

        known: (T, C) normalised current motion (read where ``keep`` is True);
        keep: (T, C) bool. Each window inpaints the kept channels and the frames
        committed so far, joins its new frames onto them (``join_runs``), and commits up
        to its stillest late frame; the next window continues from there.

        bridge: ``join_runs``'s bridge length. A dance passes 0: its seams sit on the
        stillest frame, where a heading shift with a cosine fade joins well, and a bridge
        there measurably hurt (on the model card's ten 30 s runs: beat alignment 0.731 ->
        0.713, 5th-percentile sole height -0.003 -> -0.039 m, largest seam jump 0.73 -> 0.97).
        An edit's borders sit wherever the animator put them, so edits bridge.
        """
        total, channels = known.shape
        search = int(round(SEAM_SEARCH_SECONDS * self.fps))
        rng = torch.Generator(device=self.device).manual_seed(int(seed))
        made, fixed = known.clone(), keep.clone()
        committed, shown = first, [0.0]
        while committed < stop:
            start, end = plan_window(committed, stop, total, window, context)
            length = end - start

            def on_step(step: int, steps: int, begin: int = committed, last: int = min(end, stop)) -> None:
                if should_stop():
                    raise Cancelled()
                # a window may commit less than it makes: never report going backwards
                done = begin - first + (last - begin) * step / steps
                shown[0] = max(shown[0], done / (stop - first))
                on_progress("sampling", shown[0])

            held = fixed[start:end]
            inpainting = None
            if bool(held.any()):
                mask = held.float().unsqueeze(0)
                inpainting = Inpainting(known=made[start:end].unsqueeze(0) * mask, mask=mask)
            denoise = guided_denoiser(self.model, features[start:end].unsqueeze(0), float(opts["guidance"]))
            x0 = self.diffusion.ddim_sample(
                denoise, (1, length, channels), int(opts["steps"]), generator=rng, device=self.device,
                eta=float(opts["eta"]), inpainting=inpainting, on_step=on_step,
                resample=int(opts["resample"]))[0]
            x0 = join_runs(x0, held, bridge=bridge)
            physical = self.normalizer.denormalize(x0)
            if end >= min(total, stop + context):  # the last window: it saw what follows
                until = stop
            else:  # leave the next window room to join onto what follows the span
                tail = stop - context if stop < total else stop
                until = start + commit_point(self._joint_speed(physical), committed - start,
                                             max(min(end, tail) - start, committed - start + 2),
                                             total, search)
            made[committed:until] = x0[committed - start:until - start]
            fixed[committed:until] = True
            rotations, root, contacts = self.layout.to_quaternions(physical[committed - start:until - start])
            yield MotionChunk(start=committed, rotations=rotations, root_translation=root,
                              contacts=contacts)
            committed = until
        on_progress("sampling", 1.0)
