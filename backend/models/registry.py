"""Which generators exist, where their bundled weights are, and how to load them.

The server, the CLI and the benchmarks all load models through here, so adding a
generator means adding one entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from backend.models.base import Generator

CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
DEFAULT_MODEL = "edge"


class UnknownModelError(KeyError):
    code = "unknown_model"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    default_checkpoint: Path
    load: Callable[[Path, str, str], Generator]  # (checkpoint, device, name) -> Generator
    trained: bool = True
    """Whether ``choreo train`` makes its checkpoint (a network), or ``choreo library build``
    (the motion graph, whose "checkpoint" is the motion library)."""


def _load_edge(path: Path, device: str, name: str) -> Generator:
    from backend.models.edge_generator import EdgeGenerator
    return EdgeGenerator.from_checkpoint(path, device=device, name=name)


def _load_popdg(path: Path, device: str, name: str) -> Generator:
    from backend.models.popdg_generator import PopdgGenerator
    return PopdgGenerator.from_checkpoint(path, device=device, name=name)


def _load_fact(path: Path, device: str, name: str) -> Generator:
    from backend.models.fact_generator import FactGenerator
    return FactGenerator.from_checkpoint(path, device=device, name=name)


def _load_dancenet(path: Path, device: str, name: str) -> Generator:
    from backend.models.dancenet_generator import DanceNetGenerator
    return DanceNetGenerator.from_checkpoint(path, device=device, name=name)


def _load_graph(path: Path, device: str, name: str) -> Generator:
    from backend.models.graph_generator import GraphGenerator
    return GraphGenerator.from_checkpoint(path, device=device, name=name)


MODELS: dict[str, ModelEntry] = {
    "edge": ModelEntry("edge", "diffusion", CHECKPOINT_DIR / "edge_default.pt", _load_edge),
    "popdg": ModelEntry("popdg", "diffusion", CHECKPOINT_DIR / "popdg_default.pt", _load_popdg),
    "fact": ModelEntry("fact", "autoregressive", CHECKPOINT_DIR / "fact_default.pt", _load_fact),
    "dancenet": ModelEntry("dancenet", "autoregressive", CHECKPOINT_DIR / "dancenet_default.pt", _load_dancenet),
    "graph": ModelEntry("graph", "motion_graph", CHECKPOINT_DIR / "graph_library.npz", _load_graph, trained=False),
}


def available_models() -> list[str]:
    """Registered models whose bundled checkpoint is present (all of them in a release)."""
    return sorted(name for name, entry in MODELS.items() if entry.default_checkpoint.exists())


def resolve_device(device: str = "auto") -> str:
    """"auto" picks CUDA when a GPU is present, else the CPU."""
    if device == "auto":
        import torch  # here, not at the top: the CLI lists the models without loading torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def load_generator(name: str = DEFAULT_MODEL, device: str = "auto",
                   checkpoint: str | Path | None = None) -> Generator:
    if name not in MODELS:
        raise UnknownModelError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    entry = MODELS[name]
    path = Path(checkpoint) if checkpoint is not None else entry.default_checkpoint
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint for model {name!r} at {path}")
    return entry.load(path, resolve_device(device), name)
