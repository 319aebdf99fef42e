"""Contract tests over every registered model (the live registry: built-ins and installed plugins).

Metadata, options read from the builder, the built model (0..255 in, class probabilities out,
the declared parameter count), and a third-party model passing the same checks.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from robustbench_cells import plugins

EXPECTED = {"simple_cnn", "inception_cnn", "mobilenetv2", "mobilenetv3small", "mobilenetv3large", "efficientnetb2",
            "efficientnetv2b0", "efficientnetv2s", "xception", "nasnetmobile", "convnext_tiny", "convnext_base",
            "resnet50"}
#: Not built by the contract (tens of seconds each on 2 CPU cores); benchmarks/pbc_models.py --params builds
#: them and checks their declared parameter counts. Every other model, a plugin's too, is built here.
EXCLUDED_FROM_BUILD = {
    "mobilenetv3large": "3.0M parameters, same builder as mobilenetv3small (built here)",
    "efficientnetb2": "7.8M parameters",
    "efficientnetv2s": "20M parameters, same builder as efficientnetv2b0 (built here)",
    "xception": "21M parameters; its resize to 71 px is tested in tests/models/test_applications.py",
    "nasnetmobile": "4.3M parameters, slow graph construction",
    "convnext_tiny": "28M parameters",
    "convnext_base": "88M parameters",
    "resnet50": "24M parameters; built (group norm, 32 px) in tests/models/test_applications.py",
}
TINY_PLUGINS = Path(__file__).resolve().parents[1] / "bench" / "tiny_plugins"

LIVE = plugins.PluginHost(entry_points=True)  # what `cellbench` loads: built-ins and installed entry points
NAMES = LIVE.models.names()


def check_metadata(spec) -> None:
    """What ``cellbench ls models``, matrix validation and the runner read from any model spec."""
    assert spec.name and spec.family and spec.preprocessing and spec.plugin, spec
    assert spec.params is None or (isinstance(spec.params, int) and spec.params > 0)
    assert 1 <= spec.min_input_size <= spec.default_input_size
    signature = inspect.signature(spec.builder)
    assert len([p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]) >= 3, \
        "builder(input_shape, num_classes, weights, **options)"
    assert spec.check_options({}) == dict(spec.options)  # the defaults pass their own check
    for option, allowed in spec.choices.items():
        assert option in spec.options and spec.options[option] in allowed, (option, allowed)


def check_built(spec) -> None:
    """Built at 96 px for 8 classes (where ``params`` is declared): float32 0..255 in, probabilities out."""
    size = max(96, spec.min_input_size)
    model = spec.build((size, size, 3), 8)
    assert model.input_shape == (None, size, size, 3) and model.output_shape == (None, 8)
    images = np.random.default_rng(0).integers(0, 256, (2, size, size, 3)).astype(np.float32)
    probs = np.asarray(model(images, training=False))
    assert np.isfinite(probs).all() and (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    if spec.params is not None and size == 96:
        assert model.count_params() == spec.params


def test_issue_models_are_registered():
    assert EXPECTED <= set(NAMES)
    assert set(EXCLUDED_FROM_BUILD) <= set(NAMES), "an exclusion names a model that is gone"


@pytest.mark.parametrize("name", NAMES)
def test_spec_metadata(name):
    check_metadata(plugins.models().get(name))


def test_builtin_models_metadata():
    for name in plugins.models().by_plugin("models"):
        spec = plugins.models().get(name)
        assert isinstance(spec.params, int) and spec.params > 10_000, name
        assert set(spec.options) == {"norm", "dropout"}, name
    assert dict(plugins.models().get("simple_cnn").options) == {"norm": "batch", "dropout": 0.3}
    assert dict(plugins.models().get("inception_cnn").options) == {"norm": "batch", "dropout": 0.3}
    assert dict(plugins.models().get("mobilenetv2").options) == {"norm": "batch", "dropout": 0.2}


@pytest.mark.parametrize("name", [n for n in NAMES if n not in EXCLUDED_FROM_BUILD])
def test_built_model_contract(name):
    check_built(plugins.models().get(name))


def test_a_third_party_model_passes_the_same_contract():
    """tiny_cnn (tests/bench/tiny_plugins): its own family and options, no declared parameter count."""
    host = plugins.PluginHost(entry_points=False, plugins_dirs=[TINY_PLUGINS])
    spec = host.models.get("tiny_cnn")
    assert spec.plugin == "tiny_bench" and dict(spec.options) == {"width": 4, "fail": False}
    check_metadata(spec)
    check_built(spec)


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
