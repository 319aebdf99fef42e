"""The list-valued matrix keys: the [[targets]] and [[ensembles]] arrays share one table parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustbench_cells.bench.matrix import parse_matrix
from robustbench_cells.errors import CellbenchError

BASE = {"name": "t", "data": "synthetic:80", "image_size": 32, "models": ["simple_cnn"],
        "augmentations": ["none", "simple"], "shifts": {"include": []}}
ENSEMBLE = {"name": "pair", "members": ["simple_cnn/none", "simple_cnn/simple"]}
TARGET = {"name": "lab", "data": "synthetic:40"}


@pytest.mark.parametrize("key, value, message", [
    ("targets", {"name": "lab"}, r"m.toml: targets: must be an array of tables \(\[\[targets\]\]\)"),
    ("ensembles", ENSEMBLE, r"m.toml: ensembles: must be an array of tables \(\[\[ensembles\]\]\)"),
    ("targets", ["lab"], r"targets\[0\]: must be a table with name and data"),
    ("ensembles", ["pair"], r"ensembles\[0\]: must be a table with name and members"),
    ("targets", [{**TARGET, "dat": 1}], r"targets\[0\].dat: unknown key \(did you mean: data\?\)"),
    ("ensembles", [{**ENSEMBLE, "member": []}], r"ensembles\[0\].member: unknown key \(did you mean: members"),
    ("targets", [{**TARGET, "name": "a|b"}], r"targets\[0\].name: must be a non-empty name without '\|'"),
    ("ensembles", [{**ENSEMBLE, "name": "a/b"}], r"ensembles\[0\].name: must be a non-empty name without '/'"),
    ("targets", [{**TARGET, "name": " "}], r"targets\[0\].name: must be a non-empty name"),
    ("targets", [TARGET, TARGET], r"m.toml: targets: two targets share a name"),
    ("ensembles", [ENSEMBLE, ENSEMBLE], r"m.toml: ensembles: two ensembles share a name"),
    ("ensembles", [{**ENSEMBLE, "members": ["simple_cnn/none"]}], r"ensembles\[0\].members: must list at least two"),
])
def test_table_arrays_report_one_line_naming_the_key(key, value, message):
    with pytest.raises(CellbenchError, match=message) as info:
        parse_matrix({**BASE, key: value}, path=Path("m.toml"))
    assert "\n" not in str(info.value)


def test_good_table_arrays_parse():
    m = parse_matrix({**BASE, "targets": [TARGET], "ensembles": [ENSEMBLE]})
    assert [t.name for t in m.targets] == ["lab"] and m.ensembles[0].members == tuple(ENSEMBLE["members"])


@pytest.mark.parametrize("augmentations, message", [
    ([{"name": "simple", "rotaton": 3}],
     r"m.toml: augmentations\[0\]: augmentation 'simple': unknown option 'rotaton' \(did you mean: rotation\?\)"),
    ([{"rotation": 3}], r"augmentations\[0\]: augmentation table .* has no 'name'"),
    ([["simple", ["mixup"]]], r"augmentations\[0\]: augmentation step must be a name or a"),
    ([[]], r"augmentations\[0\]: an empty list; use \"none\""),
    (["simple", ["none", "simple"]], r"augmentations: listed twice: simple"),
])
def test_augmentation_mistakes_name_the_item_and_the_option(augmentations, message):
    with pytest.raises(CellbenchError, match=message) as info:
        parse_matrix({**BASE, "augmentations": augmentations}, path=Path("m.toml"))
    assert "\n" not in str(info.value)


def test_augmentations_become_chains_and_the_run_config_keeps_their_written_form():
    m = parse_matrix({**BASE, "augmentations": ["none", ["simple", "none", "mixup"], {"name": "augmix"}]})
    assert [a.label for a in m.augmentations] == ["none", "simple+mixup", "augmix"]
    assert m.config()["augmentations"] == [["none"], ["simple", "mixup"], [{"name": "augmix"}]]
