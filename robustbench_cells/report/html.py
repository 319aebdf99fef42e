"""The self-contained HTML report of a run: one file, inline CSS, every image a PNG ``data:`` URI.

Sections: run header, summary table, failures, model x augmentation heatmap, accuracy vs severity
per family, family x severity table and per-class accuracy under the worst shift for one cell,
sample images of every shift, then any extra sections.

Extra sections (e.g. ``cellbench explain``) come in two ways:
- ``build_report(..., extra_sections=[(title, html_fragment), ...])`` for one report;
- :func:`register_section` for a provider ``fn(ctx: ReportContext) -> (title, html) | list | None``
  that every report calls (a provider raising :class:`CellbenchError` becomes a note, not a crash).
Fragments are inserted as given: escape user text with :func:`esc`, embed PNGs with :func:`img_tag`.
"""

from __future__ import annotations

import base64
import html as _html
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from robustbench_cells.bench.metrics import UNKNOWN_FAMILY, CellSummary, RunSummary, family_order, mean_std
from robustbench_cells.data.splits import one_per_class
from robustbench_cells.errors import CellbenchError
from robustbench_cells.report import figures
from robustbench_cells.report.tables import (
    SUMMARY_COLUMNS, fmt_params, pct, recipe_labels, severity_phrase, summary_row, unfinished_row,
)

Section = tuple[str, str]
SectionProvider = Callable[["ReportContext"], Union[Section, Iterable[Section], None]]

#: Images per shift in the sample grid (each shown clean and at severities 1-5).
SAMPLE_IMAGES = 2
SAMPLE_SEED = 0

_PROVIDERS: list[SectionProvider] = []


@dataclass
class ReportContext:
    """What a section provider gets: the run's metrics, the run folder and the cell the report details."""

    summary: RunSummary
    run_dir: Path | None
    cell: CellSummary | None


def register_section(provider: SectionProvider) -> SectionProvider:
    """Add a section provider to every report (usable as a decorator; registering twice is a no-op)."""
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)
    return provider


def unregister_section(provider: SectionProvider) -> None:
    """Remove a provider added with :func:`register_section`."""
    if provider in _PROVIDERS:
        _PROVIDERS.remove(provider)


def esc(text: object) -> str:
    """HTML-escape *text* (quotes too)."""
    return _html.escape(str(text), quote=True)


def img_tag(png: bytes, alt: str, css_class: str = "") -> str:
    """An ``<img>`` with *png* embedded as a base64 data URI."""
    data = base64.b64encode(png).decode("ascii")
    cls = f' class="{esc(css_class)}"' if css_class else ""
    return f'<img{cls} alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def _note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1240px;
color:#1d1d1f;background:#fff;padding:0 16px}
h1{font-size:1.6em;margin-bottom:4px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}th,td{padding:4px 8px;border-bottom:1px solid #eee}
th{background:#f4f5f7;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.fam td{font-weight:600;background:#fafafa}tr.failed td{color:#b00020}
.meta{color:#555;font-size:13px}.note{color:#8a5300;background:#fff7e6;padding:6px 10px;border-radius:4px}
img{max-width:100%;height:auto}img.strip{image-rendering:pixelated}.def{font-size:13px;color:#444}
code{background:#f4f5f7;padding:1px 4px;border-radius:3px}
"""


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int],
           row_classes: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        tds = "".join(f'<td class="n">{esc(v)}</td>' if j in numeric else f"<td>{esc(v)}</td>"
                      for j, v in enumerate(row))
        body.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _header(summary: RunSummary, run_dir: Path | None) -> str:
    run = summary.run
    done = len(summary.done)
    failed = sum(c.cell.status == "failed" for c in summary.cells)
    if run is None:
        return "<h1>cellbench report</h1>"
    versions = ", ".join(f"{k} {v}" for k, v in sorted(run.versions.items()))
    created = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(run.created))
    return (f"<h1>cellbench report: {esc(run.name)}</h1><p class=\"meta\">run folder <code>{esc(run_dir or '-')}"
            f"</code> &middot; created {esc(created)} &middot; data <code>{esc(run.data_spec)}</code> "
            f"(fingerprint {esc(run.data_fingerprint)}, {len(run.class_names)} classes) &middot; "
            f"{done} of {len(summary.cells)} cells done, {failed} failed<br>{esc(versions)}</p>")


def _summary_section(summary: RunSummary) -> str:
    from robustbench_cells.report.tables import target_column, target_names

    columns = list(SUMMARY_COLUMNS) + [target_column(t) for t in target_names(summary)]  # a column per target
    numeric = {i for i, c in enumerate(columns)
               if c in ("params", "seed", "clean val", "clean test", "mean shifted", "gap", "rBE", "ECE shifted")
               or c.startswith("target ")}
    labels = recipe_labels(summary)
    rows = [[summary_row(c, labels[c.key]).get(col, "-") for col in columns] for c in summary.done]
    classes = [""] * len(rows)
    for c in summary.not_done:
        rows.append([unfinished_row(c, labels[c.key]).get(col, "-") for col in columns])
        classes.append("failed" if c.cell.status == "failed" else "")
    metric = esc(summary.metric_label)
    out = [f"<h2>Summary: clean vs shifted test {metric} (%)</h2>",
           f'<p class="def">Best mean shifted {metric} first. <b>mean shifted</b> = mean test {metric} over every '
           f"(shift, {esc(severity_phrase(summary))}) set; <b>worst family</b> = the family with the lowest mean; <b>gap</b> = clean "
           "val &minus; mean shifted; <b>rBE</b> = relative balanced error against the reference cell (1 = as "
           "robust, &lt;1 = more robust); <b>ECE</b> = expected calibration error, mean over shifted sets.</p>",
           _table(columns, rows, numeric, classes)]
    failed = [c for c in summary.cells if c.cell.status == "failed"]
    if failed:
        out.append("<h3>Failed cells</h3><ul>" + "".join(
            f"<li><code>{esc(c.key[:10])}</code> {esc(c.cell.model)}/{esc(c.cell.augmentation)} seed "
            f"{c.cell.seed}: {esc(c.cell.error or 'no error recorded')}</li>" for c in failed) + "</ul>")
    return "".join(out)


def _grid_section(summary: RunSummary) -> str:
    models, augs, values = summary.grid()
    if not values:
        return "<h2>Model x augmentation</h2>" + _note("no finished cell has shifted scores yet")
    rows = []
    for m in models:
        row = [m]
        for a in augs:
            v = values.get((m, a))
            row.append("-" if not v else pct(mean_std(v)[0]) + (f" ±{100 * mean_std(v)[1]:.1f}" if len(v) > 1 else ""))
        rows.append(row)
    return (f"<h2>Model x augmentation: mean shifted test {esc(summary.metric_label)} (%)</h2>"
            + img_tag(figures.heatmap_png(summary), f"heatmap of mean shifted {summary.metric_label}")
            + _table(["model", *augs], rows, set(range(1, len(augs) + 1))))


def _curves_section(summary: RunSummary) -> str:
    if not summary.families:
        return ""
    shown = [c for c in summary.done if c.mean_shifted is not None][: figures.MAX_CURVES]
    return ("<h2>Accuracy vs severity per shift family</h2>"
            f'<p class="def">Mean test {esc(summary.metric_label)} over the family\'s shifts at each severity; '
            "severity 0 is the "
            f"clean test set. The {len(shown)} best cells by mean shifted accuracy.</p>"
            + img_tag(figures.severity_curves_png(summary, shown), "accuracy vs severity per family"))


def _cell_section(summary: RunSummary, cell: CellSummary | None) -> str:
    if cell is None or not cell.per_shift:
        return ""
    rows = cell.test_rows()
    sevs = sorted({sev for (_, sev) in rows if sev > 0})
    table_rows, classes = [], []
    for family in family_order(summary.families.get(s, UNKNOWN_FAMILY) for s in cell.per_shift):
        shifts = [s for s in cell.per_shift if summary.families.get(s, UNKNOWN_FAMILY) == family]
        fam = []
        for sev in sevs:
            v = [cell.value(rows[(s, sev)]) for s in shifts if (s, sev) in rows]
            fam.append(pct(sum(v) / len(v)) if v else "-")
        table_rows.append([family, *fam, pct(cell.per_family.get(family))])
        classes.append("fam")
        for s in shifts:
            table_rows.append([f"\u2003{s}", *[pct(cell.value(rows[(s, sev)])) if (s, sev) in rows else "-"
                                               for sev in sevs], pct(cell.per_shift[s])])
            classes.append("")
    c = cell.cell
    title = f"{c.model}/{c.augmentation} seed {c.seed} ({fmt_params(c.params)} parameters, key {c.key[:10]})"
    return (f"<h2>Cell detail: {esc(title)}</h2>"
            f'<p class="def">Clean val {pct(cell.clean_val)}%, clean test {pct(cell.clean_test)}%, mean shifted '
            f"{pct(cell.mean_shifted)}%; worst family <b>{esc(cell.worst_family)}</b>, worst shift "
            f"<b>{esc(cell.worst_shift)}</b>.</p>"
            + _table(["family / shift", *[f"s{s}" for s in sevs], "mean"], table_rows,
                     set(range(1, len(sevs) + 2)), classes)
            + "<h3>Per-class accuracy under the worst shift</h3>"
            + img_tag(figures.per_class_png(cell, summary.class_names), "per-class accuracy under the worst shift"))


def _shift_function() -> Callable[[np.ndarray, str, int, int], np.ndarray]:
    """``shift_images`` of the shifted-test-set module: the exact images the benchmark scored."""
    from robustbench_cells.bench.shiftsets import shift_images

    return shift_images


def _run_split(summary: RunSummary) -> dict | None:
    """The split the run used: ``runs.config["split"]``, else a cell's ``config["split"]``, else None."""
    config = summary.run.config if summary.run else {}
    if isinstance(config.get("split"), dict):
        return config["split"]
    return next((c.cell.config["split"] for c in summary.cells if isinstance(c.cell.config.get("split"), dict)), None)


def _prepare_like_the_run(dataset, summary: RunSummary):
    """The run's test split at the run's image size, through the one run-data path (bench/rundata.py)."""
    from robustbench_cells.bench.rundata import prepare_run_data
    from robustbench_cells.data.splits import test_part

    size = (summary.run.config if summary.run else {}).get("image_size")
    split = _run_split(summary)
    if split is not None:
        data = prepare_run_data(dataset, size if isinstance(size, int) else None, int(split.get("seed", 0)),
                                tuple(split.get("fractions", (0.7, 0.1, 0.2))))
        return data.dataset, data.test
    dataset = dataset.resized(size) if isinstance(size, int) else dataset
    return dataset, test_part(dataset)


def _samples_from_data(summary: RunSummary, n_images: int) -> tuple[np.ndarray, str]:
    """Sample test images by reloading and re-splitting the run's data set (runs older than
    ``samples.npz``): ``(images, warning html)``; raises CellbenchError with the reason it cannot."""
    from robustbench_cells.data.specs import load_dataset

    assert summary.run is not None
    spec = summary.run.data_spec
    try:
        dataset = load_dataset(spec)
    except (CellbenchError, OSError) as exc:
        raise CellbenchError(f"data set {spec!r} is not available here ({exc})") from None
    try:
        dataset, test = _prepare_like_the_run(dataset, summary)
    except CellbenchError as exc:
        raise CellbenchError(f"cannot split {spec!r} as the run did ({exc})") from None
    warning = ""
    if dataset.fingerprint() != summary.run.data_fingerprint:
        warning = _note(f"the data at {spec!r} has changed since the run (fingerprint "
                        f"{dataset.fingerprint()}, the run had {summary.run.data_fingerprint}): these samples "
                        "come from the current data")
    return test.images[one_per_class(test.labels, n_images)], warning


def _samples_section(summary: RunSummary, run_dir: Path | None = None, n_images: int = SAMPLE_IMAGES) -> str:
    """A row of sample images (clean, severities 1-5) for every shift in the run; a note when impossible.

    The images come from the run folder's ``samples.npz`` (written by the runner); for older runs
    the data set is loaded and split again.
    """
    from robustbench_cells import plugins
    from robustbench_cells.bench.samples import load_samples

    head = "<h2>Sample images of every shift</h2>"
    if not summary.families or summary.run is None:
        return ""
    try:
        shift = _shift_function()
    except ImportError as exc:
        return head + _note(f"shifted test sets are not available ({exc}); sample images skipped")
    stored = load_samples(run_dir)
    if stored is not None:
        samples, warning, origin = stored[0][one_per_class(stored[1], n_images)], "", "the shift subset of"
    else:
        try:
            samples, warning = _samples_from_data(summary, n_images)
        except CellbenchError as exc:
            return head + _note(f"{exc}; sample images skipped")
        origin = "the test split of"
    if len(samples) == 0:
        return head + _note(f"{origin} {summary.run.data_spec!r} is empty; sample images skipped")
    shift_config = summary.run.config.get("shifts")
    seed = int(shift_config.get("seed", SAMPLE_SEED)) if isinstance(shift_config, dict) else SAMPLE_SEED
    rows, notes = [], []
    for family in summary.family_list:
        for name in sorted(n for n, f in summary.families.items() if f == family):
            if name not in plugins.shifts():
                notes.append(name)
                continue
            try:
                per_image = [[img] for img in samples]
                for sev in range(1, 6):
                    shifted = shift(samples, name, sev, seed)
                    for k in range(len(samples)):
                        per_image[k].append(shifted[k])
            except CellbenchError as exc:
                notes.append(f"{name} ({exc})")
                continue
            strip = figures.image_strip_png([im for group in per_image for im in group], group=6)
            rows.append(f"<tr><td>{esc(family)}</td><td>{esc(name)}</td>"
                        f"<td>{img_tag(strip, f'{name}: clean and severities 1-5', 'strip')}</td></tr>")
    body = (f'<p class="def">{len(samples)} image(s) from {origin} {esc(summary.run.data_spec)} at '
            f"{samples.shape[2]}x{samples.shape[1]} px, each shown clean then at severities 1 to 5 (the generator "
            f"and seed {seed} the benchmark scored with).</p>{warning}"
            "<table><thead><tr><th>family</th><th>shift</th><th>clean, s1 … s5</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")
    if notes:
        body += _note("not shown (shift not registered here, or it failed): " + ", ".join(notes))
    return head + body


def _extra(ctx: ReportContext, extra_sections: Iterable[Section]) -> str:
    sections: list[Section] = list(extra_sections)
    for provider in list(_PROVIDERS):
        try:
            got = provider(ctx)
        except CellbenchError as exc:
            sections.append((getattr(provider, "__name__", "section"), _note(f"could not be built: {exc}")))
            continue
        if got is None:
            continue
        if isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], str):
            sections.append(got)
        else:
            sections.extend(got)
    return "".join(f"<h2>{esc(title)}</h2>{fragment}" for title, fragment in sections)


def build_report(summary: RunSummary, *, run_dir: str | Path | None = None, cell: CellSummary | None = None,
                 extra_sections: Iterable[Section] = (), samples: bool = True) -> str:
    """The whole report as one HTML string.

    *cell* is detailed in the per-shift table and the per-class figure (default: the best cell by mean
    shifted accuracy). *samples* False skips the sample-image grid (drawn from *run_dir*'s
    ``samples.npz``, or, for older runs, from the reloaded data set).
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    if cell is None:
        cell = next((c for c in summary.done if c.mean_shifted is not None), None)
    ctx = ReportContext(summary=summary, run_dir=run_dir, cell=cell)
    title = esc(summary.run.name if summary.run else "run")
    parts = [
        _header(summary, run_dir), _summary_section(summary), _grid_section(summary), _curves_section(summary),
        _cell_section(summary, cell), _samples_section(summary, run_dir) if samples else "", _extra(ctx, extra_sections),
        '<p class="meta" style="margin-top:40px">Generated by cellbench from the stored score rows.</p>',
    ]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>cellbench report: {title}</title>'
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>\n")


def write_report(summary: RunSummary, path: str | Path, **kwargs) -> Path:
    """Write :func:`build_report` to *path* (parent folders created) and return the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(build_report(summary, **kwargs), encoding="utf-8")
    except OSError as exc:
        raise CellbenchError(f"{path}: cannot write the report ({exc.strerror or exc})") from None
    return path
