"""Matrix TOML: validation errors a user sees, expansion into cells, keys, --cells selection, shipped files."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustbench_cells import plugins
from robustbench_cells.bench.matrix import cell_label, expand_cells, load_matrix, select_cells
from robustbench_cells.errors import CellbenchError

TINY = Path(__file__).parent / "tiny_plugins"
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

GOOD = """
name = "t"
data = "tinyblobs:80"
image_size = 32
seeds = [0, 1]
models = ["tiny_cnn", { name = "tiny_cnn", options = { width = 8 }, train = { epochs = 2 } }]
augmentations = ["none", "tiny_flip"]
[train]
epochs = 1
batch_size = 16
[shifts]
include = ["tiny_*"]
severities = [1, 3]
max_images = 40
[[ensembles]]
name = "pair"
members = ["tiny_cnn/none", "tiny_cnn/tiny_flip"]
"""


@pytest.fixture(autouse=True)
def tiny_plugins():
    plugins.configure(plugins_dirs=[TINY])


def write(tmp_path, text, name="m.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_matrix_expands_to_model_x_aug_x_seed_plus_ensembles(tmp_path):
    m = load_matrix(write(tmp_path, GOOD))
    assert m.shifts == ["tiny_dim", "tiny_noise"] and m.severities == [1, 3] and m.max_shift_images == 40
    assert m.shift_sets == (("tiny_dim", 1), ("tiny_dim", 3), ("tiny_noise", 1), ("tiny_noise", 3))  # every cell kind scores these, in this order
    cells = expand_cells(m, "fp1")
    train = [c for c in cells if c.config["kind"] == "train"]
    assert len(train) == 2 * 2 * 2  # models x augmentations x seeds
    labels = [cell_label(c) for c in cells]
    assert "tiny_cnn(width=8)/tiny_flip/1" in labels and "pair/mixed/0" in labels and "pair/mixed/1" in labels
    assert len({c.key for c in cells}) == len(cells)
    # per-model recipe overrides reach the cell config; the rest comes from [train]
    wide = next(c for c in train if c.model.startswith("tiny_cnn(width"))
    assert wide.recipe["epochs"] == 2 and wide.recipe["batch_size"] == 16
    ens = [c for c in cells if c.config["kind"] == "ensemble"]
    assert all(len(c.config["members"]) == 2 for c in ens)


def test_duplicate_augmentation_after_normalising_is_refused(tmp_path):
    # ["tiny_flip", "none"] means tiny_flip, so it duplicates "tiny_flip"
    with pytest.raises(CellbenchError, match="augmentations: listed twice: tiny_flip"):
        load_matrix(write(tmp_path, GOOD.replace('"none", "tiny_flip"]', '"none", "tiny_flip", ["tiny_flip", "none"]]')))


def test_keys_are_stable_and_depend_on_the_full_config(tmp_path):
    m = load_matrix(write(tmp_path, GOOD))
    a = [c.key for c in expand_cells(m, "fp1")]
    assert a == [c.key for c in expand_cells(load_matrix(write(tmp_path, GOOD)), "fp1")]
    assert set(a).isdisjoint(c.key for c in expand_cells(m, "fp2"))  # other data -> other cells
    changed = load_matrix(write(tmp_path, GOOD.replace("epochs = 1", "epochs = 3")))
    b = [c.key for c in expand_cells(changed, "fp1")]
    assert a[0] != b[0]


@pytest.mark.parametrize("edit, message", [
    (("seeds = [0, 1]", "seeds = [0, 1]\nsede = 3"), r"m.toml: sede: unknown key \(did you mean: seeds\?\)"),
    (('models = ["tiny_cnn"', 'models = ["tiny_cnx"'), r"m.toml: models\[0\]: unknown model 'tiny_cnx' \(did you mean: tiny_cnn"),
    (('"none", "tiny_flip"', '"none", "tiny_flop"'), r"augmentations\[1\]: unknown augmentation 'tiny_flop' \(did you mean: tiny_flip"),
    (('include = ["tiny_*"]', 'include = ["zzz_*"]'), r"shifts.include\[0\]: pattern 'zzz_\*' matches no shift"),
    (("severities = [1, 3]", "severities = [0, 6]"), r"shifts.severities: must be a list of integers in 1..5"),
    (("max_images = 40", "max_images = -1"), r"shifts.max_images: must be an integer >= 1"),
    (("max_images = 40", "max_imgs = 40"), r"shifts.max_imgs: unknown key \(did you mean: max_images"),
    (("width = 8", "widht = 8"), r"models\[1\].options.widht: model 'tiny_cnn' has no option 'widht' \(did you mean: width"),
    (('"tiny_cnn/tiny_flip"]', '"tiny_cnn/tiny_flap"]'), r"ensembles\[0\].members\[1\]: 'tiny_cnn/tiny_flap' is not a cell"),
    (("image_size = 32", 'image_size = "big"'), r"image_size: must be an integer >= 8"),
    (('name = "t"', 'name = "t"\nexecutor = "slurm"'), r"executor: must be one of local, ray"),
    (("image_size = 32", "image_size = 16"), r"image_size: 16 is below 28, the smallest size the shifts support"),
])
def test_bad_input_is_one_line_naming_file_and_key(tmp_path, edit, message):
    text = GOOD.replace(*edit)
    assert text != GOOD
    with pytest.raises(CellbenchError, match=message) as info:
        load_matrix(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_bad_recipe_key_is_refused(tmp_path):
    with pytest.raises(CellbenchError, match="m.toml: train"):
        load_matrix(write(tmp_path, GOOD.replace("batch_size = 16", "batch_sise = 16")))


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(CellbenchError, match="matrix file not found"):
        load_matrix(tmp_path / "nope.toml")
    with pytest.raises(CellbenchError, match="not valid TOML"):
        load_matrix(write(tmp_path, "name = [unclosed"))


def test_data_override_and_select_cells(tmp_path):
    m = load_matrix(write(tmp_path, GOOD), data="tinyblobs:50")
    assert m.data == "tinyblobs:50"
    cells = expand_cells(m, "fp")
    picked = select_cells(cells, ["tiny_cnn/none/*"])
    assert [cell_label(c) for c in picked] == ["tiny_cnn/none/0", "tiny_cnn/none/1"]
    # an ensemble drags its members along
    with_members = select_cells(cells, ["pair/*/0"])
    assert sorted(cell_label(c) for c in with_members) == ["pair/mixed/0", "tiny_cnn/none/0", "tiny_cnn/tiny_flip/0"]
    with pytest.raises(CellbenchError, match="--cells nomatch: matches no cell"):
        select_cells(cells, ["nomatch"])


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_matrices_validate(path):
    plugins.reset()  # built-ins only, as a user has them
    matrix = load_matrix(path)
    assert matrix.models and matrix.augmentations
    assert expand_cells(matrix, "fingerprint")


@pytest.mark.parametrize("models, augmentations, message", [
    ('[{ name = "simple_cnn", options = { norm = "groupp" } }]', '["none"]',
     r"models\[0\].options: model 'simple_cnn': option 'norm' = 'groupp' is not one of batch, group, frozen_batch "
     r"\(did you mean: group"),
    ('[{ name = "simple_cnn", options = { dropout = "lots" } }]', '["none"]',
     r"models\[0\].options: model 'simple_cnn': option 'dropout' = 'lots' must be a number"),
    ('["simple_cnn"]', '[{ name = "augmix", severity = "high" }]',
     r"augmentations\[0\]: augmentation 'augmix': option 'severity' = 'high' must be a number"),
])
def test_option_values_are_checked_before_any_data_is_loaded(tmp_path, models, augmentations, message):
    plugins.configure()  # the built-ins
    text = (f'name = "t"\ndata = "folder:/nonexistent/never/loaded"\nimage_size = 32\nseeds = [0]\n'
            f"models = {models}\naugmentations = {augmentations}\n")
    with pytest.raises(CellbenchError, match=message) as info:
        load_matrix(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_good_option_values_pass(tmp_path):
    plugins.configure()
    text = ('name = "t"\ndata = "synthetic:80"\nimage_size = 32\nseeds = [0]\n'
            'models = [{ name = "simple_cnn", options = { norm = "group", dropout = 0 } }]\n'
            'augmentations = [{ name = "augmix", severity = 2 }]\n')
    assert load_matrix(write(tmp_path, text)).models[0].options == {"norm": "group", "dropout": 0}
