"""Contract tests over every registered model: metadata, declared parameter counts, the built model."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from robustbench_cells import plugins

EXPECTED = {"simple_cnn", "inception_cnn", "mobilenetv2", "mobilenetv3small", "mobilenetv3large", "efficientnetb2",
            "efficientnetv2b0", "efficientnetv2s", "xception", "nasnetmobile", "convnext_tiny", "convnext_base",
            "resnet50"}
#: Built in the contract test (a few seconds on CPU); the big ones are checked by benchmarks/pbc_models.py --params.
CHEAP = ("simple_cnn", "inception_cnn", "mobilenetv2", "mobilenetv3small", "efficientnetv2b0")


def _all_names() -> list[str]:
    plugins.reset()
    return plugins.models().names()


def test_issue_models_are_registered():
    assert EXPECTED <= set(_all_names())


@pytest.mark.parametrize("name", _all_names())
def test_spec_metadata(name):
    spec = plugins.models().get(name)
    assert spec.family and spec.preprocessing and spec.plugin == "models"
    assert isinstance(spec.params, int) and spec.params > 10_000
    assert 1 <= spec.min_input_size <= spec.default_input_size
    assert set(spec.options) == {"norm", "dropout"}


@pytest.mark.parametrize("name", CHEAP)
def test_declared_params_match_the_built_model(name):
    spec = plugins.models().get(name)
    model = spec.build((96, 96, 3), 8)
    assert model.count_params() == spec.params
    assert model.input_shape == (None, 96, 96, 3) and model.output_shape == (None, 8)


@pytest.mark.parametrize("name, norm", [("simple_cnn", "group"), ("mobilenetv2", "batch")])
def test_model_takes_0_255_input_and_round_trips_in_safe_mode(name, norm, tmp_path):
    from robustbench_cells.train import load_model, predict_proba, save_model

    model = plugins.models().get(name).build((32, 32, 3), 8, None, norm=norm)
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    before = predict_proba(model, images)
    loaded, meta = load_model(save_model(model, {"model": name}, tmp_path))
    np.testing.assert_allclose(predict_proba(loaded, images), before, atol=1e-6)
    assert meta == {"model": name}


def test_unknown_option_is_refused():
    from robustbench_cells.errors import CellbenchError

    with pytest.raises(CellbenchError, match="unknown option 'normalization'.*options: norm, dropout"):
        plugins.models().get("simple_cnn").build((32, 32, 3), 8, None, normalization="group")


def test_listing_models_does_not_import_tensorflow():
    code = ("import sys; from robustbench_cells import plugins; plugins.models().names(); "
            "import robustbench_cells.cli.plugins_cmd; print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_ls_models_shows_family_params_and_input_size(cli):
    code, out, err = cli("ls", "models", "--json")
    assert code == 0, err
    import json

    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["simple_cnn"]["params (96x96, 8 classes)"] == "48k"
    assert rows["xception"]["input size"] == "96 (min 71)"
    assert rows["resnet50"]["family"] == "resnet"
