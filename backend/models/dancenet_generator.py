"""DanceNet behind the ``Generator`` interface: frame-by-frame sampling, streamed in chunks.

A dance starts from the neutral standing pose (``standing_motion``) and grows one
frame at a time: the network reads the last frame and the music of the next one,
and a frame is drawn from its Gaussian mixture (``temperature`` scales the spread;
0 takes the most likely component's mean). The dilated convolutions run
incrementally (``DanceNetStream``), so a frame costs the same at second 1 and at
minute 5, and the frames are final as soon as they are drawn: a chunk goes out
every ``CHUNK_FRAMES`` frames.

Two corrections act on each drawn frame before the network reads it back, because
a next-frame model left alone drifts (measured on the bundled model: over 30 s the
spine bows forward and the dancer glides metres across the floor, the feet floating
a few centimetres up or sunk a few down):

* ``drift_leak`` takes a share of the distance from the average pose (and of the
  root's from the middle of the floor) back every frame; the network's own moves
  ride on top of it;
* ``ground_feet`` moves the pelvis so that a joint the frame says is in contact
  touches the floor, smoothly (``GROUNDING_RATE``), using the contacts the mixture
  predicts. Both are options, and 0 / off gives the network's raw samples.

Editing is what an autoregressive model can honour: *continuation* (regenerate
everything after a kept prefix) and *range* (regenerate a span with kept frames
after it). Both prime the receptive field with the kept frames before the span, so
the new motion continues the animator's own; a range then joins its last frames
onto the kept frames after it with ``blend_into_kept`` over ``blend_frames``. The
frames that join may change only at the end, so a range streams everything before
them as it is drawn and the join last.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import Tensor

from backend.conventions import UNKNOWN_STYLE
from backend.editing.joins import BLEND_FRAMES
from backend.models.autoregressive import DEFAULT_BLEND_FRAMES, blend_into_kept, standing_motion
from backend.models.base import (
    Cancelled, EditRequest, GenerationRequest, MotionChunk, OptionSpec, ProgressCallback, StopCheck, description,
)
from backend.models.loaded import LoadedGenerator
from backend.models.dancenet import HEIGHT, DanceNet, DanceNetConfig, DanceNetStream, outright_channels
from backend.motion.kinematics import forward_kinematics
from backend.motion.layout import ROOT
from backend.motion.normalizer import Normalizer
from backend.motion.rotations import rot6d_to_matrix
from backend.motion.skeleton import SOLE_BELOW_FOOT_JOINT

CHUNK_FRAMES = 20
"""Frames per streamed chunk (two thirds of a second at 30 fps)."""

DEFAULT_TEMPERATURE = 0.7

DEFAULT_DRIFT_LEAK = 0.05

CONTACT_THRESHOLD = 0.5
"""A drawn contact channel above this puts that joint on the floor (``ground_feet``)."""
GROUNDING_RATE = 0.5
"""Share of the gap between a grounded foot and the floor closed per frame: the floor is
reached in a few frames, so a landing settles instead of snapping."""


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside, as many as before after.

    Drawing a frame multiplies matrices of one row, where threads only add
    synchronisation, and on busy cores a lot of it: the bundled model drew 30 s of
    dance in about 100 s with two threads on the shared 2-core machine and in about
    1 s with one.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def dancenet_options(styles: tuple[str, ...]) -> tuple[OptionSpec, ...]:
    """The options ``hello`` advertises; the style choices are the checkpoint's vocabulary."""
    return (
        OptionSpec("temperature", "float", DEFAULT_TEMPERATURE, 0.0, 2.0,
                   description="Spread of the sampled motion: scales the mixture's standard deviations; "
                               "0 = always the most likely component's mean"),
        OptionSpec("style", "choice", UNKNOWN_STYLE, choices=styles,
                   description=f"Dance style to condition on; {UNKNOWN_STYLE!r} = any style"),
        OptionSpec("ground_feet", "bool", True,
                   description="Put the feet the model says are in contact on the floor, by moving the "
                               "pelvis up or down smoothly; off = the network's own pelvis height"),
        OptionSpec("drift_leak", "float", DEFAULT_DRIFT_LEAK, 0.0, 0.5,
                   description="Share of a drawn frame's distance from the average pose (and of the "
                               "root's from the middle of the floor) taken back each frame; 0 = none"),
        OptionSpec("blend_frames", "int", DEFAULT_BLEND_FRAMES, 0, 120,
                   description="Range edits: frames over which the new motion blends into the kept "
                               "motion after the range"),
    )


class DanceNetGenerator(LoadedGenerator):
    """A loaded DanceNet behind the ``Generator`` interface."""

    family = "autoregressive"

    def __init__(self, model: DanceNet, normalizer: Normalizer, name: str = "dancenet",
                 device: str | torch.device = "cpu", info: dict[str, Any] | None = None) -> None:
        super().__init__(model, normalizer, name, device, info)
        self.cfg: DanceNetConfig = model.cfg
        self.styles: tuple[str, ...] = tuple(self.cfg.styles)
        self.options = dancenet_options(self.styles)

    def describe(self) -> dict[str, Any]:
        return description(self, ("continuation", "range"),
                           receptive_field_seconds=self.cfg.receptive_field / self.fps, **self.info)

    @torch.inference_mode()
    def generate(self, request: GenerationRequest, should_stop: StopCheck,
                 on_progress: ProgressCallback) -> Iterator[MotionChunk]:
        """A new dance, from the standing pose, streamed as it is drawn."""
        features = torch.tensor(request.music_features, dtype=torch.float32, device=self.device)
        total = int(features.shape[0])
        nothing = torch.zeros((total, self.layout.num_channels), device=self.device)
        yield from self._fill(features, nothing, 0, total, request.seed, self._options(request.options),
                              should_stop, on_progress)

    @torch.inference_mode()
    def edit(self, request: EditRequest, should_stop: StopCheck,
             on_progress: ProgressCallback) -> Iterator[MotionChunk]:
        """Regenerate ``request.span`` after the kept frames before it (continuation, range)."""
        features = torch.tensor(request.music_features, dtype=torch.float32, device=self.device)
        contacts = request.contacts
        if contacts is None:
            contacts = self._contact_labels(request.rotations, request.root_translation)
        known = self.normalizer.normalize(self.layout.from_quaternions(
            request.rotations, request.root_translation, contacts).to(self.device))
        first, stop = request.span
        yield from self._fill(features, known, first, stop, request.seed, self._options(request.options),
                              should_stop, on_progress)

    def _style_index(self, style: str) -> int:
        if style not in self.styles:  # the server refuses it first; this is for direct callers
            raise ValueError(f"style must be one of {list(self.styles)}, got {style!r}")
        return self.styles.index(style)

    def _fill(self, features: Tensor, known: Tensor, first: int, stop: int, seed: int,
              opts: dict[str, Any], should_stop: StopCheck,
              on_progress: ProgressCallback) -> Iterator[MotionChunk]:
        """Draw frames [first, stop) after ``known``'s frames before ``first`` and stream them.

        known: (T, C) normalised motion; the frames before ``first`` prime the network
        (the standing pose when there are none), those from ``stop`` on are what a
        range blends into.
        """
        total = int(known.shape[0])
        temperature = float(opts["temperature"])
        blend = int(opts["blend_frames"])
        rng = torch.Generator(device=self.device).manual_seed(int(seed))
        style = torch.tensor([self._style_index(str(opts["style"]))], device=self.device)
        control = self.model.control_signals(features.unsqueeze(0), style)  # (1, T, K)
        stream = DanceNetStream(self.model)

        if first == 0:
            previous = self.normalizer.normalize(standing_motion(1, self.layout).to(self.device))[0]
        else:  # the kept frames the receptive field reaches, each predicting the next
            begin = max(0, first - self.cfg.receptive_field)
            if first - 1 > begin:
                stream.feed(known[begin:first - 1].unsqueeze(0), control[:, begin + 1:first])
            previous = known[first - 1]

        ground, lift = bool(opts["ground_feet"]), 0.0
        keep_share = 1.0 - float(opts["drift_leak"])
        leaky = self._leaky_channels()
        # A range's last frames are joined onto the kept motion after it once all are drawn;
        # everything before them is final as drawn (blend_into_kept leaves it alone).
        joined = stop < total
        final_until = stop - (max(blend, BLEND_FRAMES) + 2) if joined else stop
        made = known.clone()
        committed = frame = first
        with one_thread():
            while frame < stop:
                if should_stop():
                    raise Cancelled()
                mixture = stream.feed(previous.view(1, 1, -1), control[:, frame:frame + 1])
                previous = mixture.sample(temperature, rng).view(-1)
                previous = torch.where(leaky, previous * keep_share, previous)
                if ground:
                    previous, lift = self._grounded(previous, lift)
                made[frame] = previous
                frame += 1
                if frame - committed >= CHUNK_FRAMES and frame <= final_until:
                    yield self._chunk(made[committed:frame], committed)
                    committed = frame
                    on_progress("sampling", (frame - first) / (stop - first))
        if joined:
            made[first:] = blend_into_kept(made[first:], 0, stop - first, blend)
        while committed < stop:  # what is left, in chunks of at most CHUNK_FRAMES
            until = min(stop, committed + CHUNK_FRAMES)
            yield self._chunk(made[committed:until], committed)
            committed = until
        on_progress("sampling", 1.0)

    def _leaky_channels(self) -> Tensor:
        """(C,) True where ``drift_leak`` applies: the channels drawn as offsets from the
        previous frame (the joint rotations and the root's x, y), which integrate the
        model's small biases (a spine bowing a little further every beat, a dancer
        gliding forward) into a drift that nothing else pulls back. In normalised units
        the average pose and the middle of the floor are 0, so the leak scales them."""
        leaky = torch.ones(self.layout.num_channels, dtype=torch.bool, device=self.device)
        leaky[outright_channels(self.cfg)] = False
        leaky[self.layout.contacts] = False
        return leaky

    def _grounded(self, frame: Tensor, lift: float) -> tuple[Tensor, float]:
        """A drawn frame (C,) with the pelvis raised by ``lift`` metres, the lift first moved
        towards putting the lowest contact joint the frame says is down on the floor, and
        raised further if any joint would be below it.

        The network predicts the pelvis height from the pose, and small errors in the
        sampled legs leave the feet a few centimetres off the floor for as long as they
        last. The lift carries over frames (also through a jump, when nothing is down),
        and the grounded frame is what the network reads next, so its past stays on
        the floor too.
        """
        root, rot6d, contacts = self.layout.unpack(self.normalizer.denormalize(frame))
        root = root.clone()
        z = HEIGHT - ROOT.start  # the pelvis height within the root position
        root[z] += lift
        down = contacts > CONTACT_THRESHOLD
        positions, _ = forward_kinematics(rot6d_to_matrix(rot6d), root)
        step = 0.0
        if bool(down.any()):
            feet = positions[list(self.layout.contact_joints), 2][down]
            step = -GROUNDING_RATE * (float(feet.min()) - SOLE_BELOW_FOOT_JOINT)
        # Nothing goes through the floor, contact or not: a drawn leg reaching below it
        # lifts the body at once (issue 14 found toes 2.6 cm under the floor in 5 % of frames).
        step = max(step, SOLE_BELOW_FOOT_JOINT - float(positions[:, 2].min()))
        lift += step
        root[z] += step
        return self.normalizer.normalize(self.layout.pack(root, rot6d, contacts)), lift

    def _chunk(self, normalised: Tensor, start: int) -> MotionChunk:
        rotations, root, contacts = self.layout.to_quaternions(self.normalizer.denormalize(normalised))
        return MotionChunk(start=start, rotations=rotations, root_translation=root, contacts=contacts)
