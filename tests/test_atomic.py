"""atomic.atomic_path: the target is replaced whole on success and untouched (no litter) on failure."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from robustbench_cells.atomic import atomic_path


def test_success_replaces_the_target_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "probs.npz"
    target.write_bytes(b"old")
    with atomic_path(target, ".npz") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith("probs.npz.") and tmp.suffix == ".npz"
        assert target.read_bytes() == b"old"  # readers still see the old file while writing
        np.savez(tmp, a=np.arange(3))  # savez keeps a name that already ends in .npz
    assert [p.name for p in tmp_path.iterdir()] == ["probs.npz"]
    assert np.load(target)["a"].tolist() == [0, 1, 2]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "meta.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["meta.json"]


def test_two_writers_get_distinct_temporaries(tmp_path):
    target = tmp_path / "x.bin"
    with atomic_path(target) as a, atomic_path(target) as b:
        assert a != b
        a.write_bytes(b"a")
        b.write_bytes(b"b")
    assert target.read_bytes() == b"a"  # the outer writer finished last


def test_written_files_get_the_usual_permissions(tmp_path):
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    with atomic_path(tmp_path / "atomic") as tmp:
        tmp.write_bytes(b"x")
    # what another user of a shared run folder or cache sees: not mkstemp's 0600
    assert stat.S_IMODE(os.stat(tmp_path / "atomic").st_mode) == stat.S_IMODE(os.stat(plain).st_mode)
