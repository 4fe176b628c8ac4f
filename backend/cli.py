"""``choreo``: the command line of the backend.

    choreo serve                      run a backend (the Blender add-on connects to it)
    choreo generate SONG --out X.npz  dance for a song, through a backend process
    choreo inpaint X.npz SONG --frames A:B --out Y.npz
                                      regenerate part of a dance in place (docs/editing.md)
    choreo train DATA --out RUN       train a generator on a dataset folder
    choreo demo                       the bundled model on the bundled song, end to end
    choreo eval DANCES --music SONGS  the field's metrics over a folder of dances (docs/metrics.md)
    choreo eval --model M --music SONGS --seeds 3
                                      generate with a model, then evaluate
    choreo bench                      measure speed; writes docs/benchmarks.md
    choreo addon build [--out DIR]    the Blender add-on as an installable extension zip
    choreo library build              the motion library the graph model dances from (cached)
    choreo body MODEL --out BODY.npz  the SMPL body mesh for the add-on (uses smplx)

``generate``, ``inpaint`` and ``demo`` talk to the backend over the same protocol as the add-on:
they start a private local backend process (or use ``--connect FILE`` to reach a
running one), so the command line exercises the product's real path.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from backend.examples import EXAMPLE_SONG

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="choreo", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    from backend.server.config import add_server_arguments
    serve = sub.add_parser("serve", help="run a backend server")
    add_server_arguments(serve)

    gen = sub.add_parser("generate", help="generate a dance for a song")
    gen.add_argument("audio", type=Path, help="wav, flac, ogg or mp3")
    gen.add_argument("--out", type=Path, required=True, help="output .npz")
    _add_generation_arguments(gen)

    inpaint = sub.add_parser("inpaint", help="regenerate part of a dance in place, keeping the rest")
    inpaint.add_argument("motion", type=Path, help="the dance to edit (.npz, e.g. from choreo generate)")
    inpaint.add_argument("audio", type=Path, help="its song (wav, flac, ogg or mp3)")
    inpaint.add_argument("--frames", required=True,
                         help="A:B, the frames to regenerate; A: regenerates to the end (continuation)")
    inpaint.add_argument("--joints", default=None,
                         help="upper | lower | all | SMPL joint names, comma-separated, plus 'root' to "
                              "regenerate the root trajectory too (default: everything)")
    inpaint.add_argument("--keep-keyframes", default=None,
                         help="F,F,...: frames inside A:B whose current pose is kept and hit exactly")
    inpaint.add_argument("--out", type=Path, required=True, help="output .npz (the whole edited dance)")
    inpaint.add_argument("--start", type=float, default=0.0,
                         help="where the motion's frame 0 sits in the song (s)")
    _add_backend_arguments(inpaint)

    demo = sub.add_parser("demo", help="generate for the bundled example song with the bundled model")
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    _add_generation_arguments(demo, default_seconds=None)

    train = sub.add_parser("train", help="train a generator on a dataset folder")
    _add_train_arguments(train)

    evaluate = sub.add_parser("eval", help="score dances with the field's metrics (docs/metrics.md)")
    _add_eval_arguments(evaluate)

    bench = sub.add_parser("bench", help="measure speed and write docs/benchmarks.md")
    bench.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")

    library = sub.add_parser("library", help="the motion library the graph model dances from")
    library_sub = library.add_subparsers(dest="library_command", required=True)
    from backend.library import sources as library_sources
    library_sources.add_arguments(library_sub.add_parser(
        "build", help="import the CMU dance capture, cut it at its beats, link it (cached)"))

    addon = sub.add_parser("addon", help="package the Blender add-on")
    addon_sub = addon.add_subparsers(dest="addon_command", required=True)
    from backend import addon_build
    addon_build.add_arguments(addon_sub.add_parser(
        "build", help="build the installable Blender extension zip (add-on, manifest, wheels)"))

    body = sub.add_parser("body", help="the SMPL body mesh for the Blender add-on, from your SMPL model file",
                          add_help=False)
    body.add_argument("body_args", nargs=argparse.REMAINDER, help="see: choreo body --help")

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["body"]:  # its own parser (backend.body), options and --help included
        from backend import body as body_module
        return body_module.main(argv[1:])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from backend.errors import InputError
    from protocol.errors import ChoreoError
    command = {"serve": _serve, "generate": _generate, "inpaint": _inpaint, "demo": _demo,
               "train": _train, "eval": _eval, "bench": _bench, "addon": _addon,
               "library": _library}[args.command]
    try:
        return command(args)
    except (ChoreoError, InputError) as err:  # the backend's answer (or our check), with its code
        _end_progress_line()
        print(f"choreo: error [{err.code}]: {err.message}", file=sys.stderr)
        return 1


# ---------------------------------------------------------------- library


def _library(args: argparse.Namespace) -> int:
    from backend.library import build
    return build.run(args)


# ---------------------------------------------------------------- serve


def _serve(args: argparse.Namespace) -> int:
    from backend.server.config import config_from_args
    from backend.server.server import serve
    return serve(config_from_args(args))


# ---------------------------------------------------------------- generate / demo


def _add_generation_arguments(p: argparse.ArgumentParser, default_seconds: float | None = None) -> None:
    p.add_argument("--start", type=float, default=0.0, help="where in the song to start (s)")
    p.add_argument("--seconds", type=float, default=default_seconds, help="how much to dance (s; default: to the end)")
    _add_backend_arguments(p)


def _add_backend_arguments(p: argparse.ArgumentParser) -> None:
    from backend.models.registry import DEFAULT_MODEL, MODELS
    p.add_argument("--model", default=None,
                   help=f"generator: {', '.join(MODELS)} (default: the backend's, {DEFAULT_MODEL}; docs/models.md)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="weights to load instead of the bundled ones (of the model the checkpoint holds, unless --model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="sampling steps (model option)")
    p.add_argument("--guidance", type=float, default=None, help="guidance weight (model option)")
    p.add_argument("--bvh", type=Path, default=None, help="also write a BVH file here")
    p.add_argument("--connect", type=Path, default=None,
                   help="connection file of a running backend (default: start a private one)")
    p.add_argument("--device", default="auto", help="device for a backend started here")


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuse what the backend would refuse, before one is started (that takes seconds)."""
    import math

    from backend.errors import InputError
    from backend.models.registry import MODELS
    from backend.server.validation import MAX_SEED

    def bad(message: str) -> InputError:
        return InputError("bad_option", message)

    seconds, start = getattr(args, "seconds", None), getattr(args, "start", 0.0)
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise bad(f"--seconds must be a positive number of seconds, got {seconds:g}")
    if start is not None and not (math.isfinite(start) and start >= 0):
        raise bad(f"--start must be 0 or more seconds, got {start:g}")
    if args.model is not None and args.model not in MODELS:
        raise bad(f"--model {args.model!r} is not a model; bundled: {', '.join(MODELS)}")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        raise bad(f"--seed must be in [0, {MAX_SEED}], got {args.seed}")
    if args.steps is not None and args.steps < 1:
        raise bad(f"--steps must be at least 1, got {args.steps}")
    if args.guidance is not None and not math.isfinite(args.guidance):
        raise bad(f"--guidance must be a finite number, got {args.guidance}")


def _generate(args: argparse.Namespace) -> int:
    npz, bvh, _ = _run_generation(args, args.audio, args.out, args.bvh)
    print(f"wrote {npz}" + (f" and {bvh}" if bvh else ""))
    return 0


def _demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    npz, bvh, result = _run_generation(args, EXAMPLE_SONG, out / "dance.npz", out / "dance.bvh")
    s = result.summary
    print(f"\nDanced {result.num_frames / result.fps:.1f} s to {EXAMPLE_SONG.name} "
          f"({s.get('tempo_bpm', 0):.0f} BPM) with model {s.get('model')}, seed {s.get('seed')}.")
    print(f"  motion (npz): {npz.resolve()}")
    print(f"  motion (BVH): {bvh.resolve()}")
    t = result.timings
    if t:
        print(f"  timings: first chunk {t.get('first_chunk_s', float('nan')):.2f} s, "
              f"total {t.get('total_s', float('nan')):.2f} s")
    return 0


def _run_generation(args: argparse.Namespace, audio: Path, out_npz: Path, out_bvh: Path | None):
    """Send ``audio`` to a backend, stream the dance back, write npz (and BVH)."""
    from tqdm import tqdm

    from backend.motion.bvh import write_bvh
    from backend.motion.clip import MotionClip

    if not Path(audio).is_file():
        raise SystemExit(f"choreo: no such audio file: {audio}")
    _check_arguments(args)
    options = {k: v for k, v in (("steps", args.steps), ("guidance", args.guidance)) if v is not None}
    with _backend(args) as client:
        bar = tqdm(total=100, desc="dancing", unit="%", dynamic_ncols=True, leave=False,
                   mininterval=0.25, bar_format="{desc}{percentage:3.0f}%|{bar}| {elapsed}")

        def on_progress(stage: str, fraction: float) -> None:
            bar.set_description(stage, refresh=False)
            bar.update(int(fraction * 100) - bar.n)

        result = client.generate(Path(audio).read_bytes(), model=args.model, seed=args.seed,
                                 start=args.start, seconds=args.seconds,
                                 options=options, on_progress=on_progress, timeout=120.0)
        bar.close()
    clip = MotionClip(rotations=result.rotations, root_translation=result.root_translation,
                      fps=result.fps, contacts=result.contacts, contact_names=result.contact_names)
    npz = clip.save_npz(out_npz)
    bvh = write_bvh(clip, out_bvh) if out_bvh is not None else None
    return npz, bvh, result


def _end_progress_line() -> None:
    """Close any progress bar still drawn, so what is printed next starts on its own line."""
    tqdm = sys.modules.get("tqdm")
    bars = list(getattr(getattr(tqdm, "tqdm", None), "_instances", None) or [])
    for bar in bars:
        bar.close()
    if bars:
        sys.stderr.write("\n")
        sys.stderr.flush()


def _load_motion(path: Path):
    """A dance npz as a MotionClip; a corrupt or wrong file is an ``InputError`` naming it."""
    import zipfile

    from backend.errors import InputError
    from backend.motion.clip import MotionClip
    try:
        return MotionClip.load_npz(path)
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        reason = str(exc) or type(exc).__name__
        raise InputError("bad_motion", f"{path}: not a Choreo dance npz ({reason})") from None


def _load_dances(ev, folder: Path):  # noqa: ANN001, ANN202
    """``ev.load_dances``, with a corrupt or wrong npz reported as an ``InputError`` naming the file."""
    import zipfile

    from backend.errors import InputError
    try:
        return ev.load_dances(folder)
    except InputError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        for path in sorted(Path(folder).glob("*.npz")):
            _load_motion(path)  # raises for the culprit
        raise InputError("bad_motion", f"{folder}: cannot read its dances ({exc})") from None


def _inpaint(args: argparse.Namespace) -> int:
    """Regenerate ``--frames`` (and ``--joints``) of a dance, keep the rest, write the whole dance."""
    from backend.conventions import FPS
    from backend.editing import masks
    from backend.motion.bvh import write_bvh
    from backend.motion.clip import MotionClip

    for path in (args.motion, args.audio):
        if not Path(path).is_file():
            raise SystemExit(f"choreo: no such file: {path}")
    _check_arguments(args)
    clip = _load_motion(Path(args.motion))
    if clip.fps != FPS:
        raise SystemExit(f"choreo: {args.motion} is at {clip.fps:g} fps; the backend edits {FPS} fps motion")
    total = clip.num_frames
    first, stop = masks.parse_frame_range(args.frames, total)
    joints, root = masks.parse_joints(args.joints) if args.joints else (masks.ALL_JOINTS, True)
    keep = masks.range_mask(total, first, stop, joints, root)
    if args.keep_keyframes:
        try:
            keyframes = [int(f) for f in args.keep_keyframes.split(",")]
        except ValueError:
            raise SystemExit(f"choreo: --keep-keyframes takes frame numbers, got {args.keep_keyframes!r}") from None
        outside = [f for f in keyframes if not first <= f < stop]
        if outside:
            raise masks.EditError("bad_range", f"keyframes {outside} are not inside the edited frames "
                                  f"{first}:{stop}")
        keep = masks.keep_frames(keep, keyframes)
    options = {k: v for k, v in (("steps", args.steps), ("guidance", args.guidance)) if v is not None}
    with _backend(args) as client:
        hello = client.hello()
        model = args.model or hello["default_model"]
        same_contacts = tuple(hello["contact_names"].get(model, ())) == tuple(clip.contact_names)
        result = client.inpaint(Path(args.audio).read_bytes(), rotations=clip.rotations,
                                root_translation=clip.root_translation, keep=keep,
                                contacts=clip.contacts if same_contacts else None, model=args.model,
                                seed=args.seed, start=args.start, options=options, timeout=120.0)
    edited = MotionClip(rotations=result.rotations, root_translation=result.root_translation,
                        fps=result.fps, contacts=result.contacts, contact_names=result.contact_names)
    npz = edited.save_npz(args.out)
    bvh = write_bvh(edited, args.bvh) if args.bvh is not None else None
    s = result.summary
    print(f"regenerated frames {s['edit_start']}:{s['edit_stop']} of {total} "
          f"in {result.timings.get('generation_s', float('nan')):.2f} s; wrote {npz}"
          + (f" and {bvh}" if bvh else ""))
    return 0


def _checkpoint_model(path: Path) -> str:
    """The model a checkpoint holds (``--checkpoint`` without ``--model``)."""
    from backend.models.checkpoint import CheckpointError, load_checkpoint

    try:
        model = load_checkpoint(path).get("model")
    except (OSError, CheckpointError) as exc:
        raise SystemExit(f"choreo: --checkpoint {path}: {exc}") from None
    if not model:
        raise SystemExit(f"choreo: {path} does not say which model it holds: pass --model")
    return str(model)


class _backend:
    """A client to ``--connect``'s backend, or to a private backend process we start and stop."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.process = None
        self.client = None

    def __enter__(self):
        from protocol.client import ChoreoClient
        if self.args.connect is not None:
            self.client = ChoreoClient.from_connection_file(self.args.connect)
            return self.client
        from backend.server.config import ServerConfig
        from backend.server.process import start_server_process
        model = self.args.model or (_checkpoint_model(self.args.checkpoint) if self.args.checkpoint else None)
        models = (model,) if model else ()
        checkpoints = {model: str(self.args.checkpoint)} if self.args.checkpoint else {}
        started = time.perf_counter()
        print("starting the backend ...", file=sys.stderr)
        self.process = start_server_process(ServerConfig(models=models, checkpoints=checkpoints,
                                                         device=self.args.device))
        print(f"backend ready in {time.perf_counter() - started:.1f} s at {self.process.endpoint}",
              file=sys.stderr)
        self.client = self.process.client()
        return self.client

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.process is not None:
            self.process.stop()


# ---------------------------------------------------------------- train


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    from backend.training.train import TrainConfig
    d = TrainConfig(data="", out="")
    p.add_argument("data", help="dataset folder: AIST++ layout, BVH + audio pairs, or npz + audio pairs")
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt, model.pt, loss_log.jsonl)")
    from backend.models.registry import trained_models
    p.add_argument("--model", default=d.model, choices=trained_models(),
                   help="which generator to train (docs/models.md)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--ema-decay", type=float, default=d.ema_decay)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--save-every", type=int, default=d.save_every)
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--device", default=d.device)
    p.add_argument("--resume", action="store_true", help="continue from RUN/checkpoint.pt")
    p.add_argument("--init", type=Path, default=None, metavar="CHECKPOINT",
                   help="fine-tune: start from this checkpoint's weights and network shape (e.g. "
                        "backend/checkpoints/edge_default.pt); the normaliser and styles are fitted anew")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--d-model", type=int, default=None)
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--heads", type=int, default=None)
    p.add_argument("--window-seconds", type=float, default=None, help="training window length")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="any other field of the model's config (repeatable), e.g. --config predict_frames=20")


def _config_value(text: str):
    """A --config value as JSON when it parses (numbers, true/false, lists), else the string."""
    import json
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _train(args: argparse.Namespace) -> int:
    import torch

    from backend.models.checkpoint import load_checkpoint, release_payload, save_checkpoint
    from backend.training.train import TrainConfig, train

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: v for k, v in (("d_model", args.d_model), ("num_layers", args.layers),
                                   ("num_heads", args.heads)) if v is not None}
    if args.window_seconds is not None:
        from backend.conventions import FPS
        overrides["window_frames"] = int(round(args.window_seconds * FPS))
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"choreo train: --config takes KEY=VALUE, got {item!r}")
        overrides[key.strip()] = _config_value(value.strip())
    cfg = TrainConfig(
        data=args.data, out=args.out, model=args.model, steps=args.steps, batch_size=args.batch_size,
        lr=args.lr, ema_decay=args.ema_decay, seed=args.seed, save_every=args.save_every,
        log_every=args.log_every, device=args.device, resume=args.resume,
        init=str(args.init) if args.init else None,
        progress=not args.no_progress, model_config=overrides)
    ckpt = train(cfg)
    import os
    if int(os.environ.get("RANK", "0")) == 0:
        release = save_checkpoint(Path(args.out) / "model.pt", release_payload(load_checkpoint(ckpt)))
        print(f"wrote {ckpt} (resumable) and {release} (sampling only)")
    return 0


# ---------------------------------------------------------------- addon


def _addon(args: argparse.Namespace) -> int:
    from backend import addon_build
    return {"build": addon_build.run}[args.addon_command](args)


# ---------------------------------------------------------------- eval


def _add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dances", type=Path, nargs="?", default=None,
                   help="folder of dances to score: our .npz files or an AIST++ folder "
                        "(leave out with --model: the dances are generated first)")
    p.add_argument("--music", type=Path, default=None,
                   help="the songs: one audio file, or a folder where <song>.* belongs to "
                        "<song>.npz and <song>_*.npz (needed for beat alignment, and for --model)")
    p.add_argument("--reference", type=Path, default=None,
                   help="reference dances for FID_k/FID_g (AIST++ folder or .npz folder)")
    p.add_argument("--out", type=Path, default=Path("out/eval"),
                   help="where eval.json and eval.md go (and motions/ with --model)")
    p.add_argument("--aist-quirk", action="store_true",
                   help="kinetic features with the AIST++ reference code's acceleration bug, "
                        "for numbers comparable with published tables (docs/metrics.md)")
    p.add_argument("--model", default=None, help="generate with this registered model first")
    p.add_argument("--checkpoint", type=Path, default=None, help="weights for --model instead of the bundled ones")
    p.add_argument("--seeds", type=int, default=3, help="seeds per song with --model (0, 1, ...)")
    p.add_argument("--seconds", type=float, default=30.0,
                   help="seconds of dance per song with --model (from the song's start)")
    p.add_argument("--device", default="auto", help="device for --model")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-sheets", action="store_true",
                   help="skip the contact sheets (OUT/sheets/<dance>.png: stick figures every half "
                        "second, joint speed and foot height, with the music's beats)")


def _eval(args: argparse.Namespace) -> int:
    from backend.metrics import evaluate as ev

    show = not args.quiet
    config: dict = {}
    if args.model is not None:
        if args.music is None:
            raise SystemExit("choreo eval: --model needs --music (a song or a folder of songs)")
        if args.dances is not None:
            raise SystemExit("choreo eval: give either a folder of dances or --model, not both")
        motions = args.out / "motions"
        ev.generate_dances(args.model, args.music, list(range(args.seeds)), motions,
                           seconds=args.seconds, device=args.device, checkpoint=args.checkpoint,
                           show_progress=show)
        config = {"model": args.model, "seeds": args.seeds, "seconds_per_dance": args.seconds}
        dances_dir = motions
    elif args.dances is None:
        raise SystemExit("choreo eval: give a folder of dances, or --model with --music")
    else:
        dances_dir = args.dances
    dances = _load_dances(ev, dances_dir)
    missing = ev.match_songs(dances, args.music)
    if missing:
        print(f"choreo eval: no song for {len(missing)} dance(s) ({', '.join(missing[:5])}"
              f"{', ...' if len(missing) > 5 else ''}); their beat scores are left out", file=sys.stderr)
    reference = None
    if args.reference is not None:
        reference = _load_dances(ev, args.reference)
        ev.match_songs(reference, args.music)
    result = ev.evaluate(dances, reference, quirk=args.aist_quirk, show_progress=show,
                         config={"dances": str(dances_dir), **config,
                                 **({"reference": str(args.reference)} if args.reference else {})},
                         sheets_dir=None if args.no_sheets else args.out / "sheets")
    json_path, md_path = ev.write_results(result, args.out)
    print(ev.markdown(result).split("\n## Per dance")[0].rstrip())
    print(f"\nwrote {json_path} and {md_path}"
          + (f", and {len(result.sheets)} contact sheet(s) in {args.out / 'sheets'}" if result.sheets else ""))
    return 0


# ---------------------------------------------------------------- bench


def _bench(args: argparse.Namespace) -> int:
    """Run ``benchmarks.bench_backend``. The benchmarks sit beside the package in a checkout
    and are not installed with it, so the checkout goes on the path first; the import is
    by name, so the import graph shows the one arrow, from here to the benchmark."""
    script = REPO_ROOT / "benchmarks" / "bench_backend.py"
    if not script.exists():
        raise SystemExit(f"choreo bench needs the repository checkout ({script} is missing)")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from benchmarks import bench_backend
    return int(bench_backend.run(out=args.out, quick=args.quick))


if __name__ == "__main__":
    sys.exit(main())
