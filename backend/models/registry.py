"""Every generator, one entry each: the one place that says what a model is and where its parts are.

The server, the CLI, training, the benchmarks and the model cards all find a model
through its entry, so adding a generator is one entry here plus its own files
(docs/models.md, "Adding a generator"). The parts are named by import path and
imported only when used: listing the models needs no torch, and inference never
imports the training package (only ``choreo train`` resolves ``recipe``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from backend.models.base import Generator

CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
DEFAULT_MODEL = "graph"
"""What a request naming no model gets: chosen by measurement (docs/models.md, "Which model").
A server can name another (``--default-model``)."""


class UnknownModelError(KeyError):
    code = "unknown_model"


def resolve(reference: str) -> Any:
    """The object a ``"package.module:Name"`` reference names (a module for ``"package.module"``)."""
    module, _, name = reference.partition(":")
    found = importlib.import_module(module)
    return getattr(found, name) if name else found


@dataclass(frozen=True)
class ModelEntry:
    """Everything about one model. References are ``"module:Name"`` strings (see ``resolve``)."""

    name: str
    generator: str
    """Its ``Generator`` class. The class states the family (``family``), once."""
    network: str | None
    """The torch network the generator is built on, whose ``config_type`` is the config a
    checkpoint stores (``checkpoint.load_for_sampling``); None when the model has no network
    and its generator reads its own file (``from_file``)."""
    checkpoint: str
    """Its bundled file, in ``backend/checkpoints``."""
    card: str
    """The module with its model card's words: ``about(config) -> str`` and ``LIMITS``."""
    recipe: str | None = None
    """The training module with ``make(config) -> Recipe`` (``backend/training/recipes.py``);
    None when ``choreo train`` does not make its file (the motion graph's is built by
    ``choreo library build``)."""

    @property
    def default_checkpoint(self) -> Path:
        return CHECKPOINT_DIR / self.checkpoint

    @property
    def trained(self) -> bool:
        return self.recipe is not None

    @property
    def family(self) -> str:
        """"diffusion", "autoregressive" or "motion_graph", as its generator class says."""
        return resolve(self.generator).family

    def card_text(self) -> ModuleType:
        return resolve(self.card)

    def load(self, path: Path, device: str) -> Generator:
        """The generator over the checkpoint at ``path``, on ``device``: the one loader."""
        from backend.models.checkpoint import load_for_sampling  # torch: only when a model loads

        generator = resolve(self.generator)
        if self.network is None:
            return generator.from_file(path, name=self.name)
        network = resolve(self.network)
        model, normalizer, info = load_for_sampling(path, network.config_type, network)
        return generator(model, normalizer, name=self.name, device=device, info=info)


MODELS: dict[str, ModelEntry] = {entry.name: entry for entry in (
    ModelEntry("edge", generator="backend.models.edge_generator:EdgeGenerator",
               network="backend.models.edge:EdgeDenoiser", checkpoint="edge_default.pt",
               card="backend.models.edge_card", recipe="backend.training.recipe_edge"),
    ModelEntry("popdg", generator="backend.models.edge_generator:EdgeGenerator",  # EDGE's streaming and editing
               network="backend.models.popdg:PopdgDenoiser", checkpoint="popdg_default.pt",
               card="backend.models.popdg_card", recipe="backend.training.recipe_popdg"),
    ModelEntry("fact", generator="backend.models.fact_generator:FactGenerator",
               network="backend.models.fact:Fact", checkpoint="fact_default.pt",
               card="backend.models.fact_card", recipe="backend.training.recipe_fact"),
    ModelEntry("dancenet", generator="backend.models.dancenet_generator:DanceNetGenerator",
               network="backend.models.dancenet:DanceNet", checkpoint="dancenet_default.pt",
               card="backend.models.dancenet_card", recipe="backend.training.recipe_dancenet"),
    ModelEntry("graph", generator="backend.models.graph_generator:GraphGenerator",
               network=None, checkpoint="graph_library.npz", card="backend.models.graph_card"),
)}


def available_models() -> list[str]:
    """Registered models whose bundled checkpoint is present (all of them in a release)."""
    return sorted(name for name, entry in MODELS.items() if entry.default_checkpoint.exists())


def trained_models() -> list[str]:
    """The models ``choreo train`` makes (those with a recipe)."""
    return sorted(name for name, entry in MODELS.items() if entry.trained)


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
    return entry.load(path, resolve_device(device))
