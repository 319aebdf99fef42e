"""registry: option defaults read from the factory's signature, the option check, name lookup."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial

import pytest

from robustbench_cells.errors import CellbenchError
from robustbench_cells.registry import (
    AdapterSpec, AugmentationSpec, ModelSpec, Registry, ShiftSpec, option_defaults,
)


def _factory(p: float = 0.5, size=(1, 3), *, mode: str = "a"):
    return lambda images, rng: images


def _builder(input_shape, num_classes, weights=None, *, width: int = 4, norm: str = "batch"):
    return None


def _adapter(context, images, rng, *, steps: int = 10):
    return images


# -- defaults from the signature ---------------------------------------------------------------------
def test_defaults_come_from_the_signature_in_its_order():
    assert list(AugmentationSpec("a", "f", "image", _factory).options.items()) == [
        ("p", 0.5), ("size", (1, 3)), ("mode", "a")]
    # the arguments cellbench passes itself are not options (weights has a default, but is not one)
    assert dict(ModelSpec("m", "f", _builder).options) == {"width": 4, "norm": "batch"}
    assert dict(AdapterSpec("x", "d", fn=_adapter).options) == {"steps": 10}


def test_a_partial_builder_keeps_its_keyword_defaults():
    def build(key, input_shape, num_classes, weights=None, *, dropout: float = 0.2):
        return key

    assert dict(ModelSpec("k", "f", partial(build, "k")).options) == {"dropout": 0.2}


def test_declared_options_that_agree_are_accepted():
    spec = AugmentationSpec("a", "f", "image", _factory, options={"p": 0.5, "size": [1, 3]})  # TOML spells pairs as lists
    assert spec.options["size"] == (1, 3)  # the signature's value
    assert dict(AdapterSpec("x", "d", {"steps": 10}, _adapter).options) == {"steps": 10}  # the older positional form


def test_a_declared_default_that_disagrees_is_an_error_naming_the_option():
    with pytest.raises(CellbenchError, match=r"augmentation 'a': option 'p': options= says 0\.3 but the factory's "
                                             r"default is 0\.5"):
        AugmentationSpec("a", "f", "image", _factory, options={"p": 0.3})
    with pytest.raises(CellbenchError, match="model 'm': option 'norm'"):
        ModelSpec("m", "f", _builder, options={"norm": "group"})
    with pytest.raises(CellbenchError, match="option 'flag'"):
        AugmentationSpec("b", "f", "image", lambda flag=False: None, options={"flag": 0})  # a bool is not a number


def test_a_declared_option_the_factory_does_not_take_is_an_error():
    with pytest.raises(CellbenchError, match="augmentation 'a': options= names 'pp', which the factory does not take "
                                             r"\(did you mean: p"):
        AugmentationSpec("a", "f", "image", _factory, options={"pp": 0.5})


def test_kwargs_factories_take_their_defaults_from_options_alone():
    def factory(**options):
        return lambda images, rng: images

    spec = AugmentationSpec("k", "f", "image", factory, options={"strength": 0.2})
    assert dict(spec.options) == {"strength": 0.2}
    assert spec.check_options({"strength": 0.4}) == {"strength": 0.4}
    with pytest.raises(CellbenchError, match="unknown option 'strenght'.*did you mean: strength"):
        spec.check_options({"strenght": 0.4})
    assert dict(AugmentationSpec("k2", "f", "image", factory).options) == {}


def test_a_parameter_without_a_default_needs_one_from_options():
    def factory(sigma, p=1.0):
        return lambda images, rng: images

    with pytest.raises(CellbenchError, match="augmentation 's': parameter 'sigma' of the factory has no default"):
        AugmentationSpec("s", "f", "image", factory)
    assert dict(AugmentationSpec("s", "f", "image", factory, options={"sigma": 4.0}).options) == {"p": 1.0, "sigma": 4.0}


def test_an_unreadable_signature_leaves_options_as_declared():
    assert option_defaults("augmentation 'x'", max, 0, {"a": 1}) == {"a": 1}  # max: no signature to read


def test_stamping_the_plugin_keeps_the_derived_options():
    reg: Registry[AugmentationSpec] = Registry("augmentation")
    reg.register(AugmentationSpec("a", "f", "image", _factory), plugin="mine")
    spec = reg.get("a")
    assert spec.plugin == "mine" and dict(spec.options) == {"p": 0.5, "size": (1, 3), "mode": "a"}
    assert replace(spec, description="x").options == spec.options


# -- the one option check -------------------------------------------------------------------------------
def test_build_checks_names_types_and_choices_before_the_factory_runs():
    spec = AugmentationSpec("a", "f", "image", _factory, choices={"mode": ("a", "b")})
    assert spec.check_options({"p": 1}) == {"p": 1, "size": (1, 3), "mode": "a"}  # ints and floats alike
    with pytest.raises(CellbenchError, match=r"augmentation 'a': option 'p' = 'high' must be a number \(default 0\.5\)"):
        spec.build(p="high")
    with pytest.raises(CellbenchError, match="option 'size' = 3 must be a list"):
        spec.build(size=3)
    with pytest.raises(CellbenchError, match="option 'mode' = 'c' is not one of a, b"):
        spec.build(mode="c")


def test_adapter_options_get_the_same_check():
    spec = AdapterSpec("x", "d", fn=_adapter, choices={})
    assert spec.check_options(None) == {"steps": 10}
    with pytest.raises(CellbenchError, match="adapter 'x': option 'steps' = 'many' must be a number"):
        spec.check_options({"steps": "many"})
    with pytest.raises(CellbenchError, match="adapter 'x': unknown option 'step'.*did you mean: steps"):
        spec.check_options({"step": 3})
    with pytest.raises(CellbenchError, match="adapter 'y': fn must be a function"):
        AdapterSpec("y", "d", {})


# -- the built-ins: same defaults as before they moved into the signatures ------------------------------
BUILTIN_AUGMENTATION_OPTIONS = {
    "none": {},
    "simple": dict(flip="both", rotation=180.0, zoom=(0.9, 1.1), translate=0.1, contrast=0.2, brightness=0.1),
    "augmix": dict(severity=3.0, width=3, depth=-1, alpha=1.0),
    "randaugment": dict(num_ops=2, magnitude=9.0, magnitude_std=0.5),
    "gaussian_noise": dict(sigma=(2.0, 16.0), p=1.0),
    "mixup": dict(alpha=0.2, p=1.0),
    "cutmix": dict(alpha=1.0, p=1.0),
    "background": dict(p=0.5, folder=None, scale=(0.8, 1.2), max_offset=0.15),
    "stain": dict(space="both", hed_sigma=0.05, hed_bias=0.05, hue=8.0, saturation=0.15, value=0.1),
    "corruptions": dict(held_out=(), severity=(1, 5), p=0.5),
    "lab": dict(strength=(0.2, 1.0), p=0.8),
    "keras_layer": {"layer": "keras.layers.RandomContrast", "args": None},
    "albumentations": {"transform": "RandomBrightnessContrast", "args": None},
}
BUILTIN_ADAPTER_OPTIONS = {
    "none": {}, "stain_norm": {"method": "reinhard", "per_image": False}, "scale_norm": {"min_factor": 0.5, "max_factor": 2.0},
    "bn_adapt": {"batch_size": 128}, "tent": {"steps": 10, "lr": 1e-3, "batch_size": 64}, "tta": {"transforms": "d4"},
}


def _shown(expected: dict) -> str:
    """``cellbench ls``'s options column: the dict's repr, cut at 60 characters."""
    text = repr(expected)
    return text if len(text) <= 60 else text[:59] + "…"


@pytest.mark.parametrize("kind, expected", [("augmentations", BUILTIN_AUGMENTATION_OPTIONS),
                                            ("adapters", BUILTIN_ADAPTER_OPTIONS)])
def test_ls_shows_the_builtin_defaults(cli, kind, expected):
    code, out, err = cli("ls", kind, "--json")
    assert code == 0, err
    shown = {row["name"]: row["options"] for row in json.loads(out)}
    assert {name: shown[name] for name in expected} == {name: _shown(opts) for name, opts in expected.items()}


def test_builtin_specs_hold_the_same_defaults():
    from robustbench_cells import plugins

    assert {n: dict(plugins.augmentations().get(n).options) for n in BUILTIN_AUGMENTATION_OPTIONS} == \
        BUILTIN_AUGMENTATION_OPTIONS
    assert {n: dict(plugins.adapters().get(n).options) for n in BUILTIN_ADAPTER_OPTIONS} == BUILTIN_ADAPTER_OPTIONS


# -- lookup ------------------------------------------------------------------------------------------------
def test_registry_refuses_a_second_registration_and_suggests_names():
    reg: Registry[ShiftSpec] = Registry("shift")
    spec = ShiftSpec("dim", "photometric", lambda im, p, rng: im, (1, 2, 3, 4, 5))
    reg.register(spec, plugin="one")
    with pytest.raises(CellbenchError, match="shift 'dim' is registered twice: by plugin 'one' and by plugin 'two'"):
        reg.register(spec, plugin="two")
    with pytest.raises(CellbenchError, match="dim"):
        reg.get("dimm")
    assert reg.names("d*") == ["dim"] and [s.name for s in reg.list("photometric")] == ["dim"]
