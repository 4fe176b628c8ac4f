"""Checkpoint files: plain tensors and plain Python values, never pickled objects.

A checkpoint is a dict saved with ``torch.save`` and loaded with
``torch.load(weights_only=True)``, which refuses anything but tensors, numbers,
strings, lists and dicts. That is why the config and the normaliser are stored
as a dict and as tensors rather than as objects.

Keys:
    format ("choreo-checkpoint"), format_version, model (registry name),
    config (dict), normalizer (dict of tensors), ema (state dict used for sampling),
    and for resuming training: weights, optimizer, step, train_args, loss_log.
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Callable, Self

import torch
from torch import nn

from backend.motion.normalizer import Normalizer

FORMAT = "choreo-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    code = "bad_checkpoint"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # corrupt file, or one that needs pickle to load
        raise CheckpointError(f"{path}: not a loadable Choreo checkpoint ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a Choreo checkpoint")
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {data.get('format_version')} is not supported")
    return data


class StoredConfig:
    """A model config dataclass as a checkpoint stores it: a plain dict, never an object.

    ``from_dict`` drops fields this version does not know and gives missing ones their
    defaults, so a checkpoint from a slightly older or newer version still loads.
    """

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]  # subclasses are dataclasses

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in known})


def load_for_sampling(path: str | Path, config_type: type[StoredConfig],
                      build: Callable[[Any], nn.Module]) -> tuple[nn.Module, Normalizer, dict[str, Any]]:
    """What a generator needs from a checkpoint: the network with its EMA weights (as
    float32, whatever precision they were stored in), the normaliser, and ``info`` for
    ``describe()`` (the file and how many steps it trained)."""
    data = load_checkpoint(path)
    model = build(config_type.from_dict(data["config"]))
    model.load_state_dict({k: v.float() for k, v in data["ema"].items()})
    info = {"checkpoint": str(path), "trained_steps": int(data.get("step", 0))}
    return model, Normalizer.from_state_dict(data["normalizer"]), info


def release_payload(checkpoint: dict[str, Any], half: bool = False) -> dict[str, Any]:
    """What sampling needs (config, normaliser, EMA weights) plus how it was trained
    (arguments, step, last logged losses): the bundled file, without optimizer state."""
    ema = checkpoint["ema"]
    if half:
        ema = {k: v.half() if v.is_floating_point() else v for k, v in ema.items()}
    keep = {k: checkpoint[k] for k in ("model", "config", "normalizer", "step", "train_args") if k in checkpoint}
    if checkpoint.get("loss_log"):
        keep["final_losses"] = checkpoint["loss_log"][-1]
    return {**keep, "ema": ema}
