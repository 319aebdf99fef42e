"""The contract tests run over the LIVE registry: what ``cellbench`` itself loads, entry points included.

The suite's conftest turns installed third-party plugins off (``CELLBENCH_NO_ENTRY_POINTS=1``) so
other tests see only the built-ins; here they are turned back on, so an installed plugin such as
``cellbench-hed`` must pass the same contract as the built-ins. Each contract module parametrises
over ``plugins.PluginHost(entry_points=True)`` (what ``plugins.get_host()`` builds outside the test
suite) at collection and lists its exclusions, each with its reason, in ``EXCLUDED``.
"""

from __future__ import annotations

import pytest

from robustbench_cells import plugins


@pytest.fixture(autouse=True)
def _entry_points_on(_fresh_plugins, monkeypatch):
    """The process-wide registries (what the code under test reads) include the entry points too."""
    monkeypatch.delenv(plugins.NO_ENTRY_POINTS_ENV, raising=False)
    plugins.reset()
    yield
    plugins.reset()
