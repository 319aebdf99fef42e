"""The plugin core: built-ins, inline/dir/entry-point plugins, clashes, misspelled hooks, listing."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from robustbench_cells import hookimpl, plugins
from robustbench_cells.errors import CellbenchError
from robustbench_cells.registry import ShiftSpec


def _invert(images, param, rng):
    return (255 - images).astype(np.uint8)


class InlineShiftPlugin:
    @hookimpl
    def register_shifts(self, register):
        register(ShiftSpec(name="test_invert", family="photometric", fn=_invert, severities=(1, 2, 3, 4, 5)))


def test_builtins_are_loaded_as_plugins():
    host = plugins.get_host()
    sources = {i.name: i.source for i in host.infos}
    for name in ("datasets", "augmentations", "shifts", "models"):
        assert sources[name] == "built-in"


def test_inline_plugin_registers_and_is_stamped():
    host = plugins.PluginHost(entry_points=False, extra_plugins=[("inline_shift", InlineShiftPlugin())])
    spec = host.shifts.get("test_invert")
    assert spec.plugin == "inline_shift"
    out = spec.apply(np.zeros((2, 8, 8, 3), np.uint8), 3, np.random.default_rng(0))
    assert out.dtype == np.uint8 and (out == 255).all()
    assert spec.apply(np.zeros((2, 8, 8, 3), np.uint8), 0, np.random.default_rng(0)).max() == 0
    assert "test_invert" in host.shifts.names("test_*")


def test_duplicate_name_names_both_plugins():
    with pytest.raises(CellbenchError, match="registered twice.*'first'.*'second'"):
        plugins.PluginHost(entry_points=False, builtins=False,
                           extra_plugins=[("first", InlineShiftPlugin()), ("second", InlineShiftPlugin())])


def test_misspelled_hook_is_caught_at_load_time():
    class Typo:
        @hookimpl
        def register_shift(self, register):  # missing "s"
            pass

    with pytest.raises(CellbenchError, match="'typo'.*register_shift"):
        plugins.PluginHost(entry_points=False, builtins=False, extra_plugins=[("typo", Typo())])


def test_unknown_name_suggests_close_matches():
    host = plugins.PluginHost(entry_points=False, extra_plugins=[("inline_shift", InlineShiftPlugin())])
    with pytest.raises(CellbenchError, match="did you mean: test_invert"):
        host.shifts.get("test_invrt")


def _write_plugin(folder, name="myplug", body=None):
    body = body or '''
        import numpy as np
        from robustbench_cells import hookimpl
        from robustbench_cells.registry import ShiftSpec

        def _fn(images, param, rng):
            return images

        @hookimpl
        def register_shifts(register):
            register(ShiftSpec(name="dir_shift", family="noise", fn=_fn, severities=(1, 2, 3, 4, 5)))
    '''
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


def test_plugins_dir_via_cli_and_env(tmp_path, cli, monkeypatch):
    _write_plugin(tmp_path)
    code, out, err = cli("--plugins-dir", tmp_path, "ls", "shifts", "dir_*")
    assert code == 0, err
    assert "dir_shift" in out
    plugins.reset()
    monkeypatch.setenv("CELLBENCH_PLUGINS_DIR", str(tmp_path))
    code, out, _ = cli("plugins")
    assert code == 0 and "myplug" in out and "dir" in out


def test_broken_plugin_file_is_reported_by_name(tmp_path, cli):
    _write_plugin(tmp_path, "broken", "import does_not_exist_anywhere\n")
    code, out, err = cli("--plugins-dir", tmp_path, "plugins")
    assert code == 0
    assert "broken" in err and "does_not_exist_anywhere" in err


def test_missing_plugins_dir_is_a_one_line_error(tmp_path, cli):
    code, _, err = cli("--plugins-dir", tmp_path / "nope", "plugins")
    assert code == 2
    assert "nope" in err and "not a directory" in err and "Traceback" not in err


def test_ls_unknown_kind_exits_2(cli):
    code, _, _ = cli("ls", "gadgets")
    assert code == 2


TINY_PLUGINS = Path(__file__).resolve().parent / "bench" / "tiny_plugins"

EVERYWHERE_MATRIX = """
name = "everywhere"
data = "tinyblobs:96"
image_size = 32
models = ["tiny_cnn"]
augmentations = ["tiny_flip"]
[train]
epochs = 1
batch_size = 32
[shifts]
include = ["tiny_*"]
severities = [1]
max_images = 16
"""


def test_a_local_plugin_appears_everywhere(tmp_path, cli, monkeypatch):
    """One plugin file adds a data set, an augmentation, two shifts and a model: each is listed,
    usable in a matrix, and shows up in the stored results and the report."""
    monkeypatch.setenv("CELLBENCH_CACHE", str(tmp_path / "cache"))
    code, out, err = cli("--plugins-dir", TINY_PLUGINS, "plugins", "--json")
    assert code == 0, err
    info = next(i for i in json.loads(out) if i["name"] == "tiny_bench")
    assert info["source"] == "dir"
    assert info["registered"] == {"data set": ["tinyblobs"], "augmentation": ["tiny_flip"],
                                  "shift": ["tiny_dim", "tiny_noise"], "model": ["tiny_cnn"]}
    for kind, name in [("datasets", "tinyblobs"), ("augmentations", "tiny_flip"), ("shifts", "tiny_noise"),
                       ("models", "tiny_cnn")]:
        code, out, err = cli("--plugins-dir", TINY_PLUGINS, "ls", kind, "tiny*", "--json")
        assert code == 0, err
        assert name in [row["name"] for row in json.loads(out)]
    matrix = tmp_path / "m.toml"
    matrix.write_text(EVERYWHERE_MATRIX)
    run_dir = tmp_path / "run"
    code, out, err = cli("--plugins-dir", TINY_PLUGINS, "run", matrix, "--out", run_dir, "-q")
    assert code == 0, err
    code, out, err = cli("--plugins-dir", TINY_PLUGINS, "report", run_dir, "--format", "json")
    assert code == 0, err
    assert "tiny_cnn" in out and "tiny_flip" in out and "tiny_dim" in out and "tiny_noise" in out


def test_plugin_calling_sys_exit_at_import_is_a_failed_plugin(tmp_path, cli):
    _write_plugin(tmp_path, "quitter", "import sys\nsys.exit(3)\n")
    _write_plugin(tmp_path)
    code, out, err = cli("--plugins-dir", tmp_path, "plugins")
    assert code == 0, err
    assert "quitter" in err and "SystemExit" in err
    assert "myplug" in out  # the rest keeps working


class InlineReportPlugin:
    """A third-party plugin adding a report format and an HTML report section."""

    @hookimpl
    def register_report_formats(self, register):
        from robustbench_cells.registry import ReportFormatSpec

        def tsv(ctx):
            return "".join(f"{c.cell.model}\t{c.mean_shifted:.3f}\n" for c in ctx.summary.done)

        register(ReportFormatSpec("tsv", "model and mean shifted, tab-separated", tsv))

    @hookimpl
    def register_report_sections(self, register):
        from robustbench_cells.registry import ReportSectionSpec

        register(ReportSectionSpec("cells_done", lambda ctx: ("Cells done", f"<p id='n'>{len(ctx.summary.done)}</p>")))


def test_a_plugin_adds_a_report_format_and_section(tmp_path, cli):
    from tests.cli.test_report_cmd import make_run

    make_run(tmp_path / "run")
    plugins._host = plugins.PluginHost(entry_points=False, extra_plugins=[("inline_report", InlineReportPlugin())])
    try:
        code, out, err = cli("plugins", "--json")
        assert code == 0, err
        infos = {i["name"]: i for i in json.loads(out)}
        assert infos["inline_report"]["registered"] == {"report format": ["tsv"], "report section": ["cells_done"]}
        assert infos["reports"]["registered"]["report format"] == ["csv", "html", "json", "markdown", "table"]
        assert "explain" in infos["reports"]["registered"]["report section"]
        code, out, err = cli("report", tmp_path / "run", "--format", "tsv")
        assert code == 0, err
        # cnn/simple: clean 0.94, losing 0.04 per severity (x1.5 under cli_noise): mean shifted 0.79, the best
        lines = out.splitlines()
        assert lines[0] == "cnn\t0.790" and [ln.split("\t")[0] for ln in lines] == ["cnn", "big", "cnn"]
        code, _, err = cli("report", tmp_path / "run", "-f", "html", "--no-samples", "--out", tmp_path / "r.html")
        assert code == 0, err
        assert "<h2>Cells done</h2><p id='n'>3</p>" in (tmp_path / "r.html").read_text()
    finally:
        plugins.reset()
    code, _, err = cli("report", tmp_path / "run", "--format", "tsv")  # the plugin is gone again
    assert code == 2 and "--format 'tsv' is not one of csv, html, json, markdown, table" in err
