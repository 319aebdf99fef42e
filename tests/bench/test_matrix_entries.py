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


# -- models trained elsewhere: { path = ... } tables -----------------------------------------------
@pytest.fixture
def model_file(tmp_path):
    """A file only hashed here (score entries are checked without loading the model)."""
    path = tmp_path / "models" / "mine.keras"
    path.parent.mkdir()
    path.write_bytes(b"stand-in model bytes")
    return path


def test_a_path_table_is_a_score_only_model_relative_to_the_matrix_file(model_file, tmp_path):
    from robustbench_cells.bench.matrix import ScoreEntry
    from robustbench_cells.bench.scoring_cells import model_digest

    models = ["simple_cnn", {"path": "models/mine.keras", "preprocess": "unit", "classes": ["a", "b"]},
              {"path": str(model_file), "name": "mine-again"}]
    m = parse_matrix({**BASE, "models": models}, path=tmp_path / "m.toml")
    assert [e.label for e in m.models] == ["simple_cnn", "mine.keras", "mine-again"]
    entry = m.models[1]
    assert isinstance(entry, ScoreEntry) and entry.seed == 0
    assert entry.config == {"kind": "score", "path": str(model_file.resolve()), "digest": model_digest(model_file),
                            "preprocess": "unit", "classes": ["a", "b"], "seed": 0}
    # the run row records it: a model retrained in place is a changed matrix on --resume
    assert m.config()["models"][1] == {"label": "mine.keras", "config": entry.config}
    assert m.config()["models"][0] == {"name": "simple_cnn", "options": {}, "train": {}}  # as before


@pytest.mark.parametrize("entry, message", [
    ({"path": "models/nope.keras"}, r"m.toml: models\[1\].path: .*/models/nope.keras: no such file or folder"),
    ({"path": "models/mine.keras", "preprocess": "caffe"},
     r"m.toml: models\[1\].preprocess: 'caffe' is not one of none, unit, symmetric, imagenet"),
    ({"path": "models/mine.keras", "classes": "a,b"}, r"models\[1\].classes: must be a list of distinct class names"),
    ({"path": "models/mine.keras", "train": {"epochs": 2}},
     r"m.toml: models\[1\].train: unknown key; allowed: path, name, preprocess, classes"),
    ({"path": "models/mine.keras", "name": "a/b"}, r"models\[1\].name: must be a non-empty name without '/'"),
    ({"path": "models/mine.keras", "name": "simple_cnn"}, r"m.toml: models: listed twice: simple_cnn"),
    ({"options": {}}, r"models\[1\]: must be a model name, a table with 'name' or a table with 'path'"),
])
def test_path_table_mistakes_are_one_line_naming_the_entry(model_file, tmp_path, entry, message):
    with pytest.raises(CellbenchError, match=message) as info:
        parse_matrix({**BASE, "models": ["simple_cnn", entry]}, path=tmp_path / "m.toml")
    assert "\n" not in str(info.value) and str(tmp_path / "m.toml") in str(info.value)


def test_ensembles_may_name_a_score_only_model_once(model_file, tmp_path):
    models = ["simple_cnn", {"path": str(model_file)}]
    ok = parse_matrix({**BASE, "models": models, "ensembles": [
        {"name": "mixed", "members": ["simple_cnn/none", "mine.keras/external"]}]}, path=tmp_path / "m.toml")
    assert ok.ensembles[0].members == ("simple_cnn/none", "mine.keras/external")
    with pytest.raises(CellbenchError, match=r"ensembles\[0\].members\[1\]: 'mine.keras/external' is scored once, "
                                             r"at seed 0; leave the seed out"):
        parse_matrix({**BASE, "models": models, "seeds": [0, 1], "ensembles": [
            {"name": "mixed", "members": ["simple_cnn/none", "mine.keras/external/1"]}]}, path=tmp_path / "m.toml")
    with pytest.raises(CellbenchError, match=r"'mine.keras/simple' is not a cell of this matrix"):
        parse_matrix({**BASE, "models": models, "ensembles": [
            {"name": "mixed", "members": ["simple_cnn/none", "mine.keras/simple"]}]}, path=tmp_path / "m.toml")
