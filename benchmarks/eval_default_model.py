"""Score the bundled default model with ``choreo eval``; writes docs/eval_default_model.md.

    python benchmarks/eval_default_model.py [--model NAME] [--seeds 3] [--seconds 30]

The songs are the four Sectoid songs in ../shared/data/music/sectoid; the reference set
is the CMU dance motion capture in ../shared/data/mocap/cmu, retargeted to SMPL by our
BVH importer. CMU's clips are real human dance but were not danced to these songs (no
music was recorded with them), so their beat scores are not computed and FID here says
"how far from real human dance motion", not "how far from dances to these songs". The
page is written by this script, so every figure on it comes from a run anyone can repeat.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SHARED = REPO.parent / "shared" / "data"
SONGS = SHARED / "music" / "sectoid"
MOCAP = SHARED / "mocap" / "cmu"
CMU_CREDIT = ("The data used in this project was obtained from mocap.cs.cmu.edu. "
              "The database was created with funding from NSF EIA-0196217.")


def prepare(work: Path) -> tuple[Path, Path]:
    """A songs folder (``<song>.ogg``) and a reference folder of npz dances, under ``work``."""
    from backend.motion.bvh import load_bvh_clip

    songs, reference = work / "songs", work / "cmu"
    songs.mkdir(parents=True)
    reference.mkdir()
    for folder in sorted(SONGS.iterdir()):
        if (folder / "mix.ogg").is_file():
            (songs / f"{folder.name}.ogg").symlink_to((folder / "mix.ogg").resolve())
    for bvh in sorted(MOCAP.glob("*.bvh")):
        load_bvh_clip(bvh).save_npz(reference / f"cmu_{bvh.stem}.npz")
    return songs, reference


READING: dict[str, list[str]] = {
    "graph": ["`graph` dances segments of this very capture (docs/motion_library.md), joined on the",
              "music's beats, so its FID against it flatters it, and no fairer one can be made here: its",
              "library holds all the capture there is, held-out trials included (docs/retraining.md).",
              "Its beat scores are the ones to read here."],
}
"""Model-specific words for the "Reading it" paragraph (docs/model_card_<model>.md otherwise)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    from backend.models.registry import DEFAULT_MODEL

    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "eval_default_model.md")
    args = parser.parse_args(argv)
    if not SONGS.is_dir() or not MOCAP.is_dir():
        raise SystemExit(f"needs the shared data beside the repository ({SHARED})")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        songs, reference = prepare(work)
        command = ["eval", "--model", args.model, "--music", str(songs), "--seeds", str(args.seeds),
                   "--seconds", f"{args.seconds:g}", "--reference", str(reference), "--device", "cpu",
                   "--out", str(work / "out")]
        t0 = time.perf_counter()
        # choreo as a command, in its own process: the benchmarks never import the command line
        status = subprocess.run([sys.executable, "-m", "backend.cli", *command], cwd=REPO).returncode
        took = time.perf_counter() - t0
        if status != 0:
            return status
        table = (work / "out" / "eval.md").read_text(encoding="utf-8")
        shutil.copy(work / "out" / "eval.json", args.out.with_suffix(".json"))
    shown = (f"choreo eval --model {args.model} --music SONGS --seeds {args.seeds} --seconds {args.seconds:g} "
             "--reference CMU --device cpu")
    body = table[table.index("\n| set |"):]  # eval.md's tables, under our own title and header
    page = "\n".join([
        f"# How the default model scores ({args.model})",
        "",
        f"Made by `python benchmarks/eval_default_model.py` ({took:.0f} s on 2 CPU cores), which runs",
        f"`{shown}` with SONGS = the four Sectoid songs (../shared/data/music/sectoid) and CMU = the",
        "CMU dance motion capture (../shared/data/mocap/cmu, 20 clips retargeted to SMPL by our BVH",
        "importer). The metrics are defined in [metrics.md](metrics.md).",
        "",
        "Reading it: the reference row is real human dance, but not to these songs (the CMU clips",
        "have no music), so it has no beat scores, and FID measures the distance from real dance",
        "motion in general.",
        *READING.get(args.model, [f"docs/model_card_{args.model}.md says what the model learned from."]),
        f"Motion capture credit: {CMU_CREDIT}",
        body,
    ])
    args.out.write_text(page, encoding="utf-8")
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
