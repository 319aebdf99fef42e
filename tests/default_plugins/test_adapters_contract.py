"""Contract tests over EVERY registered adapter (the live registry: built-ins, entry points, plugin dirs).

Deterministic for a seed; never sees labels; leaves the stored model's weights untouched; works
on a model with BatchNorm and one without (GroupNorm); bad options are named in the error.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from robustbench_cells import plugins
from robustbench_cells.adapters import (
    AdaptContext, adapt_predict, chain_label, check_chain, resolve_chain, train_stats,
)
from robustbench_cells.errors import CellbenchError

BUILTIN_NAMES = ("bn_adapt", "none", "scale_norm", "stain_norm", "tent", "tta")


#: Adapters left out of the contract run, each with its reason (none: every one must pass).
EXCLUDED: dict[str, str] = {}
LIVE = plugins.PluginHost(entry_points=True)  # what `cellbench` loads: built-ins and installed entry points
ADAPTER_NAMES = [n for n in LIVE.adapters.names() if n not in EXCLUDED]


def _images(n: int = 12, size: int = 32, seed: int = 0, tint: tuple[int, int, int] = (235, 205, 200)) -> np.ndarray:
    """Smear-like crops: pink background, a purple 'cell' of varying size near the centre."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        img = np.broadcast_to(np.array(tint, np.float32), (size, size, 3)).copy()
        r = size * rng.uniform(0.15, 0.3)
        img[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < r * r] = (110, 60, 160)
        img += rng.normal(0, 5, img.shape)
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def _tiny_model(norm: str, num_classes: int = 3, size: int = 32):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(8, 3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x) if norm == "batch" else keras.layers.GroupNormalization(groups=2)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    out = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inp, out)


@pytest.fixture(scope="module")
def stats():
    return train_stats(_images(20, seed=1))


@pytest.fixture(scope="module", params=["batch", "group"])
def model(request):
    return _tiny_model(request.param)


def test_builtins_registered_and_described():
    specs = {s.name: s for s in plugins.adapters()}
    assert set(BUILTIN_NAMES) <= set(specs)
    for spec in specs.values():
        assert spec.description and spec.stage in ("image", "model", "predict"), spec.name


@pytest.mark.parametrize("name", ADAPTER_NAMES)
def test_never_sees_labels(name):
    spec = plugins.adapters().get(name)
    params = list(inspect.signature(spec.fn).parameters)
    assert params[:3] == ["context", "images", "rng"], params
    assert not {"labels", "y", "targets", "y_true"} & set(params)


@pytest.mark.parametrize("name", ADAPTER_NAMES)
def test_deterministic_shape_and_model_untouched(name, model, stats):
    target = _images(10, seed=5, tint=(240, 225, 160))  # a yellower 'other lab'
    before_images = target.copy()
    weights = [w.copy() for w in model.get_weights()]
    context = AdaptContext(model, {"class_names": ["a", "b", "c"]}, stats)
    a = adapt_predict(name, context, target, seed=3)
    b = adapt_predict(name, context, target, seed=3)
    assert a.dtype == np.float32 and a.shape == (10, 3)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-4)
    assert np.array_equal(target, before_images), f"{name} modified the images in place"
    for w0, w1 in zip(weights, model.get_weights()):
        assert np.array_equal(w0, w1), f"{name} changed the stored model's weights"


@pytest.mark.parametrize("name", ADAPTER_NAMES)
def test_one_set_never_leaks_into_the_next(name, model, stats):
    """A context is reused for every evaluation set of a cell: set B's predictions must not depend
    on having adapted to set A first (the working model copy is reset for each set)."""
    first, second = _images(10, seed=5, tint=(240, 225, 160)), _images(10, seed=9, tint=(200, 200, 240))
    reused = AdaptContext(model, {"class_names": ["a", "b", "c"]}, stats)
    adapt_predict(name, reused, first, seed=3)
    after_first = adapt_predict(name, reused, second, seed=3)
    fresh = adapt_predict(name, AdaptContext(model, {"class_names": ["a", "b", "c"]}, stats), second, seed=3)
    np.testing.assert_allclose(after_first, fresh, atol=1e-6)


def test_bn_adapt_changes_bn_models_and_notes_group_norm(stats):
    target = _images(16, seed=5, tint=(200, 230, 150))
    bn = _tiny_model("batch")
    ctx = AdaptContext(bn, {}, stats)
    assert not np.allclose(adapt_predict("none", ctx, target), adapt_predict("bn_adapt", ctx, target), atol=1e-5)
    gn = _tiny_model("group")
    ctx = AdaptContext(gn, {}, stats)
    np.testing.assert_allclose(adapt_predict("none", ctx, target), adapt_predict("bn_adapt", ctx, target), atol=1e-6)
    assert any("no (trainable) BatchNorm" in note for note in ctx.notes)


def test_bn_adapt_statistics_are_the_targets(stats):
    import keras

    model = _tiny_model("batch")
    target = _images(16, seed=7, tint=(180, 240, 150))
    from robustbench_cells.default_plugins.adapters import adapt_bn

    adapted = adapt_bn(AdaptContext(model, {}, stats), target, np.random.default_rng(0), batch_size=16)
    bn = next(l for l in adapted.layers if isinstance(l, keras.layers.BatchNormalization))
    features = keras.Model(adapted.input, bn.input)(target.astype(np.float32)).numpy()
    np.testing.assert_allclose(np.asarray(bn.moving_mean), features.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)


def test_tent_moves_norm_parameters_only(stats):
    model = _tiny_model("group")
    from robustbench_cells.default_plugins.adapters import adapt_tent

    adapted = adapt_tent(AdaptContext(model, {}, stats), _images(8, seed=2), np.random.default_rng(0), steps=3, lr=0.05)
    for layer, orig in zip(adapted.layers, model.layers):
        changed = any(not np.array_equal(a, b) for a, b in zip(layer.get_weights(), orig.get_weights()))
        assert changed == (type(layer).__name__ == "GroupNormalization"), layer.name


def test_stain_and_scale_norm_move_target_towards_training(stats):
    from robustbench_cells.ops.scale import median_cell_size
    from robustbench_cells.ops.stain_norm import lab_moments

    model = _tiny_model("group")
    ctx = AdaptContext(model, {}, stats)
    target = _images(12, seed=4, tint=(240, 225, 150))
    spec = plugins.adapters().get("stain_norm")
    normed = spec.fn(ctx, target, np.random.default_rng(0), **spec.options)
    mean_before = np.abs(lab_moments(target)[0] - stats["lab_mean"]).sum()
    assert np.abs(lab_moments(normed)[0] - stats["lab_mean"]).sum() < 0.2 * mean_before
    macenko = spec.fn(ctx, target, np.random.default_rng(0), method="macenko", per_image=False)
    assert macenko.shape == target.shape and macenko.dtype == np.uint8 and not np.array_equal(macenko, target)

    from robustbench_cells.ops.scale import zoom

    big = zoom(_images(12, seed=1), 1.6)  # the training cells, magnified
    scaled = plugins.adapters().get("scale_norm").fn(ctx, big, np.random.default_rng(0))
    assert abs(median_cell_size(scaled) - stats["cell_size"]) < abs(median_cell_size(big) - stats["cell_size"])


@pytest.mark.parametrize("name", ADAPTER_NAMES)
def test_bad_options_named(name, stats):
    spec = plugins.adapters().get(name)
    ctx = AdaptContext(_tiny_model("group"), {}, stats)
    with pytest.raises(CellbenchError, match=rf"adapter '{name}'.*'no_such_option'"):
        adapt_predict(name, ctx, _images(4), options={name: {"no_such_option": 1}})
    for option in spec.options:
        with pytest.raises(CellbenchError, match=rf"adapter '{name}'.*option '{option}'"):
            adapt_predict(name, ctx, _images(4), options={option: object()})


def test_chain_order_labels_and_errors():
    assert [s.name for s in resolve_chain("bn_adapt+tta+stain_norm+scale_norm")] == [
        "stain_norm", "scale_norm", "bn_adapt", "tta"]
    assert chain_label(["none"]) == "none" and chain_label("none+bn_adapt") == "bn_adapt"
    assert chain_label([]) == "none"
    with pytest.raises(CellbenchError, match="adapter 'bn_adpt'.*bn_adapt"):
        check_chain("bn_adpt")
    with pytest.raises(CellbenchError, match="given twice"):
        check_chain(["tta", "tta"])
    with pytest.raises(CellbenchError, match="do not name an adapter"):
        check_chain(["tta", "bn_adapt"], {"steps": 3})
    check_chain(["tent", "tta"], {"tent": {"steps": 2}, "tta": {"transforms": "flips"}})
    # values are checked when the chain is checked (matrix validation), not first when a cell runs
    with pytest.raises(CellbenchError, match="adapter 'stain_norm': option 'method' = 'macenk' is not one of "
                                             "reinhard, macenko.*did you mean: macenko"):
        check_chain("stain_norm", {"method": "macenk"})
    with pytest.raises(CellbenchError, match="adapter 'tent': option 'steps' = 'ten' must be a number"):
        check_chain(["tent"], {"tent": {"steps": "ten"}})


def test_missing_training_stats_is_a_clear_error():
    ctx = AdaptContext(_tiny_model("group"), {}, {})
    with pytest.raises(CellbenchError, match="stain_norm.*no training statistics 'lab_mean'"):
        adapt_predict("stain_norm", ctx, _images(4))


def test_context_from_cell_reads_saved_stats(tmp_path, stats):
    from robustbench_cells.train import save_model

    save_model(_tiny_model("group"), {"class_names": ["a", "b", "c"], "train_stats": stats}, tmp_path)
    ctx = AdaptContext.from_cell(tmp_path)
    assert ctx.stats == stats and ctx.class_names == ["a", "b", "c"]


def test_third_party_adapter_via_plugins_dir(tmp_path, monkeypatch, stats):
    (tmp_path / "my_adapter.py").write_text(
        "from robustbench_cells import hookimpl\n"
        "from robustbench_cells.registry import AdapterSpec\n"
        "def darker(context, images, rng, amount=10):\n"
        "    return (images // 2).astype('uint8')\n"
        "@hookimpl\n"
        "def register_adapters(register):\n"
        "    register(AdapterSpec('darker', 'halve brightness', {'amount': 10}, darker, stage='image'))\n"
    )
    monkeypatch.setenv("CELLBENCH_PLUGINS_DIR", str(tmp_path))
    plugins.reset()
    try:
        assert plugins.adapters().get("darker").plugin == "my_adapter"
        ctx = AdaptContext(_tiny_model("group"), {}, stats)
        assert adapt_predict("darker+bn_adapt", ctx, _images(4)).shape == (4, 3)
    finally:
        monkeypatch.delenv("CELLBENCH_PLUGINS_DIR")
        plugins.reset()


def test_ls_adapters_and_plugins_list_them(cli):
    code, out, err = cli("ls", "adapters", "--json")
    assert code == 0, err
    import json

    rows = {r["name"]: r for r in json.loads(out)}
    assert set(BUILTIN_NAMES) <= set(rows) and rows["tta"]["stage"] == "predict"
    code, out, err = cli("plugins", "--json")
    assert code == 0, err
    info = next(i for i in json.loads(out) if i["name"] == "adapters")
    assert info["registered"]["adapter"] == sorted(BUILTIN_NAMES)
