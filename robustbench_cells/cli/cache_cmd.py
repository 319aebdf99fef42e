"""``cellbench cache info`` and ``cellbench cache clear``: what the shift cache holds, and freeing it."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from robustbench_cells.errors import CellbenchError

cache_app = typer.Typer(help="The on-disk cache of shifted test sets ($CELLBENCH_CACHE/shifts).",
                        no_args_is_help=True)

SHIFTS_HELP = "fnmatch pattern on shift names (the cache's folder names), e.g. 'jpeg*'."


@cache_app.command("info")
def info_command(shifts: str = typer.Option("*", "--shifts", help=SHIFTS_HELP)) -> None:
    """Sets and bytes per shift, and which files are stale (can no longer be used) and why."""
    from robustbench_cells.bench import cache_admin as ca
    from robustbench_cells.bench.shiftsets import ShiftCache
    from robustbench_cells.cli.console import console

    cache = ShiftCache()
    entries = ca.scan(cache, shifts)
    console.print(f"shift cache: {ca.describe_root(cache)}")
    if not entries:
        console.print("empty" if shifts == "*" else f"no files for --shifts {shifts!r}")
        return
    table = Table()
    for col, justify in (("shift", "left"), ("files", "right"), ("size", "right"), ("stale files", "right"),
                         ("stale size", "right")):
        table.add_column(col, justify=justify)
    by_shift: dict[str, list[int]] = {}
    for e in entries:
        acc = by_shift.setdefault(e.shift, [0, 0, 0, 0])
        acc[0] += 1
        acc[1] += e.size
        if e.status == ca.STALE:
            acc[2] += 1
            acc[3] += e.size
    for name, (n, size, n_stale, stale_size) in by_shift.items():
        table.add_row(name, str(n), ca.human_size(size), str(n_stale), ca.human_size(stale_size))
    console.print(table)
    total = sum(e.size for e in entries)
    console.print(f"total: {ca.count(len(entries), 'file')}, {ca.human_size(total)}")
    for status, label in ((ca.STALE, "stale (never used again by this installation)"),
                          (ca.UNKNOWN, "unknown (kept by --stale)"), (ca.WRITING, "being written (never removed)")):
        groups = ca.summary(entries, status)
        if groups:
            files = sum(n for n, _ in groups.values())
            console.print(f"{label}: {ca.count(files, 'file')}, {ca.human_size(sum(b for _, b in groups.values()))}")
            for reason, (n, size) in groups.items():
                console.print(f"  {n} x {reason} ({ca.human_size(size)})")
    if any(e.status == ca.STALE for e in entries):
        console.print("`cellbench cache clear --stale` removes the stale files; current ones are kept.")


@cache_app.command("clear")
def clear_command(
    stale_only: bool = typer.Option(False, "--stale", help="Remove only files the cache can no longer use."),
    shifts: str = typer.Option("*", "--shifts", help=SHIFTS_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete cached shifted sets (all of them, or with --stale only the unusable ones).

    Current sets are regenerated, identically, the next time a run needs them. Files a run may be
    writing right now are never removed.
    """
    from robustbench_cells.bench import cache_admin as ca
    from robustbench_cells.bench.shiftsets import ShiftCache
    from robustbench_cells.cli.console import console

    cache = ShiftCache()
    entries = ca.removable(ca.scan(cache, shifts), stale_only)
    what = "stale file" if stale_only else "file"
    if not entries:
        console.print(f"no {what}s to remove in {ca.describe_root(cache)}")
        return
    size = ca.human_size(sum(e.size for e in entries))
    if not yes:
        if not sys.stdin.isatty():
            raise CellbenchError(f"cache clear: would remove {ca.count(len(entries), what)} ({size}); "
                                 "add --yes to confirm when not at a terminal")
        typer.confirm(f"remove {ca.count(len(entries), what)} ({size}) from {cache.root}?", abort=True)
    files, freed = ca.remove(entries)
    console.print(f"removed {ca.count(files, what)}, {ca.human_size(freed)} freed, from {cache.root}")


def register(app: typer.Typer) -> None:
    """Add the ``cache`` command group."""
    app.add_typer(cache_app, name="cache")
