"""The plugin manager: built-ins, ``cellbench`` entry points and local ``.py`` files, loaded lazily, once.

Built-in plugins (``DEFAULT_PLUGINS``) go through exactly the same hooks as third-party ones. Use
:func:`get_host` (or the shortcuts :func:`augmentations`, :func:`shifts`, :func:`models`,
:func:`datasets`, :func:`adapters`, :func:`report_formats`, :func:`report_sections`) to reach the
registries; the first call loads everything.

Environment:
- ``CELLBENCH_PLUGINS_DIR``: extra folders of ``.py`` plugin files (``os.pathsep``-separated).
- ``CELLBENCH_NO_ENTRY_POINTS=1``: do not load installed third-party plugins (the test suite sets it).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from robustbench_cells import hookspecs
from robustbench_cells.errors import CellbenchError, one_line
from robustbench_cells.registry import (
    AdapterSpec, AugmentationSpec, DatasetSpec, ModelSpec, Registry, ReportFormatSpec, ReportSectionSpec, ShiftSpec,
)

DEFAULT_PLUGINS: tuple[str, ...] = (
    "robustbench_cells.default_plugins.datasets",
    "robustbench_cells.default_plugins.augmentations",
    "robustbench_cells.default_plugins.external_augmentations",
    "robustbench_cells.default_plugins.shifts",
    "robustbench_cells.default_plugins.models",
    "robustbench_cells.default_plugins.adapters",
    "robustbench_cells.default_plugins.reports",
)
ENTRY_POINT_GROUP = "cellbench"
PLUGINS_DIR_ENV = "CELLBENCH_PLUGINS_DIR"
NO_ENTRY_POINTS_ENV = "CELLBENCH_NO_ENTRY_POINTS"


class PluginLoadWarning(UserWarning):
    """A third-party plugin could not be loaded; the rest of cellbench still works."""


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin, as ``cellbench plugins`` shows it."""

    name: str
    source: str  # "built-in" | "entry point" | "dir"
    version: str
    location: str
    error: str = ""
    registered: dict[str, list[str]] = field(default_factory=dict)


def _builtin_version() -> str:
    from robustbench_cells import __version__

    return __version__


class PluginHost:
    """Holds the pluggy manager and the registries built from it (one per kind of plugin)."""

    def __init__(self, *, entry_points: bool = True, plugins_dirs: Sequence[str | os.PathLike] = (),
                 extra_plugins: Iterable[tuple[str, object]] = (), builtins: bool = True) -> None:
        self.pm = pluggy.PluginManager("cellbench")
        self.pm.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []
        if builtins:
            for modname in DEFAULT_PLUGINS:
                module = importlib.import_module(modname)
                self._add(module, modname.rsplit(".", 1)[-1], "built-in", _builtin_version(), modname)
        if entry_points:
            self._load_entry_points()
        for folder in plugins_dirs:
            self._load_dir(Path(folder))
        for name, obj in extra_plugins:
            self._add(obj, name, "inline", "-", repr(obj))
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            name = self.pm.get_name(exc.plugin) or "?"
            raise CellbenchError(f"plugin {name!r}: {one_line(exc, with_type=False)} (misspelled hook name?)") from None
        self.augmentations: Registry[AugmentationSpec] = Registry("augmentation")
        self.shifts: Registry[ShiftSpec] = Registry("shift")
        self.models: Registry[ModelSpec] = Registry("model")
        self.datasets: Registry[DatasetSpec] = Registry("data set")
        self.adapters: Registry[AdapterSpec] = Registry("adapter")
        self.report_formats: Registry[ReportFormatSpec] = Registry("report format")
        self.report_sections: Registry[ReportSectionSpec] = Registry("report section")
        self._collect("register_datasets", self.datasets, DatasetSpec)
        self._collect("register_augmentations", self.augmentations, AugmentationSpec)
        self._collect("register_shifts", self.shifts, ShiftSpec)
        self._collect("register_models", self.models, ModelSpec)
        self._collect("register_adapters", self.adapters, AdapterSpec)
        self._collect("register_report_formats", self.report_formats, ReportFormatSpec)
        self._collect("register_report_sections", self.report_sections, ReportSectionSpec)

    # -- loading ---------------------------------------------------------------------------------
    def _add(self, obj: object, name: str, source: str, version: str, location: str) -> None:
        if self.pm.has_plugin(name) or any(i.name == name for i in self.infos):
            other = next(i for i in self.infos if i.name == name)
            raise CellbenchError(f"two plugins are called {name!r}: {other.location} and {location}")
        try:
            self.pm.register(obj, name=name)
        except pluggy.PluginValidationError as exc:
            raise CellbenchError(f"plugin {name!r} ({location}): {one_line(exc, with_type=False)}") from None
        self.infos.append(PluginInfo(name, source, version, location))

    def _fail(self, name: str, source: str, location: str, exc: BaseException) -> None:
        message = f"plugin {name!r} ({location}) failed to load: {one_line(exc)}"
        self.infos.append(PluginInfo(name, source, "-", location, error=message))
        warnings.warn(message, PluginLoadWarning, stacklevel=3)

    def _load_entry_points(self) -> None:
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            version = ep.dist.version if ep.dist is not None else "-"
            try:
                module = ep.load()
            except (Exception, SystemExit) as exc:  # a broken third-party plugin must not take cellbench down
                self._fail(ep.name, "entry point", ep.value, exc)
                continue
            self._add(module, ep.name, "entry point", version, ep.value)

    def _load_dir(self, folder: Path) -> None:
        if not folder.is_dir():
            raise CellbenchError(f"--plugins-dir {folder}: not a directory")
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            modname = f"cellbench_local_plugins.{path.stem}"
            try:
                module = _import_file(modname, path)
            except (Exception, SystemExit) as exc:  # sys.exit() at import must not end cellbench silently
                self._fail(path.stem, "dir", str(path), exc)
                continue
            self._add(module, path.stem, "dir", getattr(module, "__version__", "-"), str(path))

    def _collect(self, hook_name: str, registry: Registry, spec_type: type) -> None:
        """Call each plugin's hook on its own so every spec is stamped with the plugin that made it."""
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():  # registration order
            plugin = impl.plugin_name

            def register(spec: Any, _plugin: str = plugin) -> None:
                if not isinstance(spec, spec_type):
                    raise CellbenchError(
                        f"plugin {_plugin!r}: {hook_name} expects {spec_type.__name__}, got {type(spec).__name__}"
                    )
                registry.register(spec, plugin=_plugin)

            try:
                impl.function(register)
            except CellbenchError:
                raise
            except Exception as exc:
                raise CellbenchError(f"plugin {plugin!r}: {hook_name} raised {one_line(exc)}") from exc
            info = next((i for i in self.infos if i.name == plugin), None)
            if info is not None:
                names = registry.by_plugin(plugin)
                if names:
                    info.registered[registry.kind] = names

    def register_commands(self, app: Any) -> None:
        """Let every plugin add commands to the typer *app*."""
        self.pm.hook.register_commands(app=app)


def _import_file(modname: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return module


_host: PluginHost | None = None
_config: dict[str, Any] = {}


def configure(*, plugins_dirs: Sequence[str | os.PathLike] | None = None, entry_points: bool | None = None) -> None:
    """Set how the next :func:`get_host` loads plugins (the CLI calls this for ``--plugins-dir``)."""
    global _host
    if plugins_dirs is not None:
        _config["plugins_dirs"] = list(plugins_dirs)
    if entry_points is not None:
        _config["entry_points"] = entry_points
    _host = None


def get_host() -> PluginHost:
    """The process-wide plugin host, created on first use."""
    global _host
    if _host is None:
        dirs = list(_config.get("plugins_dirs", []))
        env_dirs = os.environ.get(PLUGINS_DIR_ENV, "")
        dirs += [d for d in env_dirs.split(os.pathsep) if d]
        entry_points = _config.get("entry_points", os.environ.get(NO_ENTRY_POINTS_ENV, "") not in ("1", "true", "yes"))
        _host = PluginHost(entry_points=entry_points, plugins_dirs=dirs)
    return _host


def reset() -> None:
    """Forget the loaded plugins and configuration (tests use this)."""
    global _host
    _host = None
    _config.clear()


def augmentations() -> Registry[AugmentationSpec]:
    """The augmentation registry."""
    return get_host().augmentations


def shifts() -> Registry[ShiftSpec]:
    """The shift registry."""
    return get_host().shifts


def models() -> Registry[ModelSpec]:
    """The model registry."""
    return get_host().models


def datasets() -> Registry[DatasetSpec]:
    """The data set source registry."""
    return get_host().datasets


def adapters() -> Registry[AdapterSpec]:
    """The test-time adapter registry."""
    return get_host().adapters


def report_formats() -> Registry[ReportFormatSpec]:
    """The ``cellbench report --format`` registry."""
    return get_host().report_formats


def report_sections() -> Registry[ReportSectionSpec]:
    """The HTML report section registry."""
    return get_host().report_sections
