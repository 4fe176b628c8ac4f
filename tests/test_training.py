"""`choreo train`: a real (tiny) model trained on a real (tiny) dataset folder.

Covers the checkpoint contents (plain tensors, weights_only loading), resuming,
the loss log, DDP with two CPU processes on gloo, and sampling the result through
the generator interface with window-by-window streaming.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.cli import main as choreo
from backend.models.base import Cancelled, GenerationRequest
from backend.models.checkpoint import load_checkpoint
from backend.models.edge_generator import commit_point, plan_window
from backend.models.registry import load_generator
from backend.music.audio import decode_audio
from backend.music.features import FEATURE_SAMPLE_RATE, analyse_music

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = ["--d-model", "32", "--layers", "1", "--heads", "2", "--window-seconds", "2",
              "--batch-size", "4", "--no-progress", "--threads", "1"]
TINY = [*TINY_MODEL, "--log-every", "5"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from backend.training.build_dataset import build_procedural_dataset
    return build_procedural_dataset(tmp_path_factory.mktemp("data"), num_synth_songs=4,
                                    clip_seconds=6.0, real_music_dir=None, seed=3)


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    assert choreo(["train", str(dataset), "--out", str(run), "--steps", "20", "--save-every", "10", *TINY]) == 0
    return run


def test_checkpoint_holds_plain_tensors_and_loads_weights_only(trained):
    raw = torch.load(trained / "checkpoint.pt", weights_only=True)  # refuses pickled objects
    ckpt = load_checkpoint(trained / "checkpoint.pt")
    assert raw["step"] == ckpt["step"] == 20
    assert ckpt["config"]["d_model"] == 32 and ckpt["config"]["window_frames"] == 60
    assert set(ckpt["normalizer"]) == {"mean", "std"}
    assert all(isinstance(v, torch.Tensor) for v in ckpt["ema"].values())
    release = load_checkpoint(trained / "model.pt")
    assert "optimizer" not in release and "weights" not in release and "ema" in release
    log = [json.loads(line) for line in (trained / "loss_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [5, 10, 15, 20]
    assert all(np.isfinite(e["total"]) for e in log)


def test_training_resumes_where_it_stopped(trained, dataset, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("checkpoint.pt",):
        (run / name).write_bytes((trained / name).read_bytes())
    before = load_checkpoint(run / "checkpoint.pt")
    assert choreo(["train", str(dataset), "--out", str(run), "--steps", "25", "--resume", *TINY]) == 0
    after = load_checkpoint(run / "checkpoint.pt")
    assert after["step"] == 25
    assert after["loss_log"][:-1] == before["loss_log"]  # the history carried over, step 25 added
    assert not torch.equal(before["weights"]["motion_out.weight"], after["weights"]["motion_out.weight"])


def test_loss_goes_down_when_training_longer(dataset, tmp_path):
    run = tmp_path / "run"
    assert choreo(["train", str(dataset), "--out", str(run), "--steps", "120", *TINY_MODEL,
                   "--log-every", "20", "--lr", "1e-3"]) == 0
    log = [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines()]
    assert log[-1]["reconstruction"] < 0.7 * log[0]["reconstruction"]


def test_ddp_with_two_cpu_processes_on_gloo(dataset, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "backend.cli", "train", str(dataset), "--out", str(run), "--steps", "6",
           "--save-every", "6", *TINY]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt["step"] == 6
    assert ckpt["world_size"] == 2  # one DDP group of two processes, not two separate runs
    assert ckpt["train_args"]["batch_size"] == 4  # global batch, split over the 2 ranks


def test_windows_continue_where_the_dance_was_committed():
    for total in (10, 150, 151, 299, 900, 18000):
        committed, seen = 0, 0
        while committed < total:
            start, end = plan_window(committed, total, total, 150, 45)
            assert end - start == min(150, total) and end <= total
            assert committed == 0 or committed - start >= 45  # holds at least the overlap
            speed = torch.rand(end - start)
            stop = start + commit_point(speed, committed - start, end - start, total - start, 30)
            assert committed < stop <= end
            assert stop == end or stop >= end - 30
            committed, seen = stop, seen + 1
        assert committed == total and seen < total


def test_seams_are_placed_at_the_stillest_frame():
    speed = torch.ones(150)
    speed[130:132] = 0.01  # frame 131 is still on both sides
    assert commit_point(speed, 0, 150, 1000, 30) == 131
    assert commit_point(speed, 0, 150, 150, 30) == 150  # the last window commits everything


def _features(seconds: float, seed: int) -> np.ndarray:
    from backend.training.synth_music import synthesize
    song = synthesize(120.0, seconds, np.random.default_rng(seed))
    import io
    import soundfile as sf
    buf = io.BytesIO()
    sf.write(buf, song.samples, song.sample_rate, format="WAV")
    return analyse_music(decode_audio(buf.getvalue(), FEATURE_SAMPLE_RATE)).features


def test_generation_streams_windows_and_is_reproducible(trained):
    gen = load_generator("edge", device="cpu", checkpoint=trained / "model.pt")
    features = _features(7.0, seed=1)  # 210 frames = several 60-frame windows

    def run(seed: int):
        progress = []
        chunks = list(gen.generate(GenerationRequest(features, seed=seed, options={"steps": 4}),
                                   lambda: False, lambda s, f: progress.append(f)))
        return chunks, progress

    chunks, progress = run(5)
    assert len(chunks) > 2
    assert [c.start for c in chunks] == list(np.cumsum([0] + [c.num_frames for c in chunks[:-1]]))
    assert sum(c.num_frames for c in chunks) == features.shape[0]
    q = np.concatenate([c.rotations for c in chunks])
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-5)
    assert progress == sorted(progress) and progress[-1] == 1.0
    again, _ = run(5)
    other, _ = run(6)
    assert all(np.array_equal(a.rotations, b.rotations) for a, b in zip(chunks, again))
    assert not np.allclose(np.concatenate([c.root_translation for c in other]),
                           np.concatenate([c.root_translation for c in chunks]))


def test_generation_stops_within_one_step_when_asked(trained):
    gen = load_generator("edge", device="cpu", checkpoint=trained / "model.pt")
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(Cancelled):
        list(gen.generate(GenerationRequest(_features(7.0, seed=2), options={"steps": 10}),
                          should_stop, lambda s, f: None))
    assert len(calls) == 4
