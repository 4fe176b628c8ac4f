"""Every registered generator goes through the same doors: its one registry entry, `choreo
train --model NAME` with the shared loop, the registry's loader, the `Generator` interface,
and a real server's `hello`, which lists each with its family, options and editing abilities."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from backend.cli import main as choreo
from backend.editing.masks import ABILITIES
from backend.models.base import GenerationRequest
from backend.models.checkpoint import StoredConfig, load_checkpoint
from backend.models.registry import DEFAULT_MODEL, MODELS, available_models, load_generator, resolve, trained_models
from backend.server.config import ServerConfig, ServerConfigError
from backend.training.recipes import UnknownRecipeError, make_recipe
from tests.server_fixtures import start_test_server
from tests.test_training import _features, dataset  # noqa: F401  (the module's tiny dataset fixture)


TRAINED = [name for name in available_models() if MODELS[name].trained]
FAMILIES = ("diffusion", "autoregressive", "motion_graph")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_part_a_registry_entry_names_resolves(name):
    """Adding a model is one entry: its generator, network, card and recipe are all found from it."""
    entry = MODELS[name]
    assert entry.name == name and entry.family in FAMILIES
    generator = resolve(entry.generator)
    if entry.network is None:
        assert callable(generator.from_file)
    else:
        network = resolve(entry.network)
        assert issubclass(network.config_type, StoredConfig) and dataclasses.is_dataclass(network.config_type)
    card = entry.card_text()
    assert card.__name__.startswith("backend.models.") and card.LIMITS and all(card.LIMITS)
    if entry.trained:
        recipe = make_recipe(name, {})
        assert recipe.name == name and recipe.window_frames > 0
        assert set(recipe.config()) >= {f.name for f in dataclasses.fields(resolve(entry.network).config_type)}
        assert card.about(recipe.config())
    else:
        with pytest.raises(UnknownRecipeError):
            make_recipe(name, {})
        assert card.about({})


def test_choreo_train_offers_exactly_the_trained_models():
    assert trained_models() == sorted(name for name, entry in MODELS.items() if entry.recipe is not None)
    assert set(trained_models()) == {"edge", "popdg", "fact", "dancenet"}
    with pytest.raises(SystemExit):
        choreo(["train", "DATA", "--out", "RUN", "--model", "graph"])


def test_the_default_model_is_bundled_and_bundled_checkpoints_are_small():
    assert DEFAULT_MODEL in available_models()
    for name in available_models():
        assert MODELS[name].default_checkpoint.stat().st_size <= 20 * 1024 * 1024, name


@pytest.mark.parametrize("model", TRAINED)
def test_each_model_trains_with_the_shared_loop_and_streams_a_dance(model, dataset, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    assert choreo(["train", str(dataset), "--model", model, "--out", str(run), "--steps", "2",
                   "--batch-size", "2", "--no-progress", "--threads", "1", "--log-every", "1"]) == 0
    saved = load_checkpoint(run / "model.pt")
    assert saved["model"] == model and saved["step"] == 2
    generator = load_generator(model, device="cpu", checkpoint=run / "model.pt")
    assert generator.family == MODELS[model].family and generator.name == model and generator.fps == 30
    frames = 90
    chunks = list(generator.generate(GenerationRequest(_features(frames / 30, seed=2), seed=1),
                                     lambda: False, lambda stage, fraction: None))
    assert [c.start for c in chunks] == list(np.cumsum([0] + [c.num_frames for c in chunks[:-1]]))
    assert sum(c.num_frames for c in chunks) == frames
    rotations = np.concatenate([c.rotations for c in chunks])
    assert np.isfinite(rotations).all() and np.allclose(np.linalg.norm(rotations, axis=-1), 1, atol=1e-4)
    contacts = np.concatenate([c.contacts for c in chunks])
    assert contacts.shape == (frames, len(generator.contact_names)) and (0 <= contacts).all() and (contacts <= 1).all()


def test_a_server_lists_every_bundled_model_with_its_capabilities(tmp_path):
    server = start_test_server(tmp_path, default_model="")  # the product's own default
    try:
        with server.client(timeout=60) as client:
            hello = client.hello()
    finally:
        server.stop()
    described = {m["name"]: m for m in hello["models"]}
    assert set(described) == set(available_models()) and hello["default_model"] == DEFAULT_MODEL == "graph"
    assert "keyframes" in described[DEFAULT_MODEL]["editing"]["abilities"]  # the default edits every way
    for name, model in described.items():
        assert model["family"] == MODELS[name].family
        assert model["fps"] == 30 and hello["contact_names"][name] == model["contact_names"]
        assert set(model["editing"]["abilities"]) <= set(ABILITIES)
        for option in model["options"]:
            assert option["type"] in ("int", "float", "bool", "choice"), option
            assert option["description"], option
            if option["type"] in ("int", "float"):
                assert option["min"] <= option["default"] <= option["max"], option
            if option["type"] == "choice":
                assert option["default"] in option["choices"], option


def test_a_default_model_that_is_not_loaded_is_refused_at_start():
    with pytest.raises(ServerConfigError, match="default model 'graph' is not among"):
        ServerConfig(models=("edge",), default_model="graph").validate()
