"""Cell keys of stored runs: the expansion must keep giving the keys it gave, or --resume starts over."""

from __future__ import annotations

from robustbench_cells.bench.cells import cell_key, cell_label, expand_cells
from robustbench_cells.bench.matrix import parse_matrix

MATRIX = {
    "name": "pin", "data": "synthetic:80", "image_size": 32, "seeds": [0, 1],
    "models": ["simple_cnn", {"name": "simple_cnn", "options": {"norm": "group"}}],
    "augmentations": ["none", ["simple", "mixup"], {"name": "simple", "rotation": 30},
                      [{"name": "simple", "rotation": 30, "flip": "horizontal"}, "cutmix"],
                      {"name": "corruptions", "held_out": ["blur", "stain"]}, {"name": "augmix"},
                      ["mixup", "none", "simple"]],
    "train": {"epochs": 1}, "shifts": {"include": []},
    "ensembles": [{"name": "pair", "members": ["simple_cnn/none/0", "simple_cnn(norm=group)/simple+mixup/0"]}],
    "adapters": ["none", "bn_adapt"],
}

# Computed with bench/matrix.py as it was before the augmentation chain type (issue 14). If one of
# these changes, every stored run with such a cell re-trains it on --resume: only change them on purpose.
PINNED = {
    "simple_cnn/none/0": "d4a2f44e633d2572",
    "simple_cnn/none/1": "9d07727fd0171540",
    "simple_cnn/simple+mixup/0": "06f6f2c6731a447d",
    "simple_cnn/simple(rotation=30)/0": "f5d642975a37aad3",
    "simple_cnn/simple(flip=horizontal,rotation=30)+cutmix/0": "e39091071c82861b",
    "simple_cnn/corruptions(held_out=['blur', 'stain'])/0": "5df504f649a1f72c",
    "simple_cnn/augmix/0": "72eb66c4efcd35fe",  # written as a table without options
    "simple_cnn/mixup+simple/0": "76e5a4d4618a81af",
    "simple_cnn(norm=group)/simple+mixup/0": "0f36077d0449e8ac",
    "pair/mixed/0": "b8b5047b402970e1",
    "simple_cnn+bn_adapt/simple(rotation=30)/1": "e5acae448fefebb9",
}


def test_cell_keys_of_stored_runs_do_not_change():
    cells = {cell_label(c): c for c in expand_cells(parse_matrix(MATRIX), "fp-pin")}
    assert len(cells) == 2 * 7 * 2 + 1 + 2 * 7 * 2  # trained, the ensemble, adapted
    assert {label: cells[label].key for label in PINNED} == PINNED


def test_a_key_is_the_hash_of_the_config_it_stores():
    for cell in expand_cells(parse_matrix(MATRIX), "fp-pin"):
        assert cell.key == cell_key(cell.config)
    table = next(c for c in expand_cells(parse_matrix(MATRIX), "fp") if c.augmentation == "augmix")
    assert table.config["augmentation"] == {"name": "augmix"}


def test_a_score_only_model_is_one_cell_with_adapted_cells_and_leaves_the_pinned_keys(tmp_path):
    from robustbench_cells.bench.cells import select_cells

    model = tmp_path / "mine.keras"
    model.write_bytes(b"stand-in model bytes")  # only hashed: the expansion loads nothing
    matrix = {**MATRIX, "models": [*MATRIX["models"], {"path": str(model), "preprocess": "unit"}],
              "ensembles": [*MATRIX["ensembles"], {"name": "outside", "members": ["simple_cnn/none",
                                                                                   "mine.keras/external"]}]}
    cells = {cell_label(c): c for c in expand_cells(parse_matrix(matrix), "fp-pin")}
    assert {label: cells[label].key for label in PINNED} == PINNED  # trained cells keep their keys
    scored = [c for c in cells.values() if c.config["kind"] == "score"]
    assert [cell_label(c) for c in scored] == ["mine.keras/external/0"]  # not per augmentation or seed
    score = scored[0]
    assert score.key == cell_key(score.config) and score.recipe == {}
    assert {k: score.config[k] for k in ("image_size", "data", "split")} == {
        "image_size": 32, "data": "fp-pin", "split": {"seed": 0, "fractions": [0.7, 0.1, 0.2]}}
    adapted = cells["mine.keras+bn_adapt/external/0"]
    assert adapted.config["base"] == score.key and adapted.config["adapter"] == "bn_adapt"
    # the ensemble takes the one score cell beside each seed's trained member
    for seed in (0, 1):
        assert cells[f"outside/mixed/{seed}"].config["members"] == [cells[f"simple_cnn/none/{seed}"].key, score.key]
    # new data is a new cell; --cells on an adapted score cell brings its base
    other = next(c for c in expand_cells(parse_matrix(matrix), "fp-other") if c.config["kind"] == "score")
    assert other.key != score.key
    chosen = select_cells(list(cells.values()), ["mine.keras+*"])
    assert [cell_label(c) for c in chosen] == ["mine.keras/external/0", "mine.keras+bn_adapt/external/0"]
