"""The model card's words for ``dancenet``: what it is and its limits (``benchmarks/dance_check.py``
writes them into docs/model_card_dancenet.md around the figures it measures)."""

from __future__ import annotations

from typing import Any

from backend.conventions import UNKNOWN_STYLE
from backend.models.dancenet import DanceNetConfig
from backend.models.dancenet_generator import CHUNK_FRAMES


def about(config: dict[str, Any]) -> str:
    """The model card's "What it is" paragraph, with the sizes of the checkpoint's config."""
    cfg = DanceNetConfig.from_dict(config)
    styles = [s for s in cfg.styles if s != UNKNOWN_STYLE]
    return (
        f"A DanceNet-style autoregressive model (Zhuang et al., ACM TOMM 2022; `backend/models/dancenet.py`): "
        f"a WaveNet stack of {len(cfg.dilations)} dilated causal convolutions (kernel {cfg.kernel_size}, "
        f"dilations {', '.join(map(str, cfg.dilations))}; receptive field {cfg.receptive_field} frames, "
        f"{cfg.receptive_field / cfg.fps:.1f} s) with gated tanh-sigmoid activations, residual width "
        f"{cfg.residual_channels} and skip width {cfg.skip_channels}, reading the previous frame of the "
        f"`{cfg.layout}` layout ({cfg.motion_channels} channels, plus the root's horizontal step; dropout "
        f"{cfg.motion_dropout} on the embedded frames in training, so that it listens to the music) plus "
        f"control signals of width {cfg.control_channels}: a style embedding over "
        f"{len(styles)} styles (plus \"unknown\" = any), a rhythm projection (onset envelope, onset peaks, "
        f"beats, and the beat phase from the beats so far) and a melody projection (chroma, MFCC). "
        f"It outputs a mixture of {cfg.mixtures} diagonal Gaussians over the next frame (foot contacts "
        f"included; means are offsets from the previous frame, except "
        f"{'the pelvis height and tilt' if cfg.outright == 'balance' else 'the pose'}, predicted outright), trained by mixture negative log-likelihood with teacher forcing on "
        f"{cfg.window_frames}-frame windows, input noise {cfg.input_noise} (normalised units) against "
        f"exposure bias, style dropout {cfg.style_drop_prob}, a joint-position term on the expected "
        f"frame (weight {cfg.kinematic_loss_weight}) and a foot-contact sliding term (weight "
        f"{cfg.contact_loss_weight}). It samples frame by frame from a standing pose, the convolutions "
        f"running incrementally on a cache of each layer's past inputs, and streams a chunk every "
        f"{CHUNK_FRAMES} frames; `temperature` scales the mixture's spread, and each drawn frame is "
        f"corrected before the network reads it back (`drift_leak`: a small pull towards the average "
        f"pose and the middle of the floor; `ground_feet`: the pelvis moved so that predicted contacts "
        f"touch the floor). Edits: continuation "
        f"(the kept frames before the span prime the receptive field) and range (the same, then a "
        f"position-and-velocity blend into the kept frames after it)."
    )


LIMITS: tuple[str, ...] = (
    "It dances the vocabulary of the procedural data (grooves, steps, arm moves, turns), not the range "
    "of real dancers; train on AIST++ or FineDance (`choreo train --model dancenet`) for that.",
    "Left alone it drifts: over 30 s the raw samples (`drift_leak` 0, `ground_feet` off) bow the spine "
    "forward, glide metres across the floor and float or sink the feet by centimetres. The defaults "
    "correct each drawn frame (a 5% leak towards the average pose and the middle of the floor, and the "
    "pelvis moved so that predicted contacts touch the floor); the price is poses smaller than the "
    "training dances' (joints spread about half as far from the pelvis).",
    "Longer training made it worse at keeping time: the same recipe at 3000 steps followed its own past "
    "more and the beat less (beat alignment barely above the half-beat-off baseline), so the bundled "
    "checkpoint stops at 1200 steps, chosen on songs other than the tests' example song.",
    "It reads the music up to the frame it makes, never ahead; where the next beat falls comes from the "
    "beats so far (the beat phase), so a change of tempo takes it a beat or two to follow.",
    "Style conditioning only knows the style labels of its training set; the procedural styles are "
    "synthesised, so \"latin\" means the procedural data's idea of latin.",
    "Editing is limited to continuation and range (whole frames): it cannot keep some joints while "
    "regenerating others, nor hit keyframes inside a span.",
    "Different songs give nearly the same dance: it follows the beat of each song, but its moves hardly "
    "depend on the rest of the music (style distance between songs no larger than between seeds).",
    "Its motion is jerkier than `edge`'s: the \"seam jump\" column is measured at chunk boundaries, which "
    "for this model are not seams (every frame is made the same way), so it shows the ordinary "
    "frame-to-frame changes of its speed: up to about 3x the median.",
    "Hands and fingers are not animated (the SMPL hand joints follow the wrists).",
)


MISSED: dict[str, str] = {
    "pose_spread": "Each drawn frame is pulled 5 % towards the average pose (`drift_leak`), without which it "
                   "drifts over 30 s (Limits); the procedural dances it learned are small too.",
    "jerk_per_speed": "Each frame is drawn from the mixture with its own noise, independent from one frame to the "
                      "next, and that noise is the jerk: on the real-motion retraining, at `temperature` 0 (no "
                      "noise) the jerk per unit speed is 276 but the dancer hardly moves (0.15 m/s), at 0.25 and "
                      "0.7 it is 2,384 and 2,490 while the speed grows with the noise (`benchmarks/noise_probe.py`"
                      "). The learned spread is far "
                      "wider than real motion's change from one frame to the next; narrowing it needs a longer "
                      "run with less input noise, not done.",
    "toe_skating": "The same frame-to-frame noise moves the feet it says are planted; grounding puts them on the "
                   "floor, not still.",
    "fid_k": "Retraining on real motion (7,500 steps from scratch, two CPU cores) reached FID_k 1,894 against "
             "this checkpoint's 145: it moved at 1.6 m/s, most of it the noise above (jerk 2,464), and it still "
             "hardly listened to the music (two songs 0.03 m apart, two seeds 0.10 m). Not bundled.",
}
"""Why it misses the issue-14 bars it misses (benchmarks/dance_check.py prints the figures)."""
