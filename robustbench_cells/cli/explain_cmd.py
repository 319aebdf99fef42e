"""``cellbench explain RUN_DIR --target SPEC [--labels] [--out DIR] [--json]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from robustbench_cells.cli.console import console, err_console

#: How many rows of each table the terminal shows (``--json`` and ``--out`` carry everything).
SHOW_STATISTICS = 12
SHOW_NEAREST = 10


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}"


def _signed_points(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}"


def render(result: dict[str, Any]) -> None:
    """Print the explain result as rich tables (coverage first: it says how far to trust the rest)."""
    cov = result.get("coverage")
    if cov:
        style = {"inside": "green", "edge": "bold yellow", "outside": "bold red"}[cov["status"]]
        console.print(f"[{style}]coverage: {cov['message']}[/]")
        console.print(f"  nearest benchmarked set {cov['distance']:.2f} away vs {cov['typical_distance']:.2f} between "
                      f"benchmarked shifts (x{cov['ratio']:.1f}); {cov['uncovered_share']:.0%} of target images have no "
                      f"close reference image (~5 % expected); intervals widened x{cov['scale']:.1f}")
    fp = result["fingerprint"]
    table = Table(title=f"target vs validation: most unusual statistics ({result['n_target']} target images)")
    for col in ("statistic", "catches", "validation median", "target median", "z", "outside val 1-99%"):
        table.add_column(col, justify="left" if col in ("statistic", "catches") else "right")
    for row in fp["statistics"][:SHOW_STATISTICS]:
        z = row["z"]
        style = "bold red" if abs(z) > 3 else "yellow" if abs(z) > 1.5 else ""
        table.add_row(row["statistic"], row["catches"], f"{row['val_median']:.4g}", f"{row['target_median']:.4g}",
                      f"[{style}]{z:+.2f}[/]" if style else f"{z:+.2f}", f"{row['outside']:.0%}")
    console.print(table)

    table = Table(title="nearest shifted sets (distance: RMS robust z of the set summaries)")
    for col in ("rank", "shift", "severity", "family", "distance", "share of target images"):
        table.add_column(col, justify="right" if col in ("rank", "severity", "distance", "share of target images") else "left")
    for i, c in enumerate(fp["nearest"][:SHOW_NEAREST], 1):
        table.add_row(str(i), c["shift"], str(c["severity"]), c["family"], f"{c['distance']:.2f}", f"{c['share']:.0%}")
    console.print(table)

    table = Table(title="shift families, most likely first")
    for col in ("family", "nearest member", "distance", "share", "score"):
        table.add_column(col, justify="left" if col in ("family", "nearest member") else "right")
    for f in fp["families"]:
        table.add_row(f["family"], f"{f['nearest_shift']}@{f['nearest_severity']}", f"{f['distance']:.2f}",
                      f"{f['share']:.0%}", f"{f['score']:.2f}")
    console.print(table)

    checks = result.get("data_checks", {})
    if checks.get("leakage_count"):
        console.print(f"[bold red]leakage:[/] {checks['leakage_count']} target image(s) with near-duplicates "
                      "in the training data: " + ", ".join(Path(x["target"]).name for x in checks["leakage"][:5]))
    else:
        console.print("leakage: no target image has a near-duplicate in the training data")
    n_out = checks.get("outlier_count", 0)
    console.print(f"outliers: {n_out} target image{'' if n_out == 1 else 's'} unlike the rest of the target"
                  + (": " + ", ".join(Path(o['path']).name for o in checks["outliers"][:5]) if checks.get("outliers") else "")
                  + f"; {checks.get('unlike_validation', 0):.0%} lie outside the validation bulk")

    estimators = result["estimators"]
    seeds = {c["seed"] for c in result["cells"]}
    table = Table(title="estimated target accuracy per cell (%)" + (" (error in points)" if result["labels"] else ""))
    table.add_column("cell (model/augmentation" + ("/seed)" if len(seeds) > 1 else ")"), overflow="fold")
    table.add_column("val", justify="right")
    for name in estimators:
        table.add_column(name, justify="right", overflow="fold", min_width=6)
    if result["labels"]:
        table.add_column("true", justify="right", style="bold")
    choice = result["recommendation"].get("choice")
    default = result.get("default_estimator")
    if default:
        calib = result["calibration"]["estimators"][default]
        cov_txt = "-" if calib["interval_coverage"] is None else f"{calib['interval_coverage']:.0%}"
        console.print(f"default estimator: [bold]{default}[/] (leave-one-family-out error {calib['mae']:.1f} points over "
                      f"{len(calib['families'])} families; 80 % intervals held {cov_txt} of held-out cases)")
        side = Table(title="leave-one-family-out on this run's shifted sets, per estimator")
        for col in ("estimator", "error (points)", "80 % interval held"):
            side.add_column(col, justify="left" if col == "estimator" else "right")
        for name, e in sorted(result["calibration"]["estimators"].items(), key=lambda kv: kv[1]["mae"]):
            held = "-" if e["interval_coverage"] is None else f"{e['interval_coverage']:.0%}"
            side.add_row(f"[bold]{name}[/]" if name == default else name, f"{e['mae']:.1f}", held)
        console.print(side)
        side = Table(title=f"estimated target accuracy by {default} with its interval (%)")
        side.add_column("cell", overflow="fold")
        for col in ("estimate", "interval"):
            side.add_column(col, justify="right")
        for c in result["cells"]:
            iv = c["intervals"].get(default)
            side.add_row(f"{c['model']}/{c['augmentation']}/{c['seed']}", _pct(c["estimates"].get(default)),
                          "-" if iv is None else f"{iv[0] * 100:.0f}..{iv[1] * 100:.0f}")
        console.print(side)
    else:
        console.print("[yellow]no leave-one-family-out calibration (no stored shifted predictions): "
                      "estimates below have no intervals[/]")
    for c in result["cells"]:
        cells = [_pct(c["estimates"].get(n)) for n in estimators]
        if result["labels"]:
            cells = [f"{_pct(c['estimates'].get(n))}\n({_signed_points(c['errors'].get(n))})" for n in estimators]
            cells.append(_pct(c.get("true_accuracy")))
        label = f"{c['model']}/{c['augmentation']}" + (f"/{c['seed']}" if len(seeds) > 1 else "")
        table.add_row(f"[bold green]{label}[/]" if c["key"] == choice else label, _pct(c["val_accuracy"]), *cells)
    console.print(table)
    if result.get("estimator_errors"):
        table = Table(title="estimators against the true accuracy")
        for col in ("estimator", "mean abs error (points)", "Spearman over cells"):
            table.add_column(col, justify="left" if col == "estimator" else "right")
        for name, e in result["estimator_errors"].items():
            table.add_row(name, "-" if e["mae"] is None else f"{e['mae']:.1f}",
                          "-" if e["spearman"] is None else f"{e['spearman']:.2f}")
        console.print(table)

    if result.get("adapters"):
        table = Table(title=f"test-time adapters on this target, by {default} (%)")
        for col in ("base cell", "adapter", "adapted", "base", "gain (points)", "verdict"):
            table.add_column(col, justify="left" if col in ("base cell", "adapter", "verdict") else "right")
        if result["labels"]:
            table.add_column("true gain", justify="right", style="bold")
        for a in result["adapters"]:
            iv = a["interval"]
            row = [a["base_cell"], a["adapter"],
                   _pct(a["estimate"]) + ("" if iv is None else f" ({iv[0] * 100:.0f}..{iv[1] * 100:.0f})"),
                   _pct(a["base_estimate"]), _signed_points(a["gain"]),
                   {True: "[green]helps[/]", False: "[red]hurts[/]", None: "unclear"}[a["helps"]]]
            table.add_row(*row, *([_signed_points(a.get("true_gain"))] if result["labels"] else []))
        console.print(table)

    rec = result["recommendation"]
    if rec.get("choice"):
        picked = next(c for c in result["cells"] if c["key"] == choice)
        adapter = picked.get("adapter", "none")
        console.print(f"[bold]submit:[/] {picked['model']} / {picked['augmentation']} / seed {picked['seed']} "
                      + (f"with the test-time adapter chain [bold]{adapter}[/] " if adapter != "none" else "")
                      + f"(cell {choice[:10]}; confidence {rec['confidence']})")
        if "lower_bound" in rec:
            console.print(f"  expected {rec['lower_bound']:.0%}..{rec['upper_bound']:.0%} by {rec['estimator']}"
                          + ("" if rec.get("supported") else " [bold red](not supported by the evidence)[/]"))
        console.print(f"  why: {rec['reason']}")
    for s in rec.get("augmentations", [])[:5]:
        if s["tried"]:
            gain = "" if s["gain_over_none"] is None else f", {_signed_points(s['gain_over_none'])} points over none"
            console.print(f"  augmentation {s['augmentation']}: {_pct(s['matched_accuracy'])}% on the matching shifts{gain}")
        else:
            console.print(f"  untried augmentation of a matching family: {s['augmentation']} ({s['family']})")


def explain_command(
    run_dir: Path = typer.Argument(..., help="A run folder made by `cellbench run`."),
    target: str = typer.Option(..., "--target", "-t", help="The target set: folder:PATH (flat or class folders), npz:PATH, ..."),
    labels: bool = typer.Option(False, "--labels", help="The target carries labels: show true accuracy and each estimate's error."),
    out: Path | None = typer.Option(None, "--out", help="Also write explain.json into this folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole result as one JSON object."),
    reference_images: int = typer.Option(200, "--reference-images", min=20, help="Validation images fingerprinted per shifted set."),
    neighbours: int = typer.Option(3, "--neighbours", min=1, help="Nearest shifted sets averaged by the shift-matched estimate."),
) -> None:
    """What kind of shift is TARGET, and what accuracy should each trained cell expect there (no labels needed)."""
    from robustbench_cells.explain.core import ExplainOptions, explain

    options = ExplainOptions(reference_images=reference_images, neighbours=neighbours,
                             labels=labels)
    progress = None if as_json else (lambda msg: err_console.print(f"[dim]{msg}[/]"))
    result = explain(run_dir, target, options, progress=progress)
    from robustbench_cells.explain.report_section import save_result

    saved = save_result(run_dir, result)  # `cellbench report` shows it in its Explain section
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "explain.json").write_text(json.dumps(result, indent=1))
    if as_json:
        print(json.dumps(result))
        return
    render(result)
    console.print(f"saved {saved} (shown by `cellbench report {run_dir}`)"
                  + (f" and {out / 'explain.json'}" if out is not None else ""))


def register(app: typer.Typer) -> None:
    """Add ``explain`` (its HTML report section is a built-in report section, default_plugins/reports.py)."""
    app.command("explain")(explain_command)
