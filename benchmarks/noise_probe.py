"""Where a network's jitter comes from: its sampling options, its training, or its data.

    python benchmarks/noise_probe.py --model edge --checkpoint CKPT [--options '[{}, {"eta": 0.0}]']
    python benchmarks/noise_probe.py --data DATA          # the training set's own measures, per part

With a model: dances to two synthesised songs that no model is judged on (house 118 BPM and
funk 92 BPM, 12 s, their own random seeds; not the held-out songs of dance_judge.py), one line
per option set: jerk per unit speed, mean joint speed, pose spread (docs/metrics.md). With
``--data``: the same measures and the wrist bend spread of every third clip of a
``backend.training.real_dataset`` build, per part (beat_synth, warp, graph, procedural).
docs/retraining.md and the model cards quote both.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PROBE_SONGS = ((118.0, "house", 777), (92.0, "funk", 778))
"""(BPM, style, seed) of the probe songs: training-like, never among the held-out ones."""


def _measures(positions: np.ndarray) -> tuple[float, float, float]:
    from backend.metrics.quality import jerk_per_unit_speed, mean_joint_speed_mps, pose_spread
    return jerk_per_unit_speed(positions), mean_joint_speed_mps(positions), pose_spread(positions)


def probe_model(model: str, checkpoint: Path, option_sets: list[dict]) -> None:
    from backend.metrics.basic import joint_positions
    from backend.metrics.dance_report import generate_clip
    from backend.models.registry import load_generator
    from backend.music.features import FEATURE_SAMPLE_RATE, analyse_music
    from backend.training.synth_music import synthesize

    generator = load_generator(model, device="cpu", checkpoint=checkpoint)
    songs = [np.array(analyse_music(np.asarray(synthesize(bpm, 12.0, np.random.default_rng(seed),
                                                          sample_rate=FEATURE_SAMPLE_RATE, style=style).samples,
                                               dtype=np.float32)).features) for bpm, style, seed in PROBE_SONGS]
    for options in option_sets:
        rows = [_measures(joint_positions(generate_clip(generator, f, 0, options)[0])) for f in songs]
        jerk, speed, spread = np.mean(rows, axis=0)
        print(f"{json.dumps(options)}: jerk/speed {jerk:.0f}, speed {speed:.2f} m/s, spread {spread:.3f} m")


def probe_data(data: Path) -> None:
    from backend.metrics.basic import joint_positions
    from backend.motion.clip import MotionClip
    from benchmarks.dance_judge import wrist_bend_spread

    parts: dict[str, list[tuple[float, ...]]] = collections.defaultdict(list)
    for path in sorted(data.glob("*.npz"))[::3]:
        name = path.stem
        part = ("beat_synth" if "beatsynth" in name else "warp" if "_warp_" in name
                else "graph" if name.startswith("graph") else "procedural")
        positions = joint_positions(MotionClip.load_npz(path))
        parts[part].append((*_measures(positions), wrist_bend_spread(positions)))
    for part, rows in parts.items():
        jerk, speed, spread, wrist = np.mean(rows, axis=0)
        print(f"{part} ({len(rows)} clips): jerk/speed {jerk:.0f}, speed {speed:.2f} m/s, spread {spread:.3f} m, "
              f"wrist bend sd {wrist:.1f} deg")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--options", default="[{}]", help="JSON list of option sets, one line each")
    parser.add_argument("--data", type=Path, help="a real_dataset build: measure its clips instead")
    args = parser.parse_args()
    if args.data is not None:
        probe_data(args.data)
    elif args.model and args.checkpoint:
        probe_model(args.model, args.checkpoint, json.loads(args.options))
    else:
        parser.error("give --model and --checkpoint, or --data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
