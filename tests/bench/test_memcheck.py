"""The memory check before a run loads its data: one line naming the option, the need and what the machine has."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robustbench_cells.bench import memcheck
from robustbench_cells.bench.memcheck import available_memory, check_run_memory, run_data_bytes
from robustbench_cells.bench.rundata import prepare_run_data
from robustbench_cells.data.formats import DataPeek, npz
from robustbench_cells.errors import CellbenchError

TINY = Path(__file__).parent / "tiny_plugins"
FRACTIONS = (0.7, 0.1, 0.2)


@pytest.fixture
def npz_path(tmp_path) -> Path:
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((100, 32, 32, 3), np.uint8), labels=np.arange(100) % 4)
    return path


def test_estimate_follows_the_run_data_path():
    peek = DataPeek(n=100, height=32, width=32, load_bytes=100 * 32 * 32 * 3)
    run = 100 * 64 * 64 * 3
    shift = 20 * 64 * 64 * 3  # the 20% test split (no own split)
    # resized set + its split parts + the shift subset beats source + resized and the load itself
    assert run_data_bytes(peek, 64, FRACTIONS, None) == 2 * run + shift
    assert run_data_bytes(peek, 64, FRACTIONS, 5) == 2 * run + 5 * 64 * 64 * 3  # max_images caps the subset
    # no resize: the load's own peak counts when it is the largest (an npz converted on load)
    fat = DataPeek(n=100, height=32, width=32, load_bytes=10 ** 9, n_test=10)
    assert run_data_bytes(fat, None, FRACTIONS, None) == 10 ** 9
    # shrinking: the source set and the resized one side by side
    big = DataPeek(n=10, height=1000, width=1000, load_bytes=10 * 1000 * 1000 * 3)
    assert run_data_bytes(big, 32, FRACTIONS, None) == 10 * 1000 * 1000 * 3 + 10 * 32 * 32 * 3


def test_enlarging_too_far_names_image_size_and_both_amounts(npz_path):
    with pytest.raises(CellbenchError) as info:
        check_run_memory(f"npz:{npz_path}", 1024, FRACTIONS, None, available=500_000_000)
    # 2 x 100 x 1024^2 x 3 (the resized set and its parts) + 20 x 1024^2 x 3 (the shift subset)
    assert str(info.value) == (f"image_size = 1024: 100 images of npz:{npz_path} at 1024x1024 px need about "
                               "692.1 MB of memory, but this machine has 500.0 MB available; use a smaller image_size")


def test_a_data_set_too_big_names_the_data(npz_path):
    with pytest.raises(CellbenchError, match=r"^data = 'npz:.*d\.npz': 100 images .* at 32x32 px need about "
                                             r"[\d.]+ KB of memory, but this machine has 1.0 KB available"):
        check_run_memory(f"npz:{npz_path}", None, FRACTIONS, None, available=1000)


def test_enough_memory_unknown_memory_and_unknown_sizes_pass(npz_path):
    check_run_memory(f"npz:{npz_path}", 64, FRACTIONS, None, available=10 ** 9)
    check_run_memory("tinyblobs:100", 4096, FRACTIONS, None, available=1)  # a plugin format: not checked
    check_run_memory(object(), 4096, FRACTIONS, None, available=1)  # a Dataset in memory: nothing to prevent


def test_prepare_run_data_stops_before_decoding(npz_path, monkeypatch):
    monkeypatch.setattr(memcheck, "available_memory", lambda: 50_000_000)
    monkeypatch.setattr(npz, "_read_npz", lambda *a: pytest.fail("the images were read"))
    with pytest.raises(CellbenchError, match="image_size = 512: .* 50.0 MB available"):
        prepare_run_data(f"npz:{npz_path}", 512)


def test_cli_run_exits_2_with_one_line(cli, npz_path, tmp_path, monkeypatch):
    monkeypatch.setenv("CELLBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(memcheck, "available_memory", lambda: 50_000_000)
    matrix = tmp_path / "m.toml"
    matrix.write_text(f'name = "big"\ndata = "npz:{npz_path}"\nimage_size = 512\nmodels = ["tiny_cnn"]\n'
                      'augmentations = ["none"]\n[train]\nepochs = 1\n')
    code, _, stderr = cli("--plugins-dir", TINY, "run", matrix, "--out", tmp_path / "run", "-q")
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: image_size = 512: 100 images of npz:") and "Traceback" not in stderr
    assert "available; use a smaller image_size" in lines[-1]


def test_available_memory_reads_meminfo_and_caps_by_the_cgroup(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2000000 kB\n")
    assert memcheck._meminfo_available(str(meminfo)) == 2000000 * 1024
    assert memcheck._meminfo_available(str(tmp_path / "missing")) is None
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.max").write_text("1000000000\n")
    (v2 / "memory.current").write_text("600000000\n")
    (v2 / "memory.stat").write_text("anon 400000000\ninactive_file 100000000\n")
    assert memcheck._cgroup_available(v2) == 1000000000 - (600000000 - 100000000)  # page cache is reclaimable
    (v2 / "memory.max").write_text("max\n")
    assert memcheck._cgroup_available(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
    assert memcheck._cgroup_available(v1) is None
    assert memcheck._cgroup_available(tmp_path / "none") is None
    monkeypatch.setattr(memcheck, "_meminfo_available", lambda: 5000)
    monkeypatch.setattr(memcheck, "_cgroup_available", lambda: 3000)
    assert available_memory() == 3000
    monkeypatch.setattr(memcheck, "_meminfo_available", lambda: None)
    monkeypatch.setattr(memcheck, "_cgroup_available", lambda: None)
    monkeypatch.setattr(memcheck, "_sysconf_total", lambda: None)
    assert available_memory() is None  # and check_run_memory then lets the run start
