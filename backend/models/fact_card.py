"""The model card's words for ``fact``: what it is and its limits (``benchmarks/dance_check.py``
writes them into docs/model_card_fact.md around the figures it measures)."""

from __future__ import annotations

from typing import Any


def about(cfg: dict[str, Any]) -> str:
    """The model card's "What it is" paragraph, sizes from the checkpoint's config."""
    fps = cfg["fps"]
    return (
        "FACT, the full-attention cross-modal transformer of AI Choreographer (Li et al., ICCV 2021; "
        f"`backend/models/fact.py`): an audio transformer ({cfg['music_layers']} layers) over "
        f"{cfg['music_frames'] / fps:g} s of music and a motion transformer ({cfg['motion_layers']} layers) "
        f"over a {cfg['seed_frames'] / fps:g} s motion seed feed a cross-modal transformer "
        f"({cfg['num_layers']} layers) over their concatenation, all with full attention, width "
        f"{cfg['d_model']}, {cfg['num_heads']} heads; its first {cfg['predict_frames']} outputs are the next "
        f"{cfg['predict_frames']} frames (layout `{cfg['layout']}`, {cfg['motion_channels']} channels, "
        f"{fps} fps), predicted as changes from the seed's last frame. Trained with L2 on those frames "
        f"plus a velocity term (weight {cfg.get('velocity_weight', 0):g}); against freezing and drift the "
        f"seeds come from inside dances, with noise (per frame up to {cfg.get('seed_noise', 0):g}, one "
        f"offset up to {cfg.get('seed_offset', 0):g}, normalised units), and half of them end with "
        f"{cfg.get('rollout_frames', 0)} frames the network made itself. A dance is made autoregressively "
        "(`backend/models/fact_generator.py`): from 2 s of real dance drawn from the motion library by "
        "the request's seed (at the origin, facing -Y, on the floor), each network call keeps "
        "`step` of its predicted frames (default all 20; 1 as in the paper), grounds them (lowest sole "
        "on the floor, option `ground`), slides the seed and the music forward and calls again; frames "
        "stream as they are made, 15 to 20 per chunk. Edits continue the animator's own motion: a "
        "continuation is seeded with the 2 s before the span, a range edit likewise and then blended "
        "into the kept motion after it. The network samples nothing: the same music and seed motion give "
        "the same dance, so one seed repeats its dance and another seed, drawing other seed motion, "
        "gives another."
    )


LIMITS: tuple[str, ...] = (
    "A song and a starting motion have exactly one dance: the seed matters only through the seed "
    "motion it draws from the library (2 s of real dance). For another dance, change the seed, start "
    "from other motion (an edit's kept frames) or change `step`.",
    "It learned from 18 minutes of CMU dance capture (modern, free dance, salsa, breakdance) and "
    "procedural dance, not from the range of a dataset such as AIST++ or FineDance; train on one of "
    "them (`choreo train --model fact`) for that.",
    "It can lean, crouch and tip over: on the contact sheet's held-out song it bends further forward "
    "for 25 s and then ends upside down for a few seconds. The breakdance capture it learned from has "
    "floor moves and freezes, and a model that reads only its own past can slide into one and stay.",
    "It has seen only the music of its training set: synthesised styles and four rock songs.",
    "Autoregressive: each frame is predicted from its own earlier output, so errors add up; over "
    "long songs the motion can shrink, drift or grow repetitive (the keep-moving figure above "
    "measures it over 30 s only).",
    "Each network call starts from the last frame it was given, but not always at its speed: at "
    "the `step` boundaries (every 20 frames by default) the motion can jerk; the seam-jump column "
    "measures it at chunk starts, which are those boundaries.",
    "Grounding (on by default) keeps the lowest sole on the floor in every frame: right for "
    "dance that never leaves the floor, wrong for jumps; it is what holds the "
    "body's height over a long song (without it the default model rose 10 to 20 cm in 30 s).",
    "A new dance starts from a body standing still in the rest pose, which the network never saw "
    "in training; its first moments are its way into the dance.",
    "Edits are continuations or whole-frame ranges only: it cannot keep some joints while it "
    "changes others, nor hit keyframes inside a range. An edited motion is moved on the floor so "
    "that its seed ends at the origin, but not turned: motion facing far from the training data's "
    "-Y continues less well.",
    "Hands and fingers are not animated (the SMPL hand joints follow the wrists).",
)


MISSED: dict[str, str] = {
    "pose_spread": "Runs differ widely (mean 0.26 m, well above the bar): in the smallest the dancer settles into "
                   "one stance and only its arms move. Autoregressive: once its own recent frames are small, it "
                   "predicts small ones.",
    "mean_joint_speed": "The same runs: a dancer that settles moves slowly (0.23 m/s at worst, 0.45 m/s on average).",
    "jerk_per_speed": "Each call predicts 20 frames from the frames before them; its errors are not smooth, and "
                      "5,000 steps on two CPU cores (a fraction of the paper's training) do not train them out. "
                      "The procedural-only checkpoint was as jerky (1,122) while hardly moving.",
    "toe_skating": "Nothing holds a planted foot still: grounding keeps the lowest sole on the floor, and the "
                   "network's feet drift while they touch it. The procedural-only checkpoint slid less because it "
                   "barely stepped.",
    "freeze_ratio": "Runs that settle into a stance (above) slow down over the song (last 10 s at 0.40 of the "
                    "first 10 s at worst); most runs speed up instead (mean 1.42).",
}
"""Why it misses the issue-14 bars it misses (benchmarks/dance_check.py prints the figures)."""
