"""The contract modules run over what ``cellbench`` really loads: every installed entry point included."""

from __future__ import annotations

import importlib.metadata

import pytest

from robustbench_cells import plugins

LIVE = plugins.PluginHost(entry_points=True)
KINDS = ("augmentations", "shifts", "models", "adapters", "datasets")


def test_every_installed_entry_point_loads_and_registers_something():
    installed = {ep.name for ep in importlib.metadata.entry_points(group=plugins.ENTRY_POINT_GROUP)}
    loaded = {info.name: info for info in LIVE.infos if info.source == "entry point"}
    assert set(loaded) == installed
    for info in loaded.values():
        assert not info.error, info.error
        assert info.registered, f"entry point {info.name!r} registered nothing"


def test_the_registries_under_test_are_the_live_ones():
    """What the code under test reads (``plugins.augmentations()``, ...) is the host the contracts parametrise over."""
    for kind in KINDS:
        assert getattr(plugins, kind)().names() == getattr(LIVE, kind).names(), kind


def test_cellbench_hed_is_in_the_contract_run():
    try:
        importlib.metadata.distribution("cellbench-hed")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("cellbench-hed is not installed here (pip install -e plugins/cellbench-hed)")
    assert LIVE.augmentations.get("hed_jitter").plugin == "hed"
    assert LIVE.shifts.get("hed_stain").plugin == "hed"
