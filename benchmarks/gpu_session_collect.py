"""The end of ``benchmarks/gpu_session.sh``: each run's model, gpu_session.json and session.log in OUTDIR.

A device call gives back at most 8 files of at most 16 MiB, no deeper than two folders, with
plain names; so each model is ``OUTDIR/<model>.pt``, every loss log goes into the one JSON
file, and every stage's output into one log. A training that the session's deadline
stopped has no ``model.pt``; its last saved ``checkpoint.pt`` is released instead (what
``choreo train`` does at the end), and the JSON says so.

    python benchmarks/gpu_session_collect.py --work WORK --out OUTDIR --models edge popdg fact dancenet --seconds S
    python benchmarks/gpu_session_collect.py --work WORK --out OUTDIR --log-only
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MAX_FILES = 8
MAX_FILE_BYTES = 16 * 2**20
LOG_TAIL_BYTES = 2 * 2**20
"""The most of one stage's output kept in session.log (its end)."""
TIMED_OUT = (124, 137)
"""``timeout``'s exit status when it stopped the command (TERM, then KILL)."""


def stages(work: Path) -> list[dict[str, Any]]:
    """Each stage's name, wall-clock seconds and exit status, in the order they finished."""
    rows = []
    for line in (work / "stages.tsv").read_text().splitlines():
        name, seconds, status = line.split("\t")
        rows.append({"name": name, "seconds": float(seconds), "exit": int(status)})
    return rows


def release_model(run: Path, status: int | None, dst: Path) -> str | None:
    """Put the run's sampling checkpoint at ``dst``; returns where it came from, None if nowhere."""
    if status == 0 and (run / "model.pt").is_file():
        shutil.copyfile(run / "model.pt", dst)
        return "end of training"
    if (run / "checkpoint.pt").is_file():
        from backend.models.checkpoint import load_checkpoint, release_payload, save_checkpoint
        save_checkpoint(dst, release_payload(load_checkpoint(run / "checkpoint.pt")))
        return "last saved checkpoint (training stopped early)"
    return None


def model_entry(work: Path, out: Path, model: str, status: int | None) -> dict[str, Any]:
    """What one training did: exit, steps, speed, losses, and the file that came back."""
    run = work / f"run_{model}"
    log_path = run / "loss_log.jsonl"
    losses = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()] if log_path.is_file() else []
    dst = out / f"{model}.pt"
    source = release_model(run, status, dst)
    last = losses[-1] if losses else {}
    seconds = last.get("seconds")
    return {"exit": status, "timed_out": status in TIMED_OUT, "file": dst.name if source else None,
            "from": source, "bytes": dst.stat().st_size if source else None,
            "steps": last.get("step"), "train_seconds": seconds,
            "steps_per_second": round(last["step"] / seconds, 2) if seconds else None,
            "final_losses": last or None, "loss_log": losses}


def dataset_summary(work: Path) -> dict[str, Any] | None:
    """The build's manifest without its per-clip rows."""
    path = work / "train" / "real_manifest.json"
    if not path.is_file():
        return None
    return {k: v for k, v in json.loads(path.read_text()).items() if k != "clips"}


def read_settings(work: Path) -> dict[str, str]:
    path = work / "settings.tsv"
    return dict(line.split("\t", 1) for line in path.read_text().splitlines()) if path.is_file() else {}


def collect(work: Path, out: Path, models: list[str], seconds: float) -> dict[str, Any]:
    """Write the models and ``gpu_session.json`` into ``out``; returns the JSON's content."""
    done = stages(work)
    status = {s["name"]: s["exit"] for s in done}
    smi = work / "logs" / "nvidia_smi.log"
    torch_info = work / "torch.json"
    bench = status.get("bench")
    report = {
        "seconds": seconds, "settings": read_settings(work), "stages": done,
        "nvidia_smi": smi.read_text() if smi.is_file() else None,
        "torch": json.loads(torch_info.read_text()) if torch_info.is_file() else None,
        "dataset": dataset_summary(work),
        "models": {m: model_entry(work, out, m, status.get(f"train_{m}")) for m in models},
        "bench": {"exit": bench, "timed_out": bench in TIMED_OUT,
                  "skipped": read_settings(work).get("BENCH") != "1" and bench is None,
                  "report": "benchmarks_gpu.md" if (out / "benchmarks_gpu.md").is_file() else None,
                  "plots": "bench_images.tar" if (out / "bench_images.tar").is_file() else None},
    }
    (out / "gpu_session.json").write_text(json.dumps(report, indent=1))
    return report


def write_log(work: Path, out: Path) -> Path:
    """session.log: the script's own lines, then every stage's output (its end, carriage returns as lines)."""
    logs = work / "logs"
    ordered = [logs / f"{s['name']}.log" for s in stages(work)]
    parts = []
    for path in [logs / "session_final.txt"] + ordered + sorted(set(logs.glob("*.log")) - set(ordered)):
        if path.is_file():
            text = path.read_bytes()[-LOG_TAIL_BYTES:].decode(errors="replace").replace("\r", "\n")
            parts.append(f"===== {path.name}\n{text}")
    dst = out / "session.log"
    dst.write_text("\n".join(parts))
    return dst


def check_out(out: Path) -> list[str]:
    """What the device call would not give back (too many files, too large, too deep)."""
    files = [p for p in out.rglob("*") if p.is_file()]
    problems = [f"{len(files)} files (at most {MAX_FILES})"] if len(files) > MAX_FILES else []
    problems += [f"{p.name}: {p.stat().st_size} bytes" for p in files if p.stat().st_size > MAX_FILE_BYTES]
    problems += [str(p.relative_to(out)) for p in files if len(p.relative_to(out).parts) > 3]
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--models", nargs="*", default=[])
    p.add_argument("--seconds", type=float, default=None, help="the session's wall clock so far")
    p.add_argument("--log-only", action="store_true", help="only write session.log")
    args = p.parse_args(argv)
    if not args.log_only:
        report = collect(args.work, args.out, args.models, args.seconds)
        for model, entry in report["models"].items():
            print(f"{model}: exit {entry['exit']}, {entry['steps']} steps in {entry['train_seconds']} s, "
                  f"{entry['file'] or 'no model'} ({entry['from']})")
    write_log(args.work, args.out)
    problems = check_out(args.out)
    for problem in problems:
        print(f"warning: the device call will not give back: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
