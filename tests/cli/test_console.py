"""The shared consoles print user text verbatim: no emoji codes, no markup from data or errors."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("spec, shown", [
    ("synthetic:abc", "synthetic:abc"),
    ("synthetic:100:blurr=2", "synthetic:100:blurr=2"),
])
def test_error_text_is_printed_verbatim(cli, tmp_path, spec, shown):
    code, _, err = cli("data", "inspect", spec, "--out", tmp_path / "o")
    assert code == 2
    assert err.startswith(f"error: {shown}") and err.count("\n") == 1


def test_consoles_do_not_replace_emoji_codes():
    from robustbench_cells.cli.console import console, err_console

    for con in (console, err_console):
        with con.capture() as cap:
            con.print(":abc: :100: :smile:")
        assert cap.get().strip() == ":abc: :100: :smile:"


def test_user_text_helper_keeps_brackets():
    from rich.table import Table

    from robustbench_cells.cli.console import console, user_text

    table = Table()
    table.add_column("class")
    table.add_row(user_text("[bold]x[/bold] [red]"))
    with console.capture() as cap:
        console.print(table)
    assert "[bold]x[/bold] [red]" in cap.get()
