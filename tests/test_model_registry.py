"""Every registered generator goes through the same doors: `choreo train --model NAME`
with the shared loop, the registry's loader, the `Generator` interface, and a real
server's `hello`, which lists each with its family, options and editing abilities."""

from __future__ import annotations

import numpy as np
import pytest

from backend.cli import main as choreo
from backend.editing.masks import ABILITIES
from backend.models.base import GenerationRequest
from backend.models.checkpoint import load_checkpoint
from backend.models.registry import MODELS, available_models, load_generator
from backend.training.recipes import RECIPES
from tests.server_fixtures import start_test_server
from tests.test_training import _features, dataset  # noqa: F401  (the module's tiny dataset fixture)


TRAINED = [name for name in available_models() if MODELS[name].trained]


def test_every_registered_model_has_a_recipe_and_bundled_checkpoints_are_small():
    assert set(RECIPES) == {name for name, entry in MODELS.items() if entry.trained}
    assert "edge" in available_models()
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
    assert generator.family == MODELS[model].family and generator.fps == 30
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
    server = start_test_server(tmp_path)
    try:
        with server.client(timeout=60) as client:
            hello = client.hello()
    finally:
        server.stop()
    described = {m["name"]: m for m in hello["models"]}
    assert set(described) == set(available_models()) and hello["default_model"] == "edge"
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
