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
    "It dances the vocabulary of the procedural data (grooves, steps, arm moves, turns), not the "
    "range of real dancers; train on AIST++ or FineDance (`choreo train --model fact`) for that.",
    "It has seen only the music of its training set: synthesised styles and four rock songs.",
    "Autoregressive: each frame is predicted from its own earlier output, so errors add up; over "
    "long songs the motion can shrink, drift or grow repetitive (the keep-moving figure above "
    "measures it over 30 s only).",
    "Each network call starts from the last frame it was given, but not always at its speed: at "
    "the `step` boundaries (every 20 frames by default) the motion can jerk; the seam-jump column "
    "measures it at chunk starts, which are those boundaries.",
    "Grounding (on by default) keeps the lowest sole on the floor in every frame: right for the "
    "procedural training data, which never leaves the floor, wrong for jumps; it is what holds the "
    "body's height over a long song (without it the default model rose 10 to 20 cm in 30 s).",
    "A new dance starts from a body standing still in the rest pose, which the network never saw "
    "in training; its first moments are its way into the dance.",
    "Less varied than the diffusion models: with no sampling noise, its dances to different songs "
    "share more of their moves (compare the style distances between songs on the model cards).",
    "Edits are continuations or whole-frame ranges only: it cannot keep some joints while it "
    "changes others, nor hit keyframes inside a range. An edited motion is moved on the floor so "
    "that its seed ends at the origin, but not turned: motion facing far from the training data's "
    "-Y continues less well.",
    "Hands and fingers are not animated (the SMPL hand joints follow the wrists).",
)
