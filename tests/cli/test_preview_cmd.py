"""``cellbench preview augmentation``: writes a grid; user mistakes exit 2 with one line."""

from __future__ import annotations

import pytest

from robustbench_cells.cli.preview_cmd import parse_augmentation
from robustbench_cells.errors import CellbenchError


def test_preview_writes_a_png(tmp_path, cli):
    out = tmp_path / "grid.png"
    code, stdout, err = cli("preview", "augmentation", "simple+mixup", "--data", "synthetic:24", "--out", out,
                            "-n", "3", "-k", "2", "-O", "simple.rotation=15")
    assert code == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in stdout


@pytest.mark.parametrize("args, message", [
    (("preview", "augmentation", "simpel"), "unknown augmentation 'simpel'"),
    (("preview", "augmentation", "simple", "-O", "rotaton=3"), "'rotaton'"),
    (("preview", "augmentation", "simple", "-O", "rotation=lots"), "option 'rotation'"),
    (("preview", "augmentation", "simple+mixup", "-O", "alpha=1"), "say which augmentation"),
])
def test_preview_user_errors(tmp_path, cli, args, message):
    code, _, err = cli(*args, "--out", tmp_path / "x.png", "--data", "synthetic:8")
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_parse_augmentation_options():
    assert parse_augmentation("simple", ["zoom=(0.8, 1.2)", "flip=horizontal"]) == [
        {"name": "simple", "zoom": (0.8, 1.2), "flip": "horizontal"}]
    assert parse_augmentation("simple,cutmix", ["cutmix.alpha=0.5"]) == [{"name": "simple"},
                                                                        {"name": "cutmix", "alpha": 0.5}]
    with pytest.raises(CellbenchError, match="KEY=VALUE"):
        parse_augmentation("simple", ["rotation"])


def test_parse_augmentation_reads_a_stored_cell_label():
    # a cell label from a run, options and all; -O adds to (or overrides) what the label says
    assert parse_augmentation("simple(flip=horizontal,rotation=30)+mixup", ["mixup.alpha=0.4", "simple.rotation=5"]) == [
        {"name": "simple", "flip": "horizontal", "rotation": 5}, {"name": "mixup", "alpha": 0.4}]
    assert parse_augmentation("none", []) == []
    with pytest.raises(CellbenchError, match="'none' takes no options"):
        parse_augmentation("none", ["alpha=1"])
    with pytest.raises(CellbenchError, match="'cutmix' is not one of simple, mixup"):
        parse_augmentation("simple+mixup", ["cutmix.alpha=1"])
    with pytest.raises(CellbenchError, match="unbalanced"):
        parse_augmentation("simple(rotation=3", [])


def test_preview_mask_and_overview(tmp_path, cli):
    for command in (("preview", "mask", "-n", "4"), ("preview", "overview", "--names", "simple", "-k", "2")):
        out = tmp_path / f"{command[1]}.png"
        code, stdout, err = cli(*command, "--data", "synthetic:16", "--out", out)
        assert code == 0, err
        assert out.read_bytes()[:4] == b"\x89PNG"
    code, _, err = cli("preview", "overview", "--names", "zzz*", "--data", "synthetic:8", "--out", tmp_path / "o.png")
    assert code == 2 and "matches no augmentation" in err
    code, _, err = cli("preview", "mask", "--data", "synthetic:8", "--out", tmp_path / "o.jpg")
    assert code == 2 and "must be a .png" in err
