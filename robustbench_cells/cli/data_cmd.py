"""``cellbench data inspect DATASET``: class balance, duplicates, outliers, pictures, and a cleaned copy."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from robustbench_cells.cli.console import console, err_console, user_text
from robustbench_cells.errors import one_line
from robustbench_cells.errors import CellbenchError

def _input_path(spec: str) -> str | None:
    """The file/folder a spec reads from (``npz:``/``folder:``/bare path), or None for generated data."""
    from robustbench_cells.data.specs import parse_spec

    name, arg = parse_spec(spec)
    return arg if name in ("npz", "folder") else None


def _default_out(spec: str) -> Path:
    """``./inspect-<name>``: the data set's file/folder name, or the spec made file-name safe."""
    path = _input_path(spec)
    name = Path(path).stem if path else spec
    return Path(f"inspect-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_') or 'data'}")


def _describe(index: int, dataset) -> str:
    return user_text(dataset.paths[index]) if dataset.paths is not None else f"#{index}"


def _print_tables(out: Console, report, dataset, top: int) -> None:
    bal = report.balance
    table = Table(title=f"classes in {user_text(report.source)} ({bal.total} images)")
    for col, justify in (("class", "left"), ("images", "right"), ("share", "right")):
        table.add_column(col, justify=justify)
    for name, count in zip(bal.names, bal.counts):
        table.add_row(user_text(name), str(count), f"{100 * count / max(bal.total, 1):.1f}%")
    ratio = bal.imbalance_ratio
    table.caption = (f"imbalance ratio (largest/smallest) {ratio:.2f}" if np.isfinite(ratio)
                     else f"empty classes: {user_text(', '.join(bal.empty_classes))}")
    out.print(table)

    summary = Table(title="findings")
    summary.add_column("check")
    summary.add_column("groups", justify="right")
    summary.add_column("images", justify="right")
    summary.add_column("label conflicts", justify="right")
    for name, groups, conflicts in (("exact duplicates", report.exact_groups, report.exact_conflicts),
                                    ("near duplicates", report.near_groups, report.near_conflicts)):
        summary.add_row(name, str(len(groups)), str(sum(map(len, groups))), str(len(conflicts)))
    thr = report.outliers.threshold
    summary.add_row(f"outliers (score > {thr:.1f})" if np.isfinite(thr) else "outliers (too few images)",
                    "-", str(len(report.outliers.flagged)), "-")
    out.print(summary)

    for title, groups in (("label conflicts (exact)", report.exact_conflicts),
                          ("label conflicts (near)", report.near_conflicts)):
        if groups:
            t = Table(title=title)
            t.add_column("group")
            for g in groups[:top]:
                t.add_row(", ".join(f"{_describe(i, dataset)} ({user_text(dataset.class_names[dataset.labels[i]])})" for i in g))
            out.print(t)
    if len(report.outliers.flagged):
        t = Table(title=f"most unusual images (top {min(top, len(report.outliers.flagged))} of "
                        f"{len(report.outliers.flagged)} outliers)")
        for col in ("index", "image", "class", "score"):
            t.add_column(col, justify="right" if col in ("index", "score") else "left")
        for i in report.outliers.flagged[:top]:
            i = int(i)
            t.add_row(str(i), _describe(i, dataset), user_text(dataset.class_names[dataset.labels[i]]),
                      f"{report.outliers.scores[i]:.1f}")
        out.print(t)


def _write_figures(report, dataset, out_dir: Path, top: int) -> list[Path]:
    from robustbench_cells.data.inspection import figures

    out_dir.mkdir(parents=True, exist_ok=True)
    written = [figures.class_bar_chart(report.balance, out_dir / "class_balance.png", title=report.source)]
    if np.isfinite(report.outliers.threshold):  # else too few images to score: no ranking to show
        # The top of the ranking, flagged or not ("!" marks flagged), so a clean data set still
        # shows its most unusual images.
        ranking = report.outliers.ranking()[:top]
        flagged = set(report.outliers.flagged.tolist())
        caps = [f"{'!' if int(i) in flagged else ''}#{int(i)} s={report.outliers.scores[i]:.1f}" for i in ranking]
        written.append(figures.contact_sheet(dataset.images[ranking], caps, out_dir / "outliers.png"))
    near = report.near
    written.append(figures.pair_sheet(dataset.images, near.pairs, near.scores, dataset.labels,
                                      dataset.class_names, out_dir / "near_duplicates.png"))
    exact_pairs = np.array([[g[0], i] for g in report.exact_groups for i in g[1:]], np.int64).reshape(-1, 2)
    written.append(figures.pair_sheet(dataset.images, exact_pairs, np.ones(len(exact_pairs)), dataset.labels,
                                      dataset.class_names, out_dir / "exact_duplicates.png"))
    return [p for p in written if p is not None]


def inspect_command(
    dataset: str = typer.Argument(..., help="Data set spec: npz:PATH, folder:PATH, synthetic[:N], bloodmnist, ..."),
    out: Path | None = typer.Option(None, "--out",
                                    help="Folder for the PNGs and report.json [default: ./inspect-NAME]."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout (tables go nowhere)."),
    clean: Path | None = typer.Option(None, "--clean", help="Write a de-duplicated, outlier-free copy here "
                                      "(*.npz or a new folder) plus a CSV of what was removed and why."),
    fence: float | None = typer.Option(None, "--fence", help="Outlier threshold: Q3 + FENCE x IQR of the "
                                       "log scores [default: 6.0, calibrated on PBC]."),
    top: int = typer.Option(32, "--top", help="Outliers shown in the table and the contact sheet."),
) -> None:
    """Class balance, exact/near duplicates (and label conflicts) and outliers of DATASET, with pictures."""
    from robustbench_cells.data.inspection import inspect_dataset
    from robustbench_cells.data.inspection.clean import check_clean_target, removed_csv_path, write_clean_copy
    from robustbench_cells.data.inspection.outliers import DEFAULT_FENCE
    from robustbench_cells.data.specs import load_dataset

    fence = DEFAULT_FENCE if fence is None else fence
    if fence <= 0:
        raise CellbenchError(f"--fence must be > 0, got {fence}")
    if top < 1:
        raise CellbenchError(f"--top must be >= 1, got {top}")
    if clean is not None:  # fail before the slow part
        check_clean_target(clean, _input_path(dataset))
    out_dir = out if out is not None else _default_out(dataset)
    if out_dir.exists() and not out_dir.is_dir():
        raise CellbenchError(f"--out {out_dir}: exists and is not a folder")
    say = (lambda msg: None) if as_json else (lambda msg: err_console.print(msg, style="dim", markup=False))

    t0 = time.perf_counter()
    data = load_dataset(dataset)
    load_s = time.perf_counter() - t0
    say(f"loaded {len(data)} images from {data.source} in {load_s:.1f} s")
    report = inspect_dataset(data, fence=fence, progress=say)
    report.seconds["load"] = load_s
    result = report.to_json()
    # the results first: a figure that fails to draw must not lose what was computed
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(result, indent=1))
    try:
        figures = _write_figures(report, data, out_dir, top)
    except Exception as exc:  # noqa: BLE001 - reported, the tables and report.json stand
        err_console.print(f"warning: figures not written: {one_line(exc)}", markup=False)
        figures = []
    result["figures"] = [str(p) for p in figures]
    if clean is not None:
        plan = report.removal_plan()
        written, removed_csv = write_clean_copy(data, plan, clean)
        result["clean"] = {"out": str(written), "kept": len(data) - len(plan), "removed_csv": str(removed_csv),
                           "removed": [{"index": i, "reason": r} for i, r in sorted(plan.items())]}
    report.seconds["total"] = time.perf_counter() - t0
    result["seconds"] = {k: round(v, 2) for k, v in report.seconds.items()}
    (out_dir / "report.json").write_text(json.dumps(result, indent=1))

    if as_json:
        typer.echo(json.dumps(result))
        return
    _print_tables(console, report, data, top)
    if clean is not None:
        kinds: dict[str, int] = {}
        for reason in plan.values():
            kind = reason.split(" of #")[0].split(" (")[0]  # "exact duplicate", "near duplicate", "outlier"
            kinds[kind] = kinds.get(kind, 0) + 1
        what = ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in kinds.items()) or "nothing"
        console.print(f"clean copy: {clean} ({len(data) - len(plan)} images kept; removed {what}; "
                      f"reasons in {removed_csv_path(Path(clean))})", markup=False)
    console.print(f"pictures and report.json in {out_dir}/ ({result['seconds']['total']:.1f} s)", markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group (``data inspect``); a fresh sub-app per build of *app*."""
    data_app = typer.Typer(name="data", no_args_is_help=True, help="Look at a data set before training on it.")
    data_app.command("inspect")(inspect_command)
    app.add_typer(data_app, name="data")
