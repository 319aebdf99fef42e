"""AugmentationChain: every written form parses to one chain, one label format, labels read back."""

from __future__ import annotations

import pytest

from robustbench_cells.augchain import AugmentationChain, ChainStep, augmentation_label, parse_value
from robustbench_cells.errors import CellbenchError


@pytest.mark.parametrize("value, label", [
    (None, "none"),
    ("none", "none"),
    ([], "none"),
    ("simple", "simple"),
    (" simple ", "simple"),
    (["simple", "none", "mixup"], "simple+mixup"),
    ({"name": "simple", "rotation": 30, "flip": "horizontal"}, "simple(flip=horizontal,rotation=30)"),
    ([{"name": "simple", "zoom": [0.8, 1.2]}, "cutmix"], "simple(zoom=[0.8, 1.2])+cutmix"),
    (["mixup", "simple"], "mixup+simple"),  # the user's order, not the run order
])
def test_every_form_has_the_one_label(value, label):
    chain = AugmentationChain.parse(value)
    assert chain.label == augmentation_label(value) == label
    assert AugmentationChain.parse(chain) is chain


def test_config_is_the_structure_stored_cells_hash():
    # what the matrix handed TrainingBatches (and cell_key hashed) before the chain type existed
    assert AugmentationChain.parse(["none"]).config() == "none"
    assert AugmentationChain.parse(["simple"]).config() == "simple"
    assert AugmentationChain.parse(["simple", "mixup"]).config() == ["simple", "mixup"]
    assert AugmentationChain.parse({"name": "augmix"}).config() == {"name": "augmix"}  # a table stays a table
    assert AugmentationChain.parse([{"name": "simple", "rotation": 30}, "cutmix"]).config() == [
        {"name": "simple", "rotation": 30}, "cutmix"]
    assert AugmentationChain.parse("none").entries() == ["none"]
    assert AugmentationChain.parse(["simple", {"name": "mixup", "alpha": 0.4}]).tables() == [
        {"name": "simple"}, {"name": "mixup", "alpha": 0.4}]


@pytest.mark.parametrize("label", [
    "none", "simple", "simple+mixup", "simple(rotation=0)", "simple(flip=horizontal,rotation=30)+cutmix",
    "corruptions(held_out=['blur', 'stain'])", "simple(zoom=[0.8, 1.2])+mixup(alpha=0.4)",
])
def test_labels_round_trip(label):
    assert AugmentationChain.from_label(label).label == label


def test_from_label_splits_steps_only_outside_brackets():
    chain = AugmentationChain.from_label("simple(a=1+2,b=(1, 2))+mixup")
    assert chain.names == ("simple", "mixup")
    assert chain.steps[0].options == {"a": "1+2", "b": (1, 2)}
    assert AugmentationChain.from_label("corruptions(held_out=['blur', 'stain'])").steps[0].options == {
        "held_out": ["blur", "stain"]}
    assert AugmentationChain.from_label("simple,mixup").names == ("simple", "mixup")  # preview's old separator
    assert AugmentationChain.from_label("simple()").steps == (ChainStep("simple"),)


@pytest.mark.parametrize("label, message", [
    ("simple(rotation=3", "unbalanced"),
    ("simple+", "an empty step"),
    ("simple(rotation)", "option 'rotation' of 'simple' must be key=value"),
    ("simple(rotation=3)x", "must be name\\(key=value,...\\)"),
])
def test_bad_labels_are_one_line(label, message):
    with pytest.raises(CellbenchError, match=message) as info:
        AugmentationChain.from_label(label)
    assert "\n" not in str(info.value) and repr(label) in str(info.value)


def test_parse_value_reads_literals_else_text():
    assert parse_value(" 0.5 ") == 0.5 and parse_value("(0.8, 1.2)") == (0.8, 1.2)
    assert parse_value("True") is True and parse_value("horizontal") == "horizontal"
    assert parse_value("1+2") == "1+2"


@pytest.mark.parametrize("value, message", [
    (3, "augmentation must be a name"),
    ([["simple"]], "augmentation step must be a name or a"),
    ({"rotation": 3}, "has no 'name'"),
    ({"name": 3}, "has no 'name'"),
])
def test_bad_structure_is_one_line(value, message):
    with pytest.raises(CellbenchError, match=message) as info:
        AugmentationChain.parse(value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value, message", [
    ("simpel", r"unknown augmentation 'simpel' \(did you mean: simple"),
    ({"name": "simple", "rotaton": 3}, r"augmentation 'simple': unknown option 'rotaton' \(did you mean: rotation"),
    ({"name": "augmix", "severity": "high"}, r"augmentation 'augmix': option 'severity' = 'high' must be a number"),
])
def test_check_names_the_augmentation_and_option(value, message):
    chain = AugmentationChain.parse(value)  # structure is fine; the registry says no
    with pytest.raises(CellbenchError, match=message) as info:
        chain.check()
    assert "\n" not in str(info.value)


def test_check_keeps_the_given_options_and_run_order_puts_batch_steps_last():
    chain = AugmentationChain.parse(["mixup", {"name": "simple", "rotation": 0}, "augmix"]).check()
    assert chain.steps[1].options == {"rotation": 0}  # defaults are not merged into labels and keys
    assert [spec.name for _, spec in chain.run_order()] == ["simple", "augmix", "mixup"]
    assert chain.names == ("mixup", "simple", "augmix")
