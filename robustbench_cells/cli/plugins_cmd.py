"""``cellbench plugins`` and ``cellbench ls KIND [PATTERN]``."""

from __future__ import annotations

import json
from enum import Enum

import typer
from rich.table import Table

from robustbench_cells import plugins
from robustbench_cells.cli.console import console


class Kind(str, Enum):
    augmentations = "augmentations"
    shifts = "shifts"
    models = "models"
    datasets = "datasets"
    adapters = "adapters"


def _fmt_params(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e6:.1f}M" if n >= 1_000_000 else f"{n / 1e3:.0f}k" if n >= 1000 else str(n)


def _short(value: object, width: int = 60) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 1] + "…"


def plugins_command(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List loaded plugins: name, source, version and what each registered."""
    infos = plugins.get_host().infos
    if as_json:
        console.print_json(json.dumps([info.__dict__ for info in infos]))
        return
    table = Table(title="cellbench plugins")
    for col in ("plugin", "source", "version", "registered"):
        table.add_column(col)
    for info in infos:
        what = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info.registered.items())
        table.add_row(info.name, info.source, info.version, f"[red]{info.error}[/]" if info.error else what or "-")
    console.print(table)


def ls_command(
    kind: Kind = typer.Argument(..., help="What to list."),
    pattern: str = typer.Argument("*", help="fnmatch pattern on the name or family, e.g. '*blur*'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List registered augmentations, shifts, models, data sets or adapters, filtered by PATTERN."""
    host = plugins.get_host()
    registry = getattr(host, kind.value)
    specs = registry.list(pattern)
    rows: list[dict[str, str]] = []
    for spec in specs:
        if kind is Kind.shifts:
            rows.append({"name": spec.name, "family": spec.family, "severities 1..5": _short(spec.severities),
                         "plugin": spec.plugin, "description": spec.description})
        elif kind is Kind.augmentations:
            rows.append({"name": spec.name, "family": spec.family, "runs on": spec.kind,
                         "options": _short(dict(spec.options)), "plugin": spec.plugin,
                         "description": spec.description})
        elif kind is Kind.models:
            rows.append({"name": spec.name, "family": spec.family, "params (96x96, 8 classes)": _fmt_params(spec.params),
                         "input size": f"{spec.default_input_size} (min {spec.min_input_size})",
                         "preprocessing": spec.preprocessing, "plugin": spec.plugin})
        elif kind is Kind.adapters:
            rows.append({"name": spec.name, "stage": spec.stage, "options": _short(dict(spec.options)),
                         "reference": spec.reference, "plugin": spec.plugin, "description": spec.description})
        else:
            rows.append({"name": spec.name, "example": spec.example, "plugin": spec.plugin,
                         "description": spec.description})
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title=f"{kind.value} matching {pattern!r} ({len(rows)})")
    for col in rows[0] if rows else ("name",):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row.values())
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``plugins`` and ``ls``."""
    app.command("plugins")(plugins_command)
    app.command("ls")(ls_command)
