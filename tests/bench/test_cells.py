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
