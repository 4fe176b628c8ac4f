"""Recorded dances of every bundled model, to prove that a refactor changed no output.

Each model dances the first 4 s of the bundled example song with seed 7, and regenerates
frames 40-80 of that dance (the diffusion models and `graph` keeping the arms too, as a
body-part edit). The streamed arrays are stored in ``tests/data/same_dances.npz``.

A retrained checkpoint changes the dances on purpose: record them again with

    .venv/bin/python -m tests.same_dances --write

Torch's CPU kernels may round differently on another processor or torch version, so the
comparison is exact (bit for bit) where the recording's machine fingerprint matches, and
within ``OTHER_MACHINE_TOLERANCE`` elsewhere.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
from pathlib import Path

import numpy as np

from backend.examples import EXAMPLE_SONG as SONG

RECORDING = Path(__file__).resolve().parent / "data" / "same_dances.npz"
SEED = 7
FRAMES = 120  # 4 s at 30 fps
EDIT_SPAN = (40, 80)
ARM_JOINTS = (16, 17, 18, 19, 20, 21, 22, 23)  # shoulders to hands (SMPL indices)
OTHER_MACHINE_TOLERANCE = 1e-4


def machine_fingerprint() -> str:
    """What decides torch's rounding: its version and the CPU kernels it picked."""
    import torch
    return f"torch {torch.__version__} {torch.backends.cpu.get_cpu_capability()} {platform.machine()}"


def _music() -> np.ndarray:
    from backend.music.audio import decode_audio
    from backend.music.features import FEATURE_SAMPLE_RATE, analyse_music
    features = analyse_music(decode_audio(SONG, FEATURE_SAMPLE_RATE)).features
    return np.ascontiguousarray(features[:FRAMES], dtype=np.float32)


def _collect(chunks) -> dict[str, np.ndarray]:
    chunks = list(chunks)
    return {"start": np.array([c.start for c in chunks]),
            "rotations": np.concatenate([c.rotations for c in chunks]),
            "root_translation": np.concatenate([c.root_translation for c in chunks]),
            "contacts": np.concatenate([c.contacts for c in chunks])}


def dance_model(name: str, music: np.ndarray) -> dict[str, np.ndarray]:
    """One model's generated dance and its edit, as flat arrays keyed ``<part>/<array>``."""
    import torch

    from backend.editing.masks import range_mask
    from backend.models.base import EditRequest, GenerationRequest
    from backend.models.registry import load_generator

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a reduction split over threads may round differently
    try:
        generator = load_generator(name, device="cpu")
        never, quiet = (lambda: False), (lambda stage, fraction: None)
        made = _collect(generator.generate(GenerationRequest(music, seed=SEED), never, quiet))
        abilities = generator.describe()["editing"]["abilities"]
        joints = ARM_JOINTS if "joints" in abilities else tuple(range(24))
        keep = range_mask(FRAMES, *EDIT_SPAN, joints=joints, root="joints" not in abilities)
        edit = EditRequest(music, made["rotations"], made["root_translation"], made["contacts"], keep,
                           span=EDIT_SPAN, seed=SEED + 1)
        edited = _collect(generator.edit(edit, never, quiet))
    finally:
        torch.set_num_threads(threads)
    return {**{f"generate/{k}": v for k, v in made.items()}, **{f"edit/{k}": v for k, v in edited.items()}}


def record(models: list[str]) -> dict[str, np.ndarray]:
    music = _music()
    arrays: dict[str, np.ndarray] = {"machine": np.array(machine_fingerprint())}
    for name in models:
        for key, value in dance_model(name, music).items():
            arrays[f"{name}/{key}"] = value
    return arrays


def checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(arrays):
        if key != "machine":
            digest.update(key.encode() + np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    from backend.models.registry import available_models
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true", help=f"record the dances into {RECORDING}")
    args = p.parse_args(argv)
    arrays = record(available_models())
    if args.write:
        RECORDING.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(RECORDING, **arrays)
    print(f"{len(available_models())} models, checksum {checksum(arrays)} on {machine_fingerprint()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
