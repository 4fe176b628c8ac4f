"""FACT behind the ``Generator`` interface: a dance made a few frames at a time, streamed as made.

Each network call (``backend.models.fact``) sees the 2 s of motion before frame
``f`` and the 4 s of music from ``f - 2 s``, and predicts the N frames from ``f``.
The ``step`` option keeps the first ``step`` of them (1 as in the paper, all 20 by
default, ``DEFAULT_STEP``), the seed slides forward by as much, and the network is
called again. Each call's frames are grounded (``roll``: the lowest sole on the floor)
before they become the next seed. Frames are final once made, so they stream in
chunks of ``CHUNK_FRAMES`` or more as they come.

Where the motion comes from:

* a new dance starts from 2 s of real dance drawn from the motion library (the
  ``graph`` model's ``backend/checkpoints/graph_library.npz``) by the request's seed
  (``library_seed``): the seed picks one of the library's upright stretches of dance,
  which is moved to the origin, turned to face -Y at its last frame and put on the
  floor, held within the range the network was trained on (``SEED_CLAMP_STD``), and
  is "danced" to the 2 s of music mirrored before the song's start. So
  different seeds start, and therefore continue, differently; without a library file
  the dance starts from ``standing_motion`` (the rest pose) as it always did;
* an edit continues the animator's own frames: the 2 s before the span are the seed
  (padded in front with the standing body, moved to where the motion starts on the
  floor, when the span starts earlier than that). A continuation is just that; a
  range edit is then joined onto the kept motion after it with ``blend_into_kept``.
  The network reads absolute root positions, as FACT does, so the edited motion is
  first moved on the floor to put the seed's end at the origin (``edit``).

Music before the song's start and after its end (the first seed's, and the 2 s the
last calls look ahead) is the song mirrored at its ends: it keeps the beat spacing
and the loudness, where silence would tell the network the music had stopped.

FACT itself samples nothing: the same music and seed motion give the same dance. As
the seed motion is drawn by the request's seed, the same seed repeats a dance and
another seed gives another (``describe()["deterministic"]`` is False, as for the
models that sample).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor

from backend.library.library import FOOT_CONTACT_NAMES, MotionLibrary, heading, load_library, turn_xy, yaw_quaternion
from backend.library.sources import DEFAULT_LIBRARY, STYLES as LIBRARY_STYLES
from backend.models.autoregressive import DEFAULT_BLEND_FRAMES, blend_into_kept, standing_motion
from backend.models.base import (
    Cancelled, EditRequest, GenerationRequest, MotionChunk, OptionSpec, ProgressCallback, StopCheck, description,
)
from backend.models.loaded import LoadedGenerator
from backend.models.fact import Fact, FactConfig
from backend.motion.kinematics import forward_kinematics
from backend.motion.layout import ROOT
from backend.motion.normalizer import Normalizer
from backend.motion.rotations import np_ as rot_np, rot6d_to_matrix
from backend.motion.skeleton import PELVIS_REST_HEIGHT, SOLE_BELOW_FOOT_JOINT

GROUND = slice(ROOT.start, ROOT.start + 2)
"""The root's x and y: its position on the floor (Z-up, backend/conventions.py)."""

UP = ROOT.start + 2
"""The root's height channel (Z-up)."""

CHUNK_FRAMES = 15
"""Frames per streamed chunk (half a second): the first arrives after one or two network calls."""

DEFAULT_STEP = 20
"""Predicted frames kept per network call by default: all of FACT's 20. On the model card's five
songs (30 s, bundled checkpoint, grounded) keeping 20 against 10 gave the same beat alignment (0.93
against 0.92), steadier speed (both keep moving; 10 speeds up more over the song, by up to 2.3x
on the slow ballad against 1.4x) and smaller joins (largest joint-speed jump at a call boundary 5.5x the median against 8.4x,
mean over songs), with half the network calls."""


SEED_LIBRARY = DEFAULT_LIBRARY
"""Where new dances draw their seed motion from (the ``graph`` model's library)."""

SEED_STYLES = ("modern", "free", "salsa")
"""Library styles a seed may come from: standing dance. Breakdance's floor work (the body
low, on its hands) is no start for a model whose training dances stand."""

SEED_CLAMP_STD = 3.0
"""A new dance's seed, normalised, is held within +-3 standard deviations of the training data
per channel. The network only knows the poses it was trained on: the procedural-only checkpoint's
data spans a narrow range, and real dance lies up to 150 sd outside it in some channels (arms
raised, a ballet leg), which sent its dances into near stillness (30 s to the example song, seed 0:
0.006 m/frame in the first 10 s, 0.0025 in the last; clamped: 0.013 and 0.013). For a model
trained on real capture the seeds lie inside and the clamp leaves them almost untouched."""

SEED_MIN_PELVIS = 0.8
"""A seed's pelvis stays at least this share of its rest height (0.8 x 0.93 m) throughout."""


def pad_music(features: Tensor, before: int, after: int) -> Tensor:
    """(before + T + after, D): the song's features mirrored at both ends (see the module docstring)."""
    x = features.detach().cpu().numpy()
    padded = np.pad(x, ((before, after), (0, 0)), mode="reflect" if x.shape[0] > 1 else "edge")
    return torch.from_numpy(padded).to(features.device)


class FactGenerator(LoadedGenerator):
    """A loaded FACT model behind the ``Generator`` interface."""

    family = "autoregressive"

    def __init__(self, model: Fact, normalizer: Normalizer, name: str = "fact",
                 device: str | torch.device = "cpu", info: dict[str, Any] | None = None) -> None:
        super().__init__(model, normalizer, name, device, info)
        self.cfg: FactConfig = model.cfg
        self.chunk_frames = CHUNK_FRAMES  # a test streams one whole chunk to compare
        self.seed_library_path: Path | None = SEED_LIBRARY
        self._seed_source: tuple[MotionLibrary, np.ndarray] | None = None
        self.options: tuple[OptionSpec, ...] = (
            OptionSpec("step", "int", min(DEFAULT_STEP, self.cfg.predict_frames), 1, self.cfg.predict_frames,
                       description="Predicted frames kept per network call: 1 as in the paper (slowest), "
                                   f"up to all {self.cfg.predict_frames} (fastest)"),
            OptionSpec("ground", "bool", True,
                       description="Keep the lowest sole on the floor in every made frame (the training "
                                   "dances never leave it); off for a model trained on jumps"),
            OptionSpec("blend_frames", "int", DEFAULT_BLEND_FRAMES, 1, 60,
                       description="Editing: frames over which a regenerated range joins the kept motion "
                                   "around it"),
        )
        self._seed_candidates()  # load the seed library now, not in the first request's time

    def describe(self) -> dict[str, Any]:
        return description(self, ("continuation", "range"),
                           deterministic=False,  # the seed draws the seed motion (``library_seed``)
                           seed_seconds=self.cfg.seed_frames / self.fps,
                           predict_frames=self.cfg.predict_frames, **self.info)

    # -- the Generator interface ---------------------------------------------------------

    @torch.inference_mode()
    def generate(self, request: GenerationRequest, should_stop: StopCheck,
                 on_progress: ProgressCallback) -> Iterator[MotionChunk]:
        """A new dance: every frame made, from seed motion drawn from the library by the request's seed."""
        opts = self._options(request.options)
        features = torch.tensor(np.asarray(request.music_features), dtype=torch.float32, device=self.device)
        total = int(features.shape[0])
        motion = torch.zeros((total, self.layout.num_channels), device=self.device)
        floor = 0.0 if opts["ground"] else None
        yield from self._make(features, motion, 0, total, opts, should_stop, on_progress, known=False, floor=floor,
                              seed_motion=self.library_seed(int(request.seed), clamp=True))

    @torch.inference_mode()
    def edit(self, request: EditRequest, should_stop: StopCheck,
             on_progress: ProgressCallback) -> Iterator[MotionChunk]:
        """Remake ``request.span`` whole frames, continuing the frames before it.

        The server only sends masks of the abilities we list: the span is regenerated
        whole and every frame outside it is kept, so ``keep`` says nothing more. The
        motion is moved on the floor so that the frame before the span stands at the
        origin, where every training dance and every new dance starts (the network sees
        absolute positions, as FACT does, and keeps a dance near where it began), and
        moved back as it streams.
        """
        opts = self._options(request.options)
        features = torch.tensor(np.asarray(request.music_features), dtype=torch.float32, device=self.device)
        contacts = request.contacts
        if contacts is None:
            contacts = self._contact_labels(request.rotations, request.root_translation)
        first, stop = request.span
        raw = self.layout.from_quaternions(request.rotations, request.root_translation, contacts).to(self.device)
        shift = torch.zeros(raw.shape[-1], device=self.device)
        shift[GROUND] = raw[max(first - 1, 0), GROUND]  # where the seed ends stands where dances start
        motion = self.normalizer.normalize(raw - shift)
        floor = None
        if opts["ground"]:  # the floor the kept motion before the span stands on (0 for the rest pose)
            floor = float(self._sole_height(raw[max(0, first - self.cfg.seed_frames):first]).median()) if first else 0.0
        yield from self._make(features, motion, first, stop, opts, should_stop, on_progress,
                              known=True, shift=shift, floor=floor)

    # -- making frames -------------------------------------------------------------------

    def roll(self, features: Tensor, motion: Tensor, first: int, stop: int, step: int,
             should_stop: StopCheck = lambda: False, known: bool = True,
             floor: float | None = 0.0, seed_motion: Tensor | None = None) -> Iterator[int]:
        """Make frames [first, stop) of ``motion`` (T, C normalised, written in place), FACT's loop.

        Yields how many frames are made (the next frame to make) after each network
        call. The seed of the first call is the 2 s before ``first`` (``_seed_pad``
        in front where the motion has fewer); each call keeps ``step`` frames.
        ``known``: whether ``motion`` holds real frames (an edit) or nothing yet (a new dance).

        ``floor``: the height every made frame's lowest sole is put at (None: as made).
        The network reads root height in units of the training data's spread (2 cm), so
        a bias of a few millimetres per call adds up: without this the default model's
        body rose 10 cm (step 20) to 20 cm (step 10) over a 30 s song and its feet left
        the floor. Grounding each
        call's frames before they become the next seed keeps the network's input where
        its training data was; the training dances never leave the floor.

        ``seed_motion``: (S, C) normalised frames before frame 0 for a new dance
        (``library_seed``); None stands the body still there (``_seed_pad``).
        """
        s, m = self.cfg.seed_frames, self.cfg.music_frames
        pad = seed_motion.to(self.device) if seed_motion is not None and not known else \
            self._seed_pad(motion[0] if known else None)
        work = torch.cat([pad, motion])  # frame f of the motion is row f + s
        music = pad_music(features, s, m)  # the music window of the seed before frame f starts at row f
        made = first
        while made < stop:
            if should_stop():
                raise Cancelled()
            predicted = self.model(work[None, made:made + s], music[None, made:made + m])[0]
            n = min(step, stop - made)
            frames = predicted[:n] if floor is None else self._grounded(predicted[:n], floor)
            work[s + made:s + made + n] = frames
            motion[made:made + n] = frames
            made += n
            yield made

    def _make(self, features: Tensor, motion: Tensor, first: int, stop: int, opts: dict[str, Any],
              should_stop: StopCheck, on_progress: ProgressCallback, known: bool,
              shift: Tensor | None = None, floor: float | None = 0.0,
              seed_motion: Tensor | None = None) -> Iterator[MotionChunk]:
        """Roll frames [first, stop) and stream them as they become final (``_settled``)."""
        total = int(motion.shape[0])
        blend = int(opts["blend_frames"])
        streamable, head, tail = self._join_plan(first, stop, total, blend)
        sent = first
        for made in self.roll(features, motion, first, stop, int(opts["step"]), should_stop, known, floor,
                              seed_motion):
            on_progress("sampling", (made - first) / (stop - first))
            ready = self._settled(made, first, stop, streamable, head, tail)
            if ready - sent < self.chunk_frames and made < stop:
                continue
            if made == stop:  # complete: the whole join
                lo, hi = max(0, first - 2), min(total, stop + 2)
                frames = blend_into_kept(motion[lo:hi], first - lo, stop - lo, blend)[sent - lo:stop - lo]
            elif sent < first + head:  # the join at the start is known once its bridge's far end is made
                lo = max(0, first - 2)
                frames = blend_into_kept(motion[lo:made], first - lo, made - lo, blend)[sent - lo:ready - lo]
            else:  # the middle of the run: the joins leave it as made
                frames = motion[sent:ready]
            yield self._chunk(sent, frames, shift)
            sent = ready if made < stop else stop
        on_progress("sampling", 1.0)

    @staticmethod
    def _join_plan(first: int, stop: int, total: int, blend: int) -> tuple[bool, int, int]:
        """How ``blend_into_kept`` will change the run [first, stop): (streamable, head, tail).

        Read off ``backend.editing.joins.join_runs``: a run long enough for its bridges
        gets one of ``blend`` frames at each side with kept frames (the head's ends on
        the model's frames ``blend`` and ``blend + 1`` into the run, the tail's on the
        kept frames after it), and the frames between are left as the model made them.
        A shorter run is one curve that depends on both its ends: it is sent whole at
        the end (it is at most about a second). A new dance has nothing to join.
        """
        left, right = first > 0, stop < total
        n = stop - first
        if not left and not right:
            return True, 0, 0
        if left and right:
            return (n > 2 * blend + 1, blend, blend)
        if left:
            return (n > blend + 1, blend, 0)
        return (n > blend + 1, 0, blend)

    @staticmethod
    def _settled(made: int, first: int, stop: int, streamable: bool, head: int, tail: int) -> int:
        """Frames [first, settled) that no later frame changes, once frames up to ``made`` exist."""
        if made >= stop:
            return stop
        if not streamable or (head and made < first + head + 2):
            return first
        return min(made, stop - tail)

    # -- helpers -------------------------------------------------------------------------

    def _seed_pad(self, frame0: Tensor | None) -> Tensor:
        """(S, C) normalised standing body before frame 0, at the origin or where ``frame0`` is on the floor.

        A new dance (no ``frame0``) stands at the origin; an edit near the start of a
        dance that has moved away pads its seed where the dance is, not metres away.
        """
        pad = self.normalizer.normalize(standing_motion(self.cfg.seed_frames, self.layout).to(self.device))
        if frame0 is not None:
            pad[:, GROUND] = frame0[GROUND]
        return pad

    def _seed_candidates(self) -> tuple[MotionLibrary, np.ndarray] | None:
        """The library and the last frames of every stretch a seed may be (loaded once), or None."""
        if self._seed_source is None:
            path = self.seed_library_path
            if path is None or not Path(path).is_file():
                return None
            lib = load_library(path)
            s = self.cfg.seed_frames
            clip_first = lib.clip_starts[lib.seg_clip]
            last = lib.seg_stop  # seeds end on a motion beat
            ok = (last - s + 1 >= clip_first) & np.isin(lib.clip_styles[lib.seg_clip],
                                                         [LIBRARY_STYLES.index(x) for x in SEED_STYLES])
            from numpy.lib.stride_tricks import sliding_window_view
            height = np.concatenate([np.full(s - 1, np.inf), lib.root[:, 2]])
            low = sliding_window_view(height, s).min(axis=1)[last]  # lowest pelvis over the s frames to ``last``
            ok &= low >= SEED_MIN_PELVIS * PELVIS_REST_HEIGHT
            if not ok.any():
                return None
            self._seed_source = (lib, np.unique(last[ok]))
        return self._seed_source

    def seed_frames(self, seed: int) -> tuple[MotionLibrary, int, int] | None:
        """(library, first, stop): the library frames ``seed`` draws as seed motion, or None."""
        source = self._seed_candidates()
        if source is None:
            return None
        lib, ends = source
        end = int(ends[np.random.default_rng([int(seed) % 2**63, 0x5EED]).integers(len(ends))])
        return lib, end - self.cfg.seed_frames + 1, end + 1

    def library_seed(self, seed: int, clamp: bool = False) -> Tensor | None:
        """(S, C) normalised seed motion for a new dance, drawn from the library by ``seed``.

        The same seed always draws the same stretch. It is moved so that its last frame's
        pelvis is over the origin facing -Y (where every training dance starts and an edit's
        seed is put), converted to this model's layout (``from_quaternions``; contact labels
        from the library when the layout's contact joints are the library's, else by the
        training data's rule) and put on the floor as the generator keeps its frames
        (median lowest sole at 0), then normalised with the model's normaliser, and with
        ``clamp`` held within +-``SEED_CLAMP_STD`` (what a new dance uses).
        None without a library (the standing pad is used).
        """
        frames = self.seed_frames(seed)
        if frames is None:
            return None
        lib, a, b = frames
        q = lib.rotations[a:b].astype(np.float64)
        root = lib.root[a:b].astype(np.float64)
        yaw = float(heading(q[-1, 0]))
        turn = np.broadcast_to(yaw_quaternion(-yaw), q[:, 0].shape)
        q[:, 0] = rot_np.quaternion_multiply(turn, q[:, 0])
        root[:, :2] -= root[-1, :2]
        root = turn_xy(root, -yaw)
        if tuple(self.layout.contact_names) == FOOT_CONTACT_NAMES:
            contacts = lib.contacts[a:b]
        else:
            contacts = self._contact_labels(q.astype(np.float32), root.astype(np.float32))
        raw = self.layout.from_quaternions(q.astype(np.float32), root.astype(np.float32), contacts).to(self.device)
        raw[:, UP] -= self._sole_height(raw).median()
        seed_motion = self.normalizer.normalize(raw)
        return seed_motion.clamp(-SEED_CLAMP_STD, SEED_CLAMP_STD) if clamp else seed_motion

    def _sole_height(self, raw: Tensor) -> Tensor:
        """(T,) height of each frame's lowest sole (``backend.metrics.basic.sole_height``), raw channels."""
        root, rot6d, _ = self.layout.unpack(raw)
        positions, _ = forward_kinematics(rot6d_to_matrix(rot6d), root)
        return positions[..., 2].min(dim=-1).values - SOLE_BELOW_FOOT_JOINT

    def _grounded(self, frames: Tensor, floor: float) -> Tensor:
        """Normalised frames moved up or down so that each one's lowest sole is at ``floor``."""
        raw = self.normalizer.denormalize(frames)
        raw[:, UP] = raw[:, UP] - (self._sole_height(raw) - floor)
        return self.normalizer.normalize(raw)

    def _chunk(self, start: int, frames: Tensor, shift: Tensor | None) -> MotionChunk:
        """Normalised frames -> a chunk, moved back by ``shift`` (raw channels) where the motion was moved."""
        physical = self.normalizer.denormalize(frames)
        if shift is not None:
            physical = physical + shift
        rotations, root, contacts = self.layout.to_quaternions(physical)
        return MotionChunk(start=start, rotations=rotations, root_translation=root, contacts=contacts)
