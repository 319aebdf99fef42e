"""The entry point: usage errors are one ``error:`` line with exit 2 like every other user error."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("args, match", [
    (["frobnicate"], "no such command 'frobnicate'"),
    (["run", "m.toml", "--bogus"], "no such option: --bogus"),
    (["run", "m.toml", "--jobs", "0"], "--jobs"),
    (["predict", "x", "y", "--batch-size", "0"], "--batch-size"),
    (["cache", "purge"], "no such command 'purge'"),
    (["run"], "missing argument"),
])
def test_usage_errors_are_one_line_exit_2(cli, args, match):
    code, out, err = cli(*args)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert match in err.lower()
    assert "╭" not in err and "Usage:" not in err and out == ""


def test_usage_error_names_the_command(cli):
    code, _, err = cli("cache", "purge")
    assert code == 2 and err.startswith("error: cellbench cache: ") and "--help" in err


def test_help_and_no_args_still_show_help(cli):
    code, out, err = cli("--help")
    assert code == 0 and "Usage" in out
    code, out, err = cli()
    assert code == 2 and "Usage" in out + err and "error:" not in err
