"""The self-contained HTML report of a run: one file, inline CSS, every image a PNG ``data:`` URI.

The report is the run header, then every registered report section in order (hook
``register_report_sections``; the built-ins in :mod:`robustbench_cells.report.html_sections`:
summary table, failures, model x augmentation heatmap, accuracy vs severity per family, targets,
family x severity table and per-class accuracy for one cell, sample images of every shift, and
the saved ``cellbench explain`` results), then any ``extra_sections`` given to :func:`build_report`.
A Python caller gets exactly the sections ``cellbench report`` draws.

A section builds ``(title, html_fragment)`` (or a list of them, or None) from a
:class:`~robustbench_cells.report.context.ReportContext`; one that raises becomes a note naming it.
Fragments are inserted as given: escape user text with :func:`esc`, embed PNGs with :func:`img_tag`.
"""

from __future__ import annotations

import base64
import html as _html
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from robustbench_cells.bench.metrics import CellSummary, RunSummary
from robustbench_cells.data.splits import one_per_class
from robustbench_cells.errors import CellbenchError, one_line
from robustbench_cells.report import figures
from robustbench_cells.report.context import ReportContext, Section, SectionResult

SectionProvider = Callable[[ReportContext], SectionResult]

#: Images per shift in the sample grid (each shown clean and at severities 1-5).
SAMPLE_IMAGES = 2
SAMPLE_SEED = 0

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


def _samples_section(summary: RunSummary, run_dir: Path | None = None,
                     n_images: int = SAMPLE_IMAGES) -> Section | None:
    """A row of sample images (clean, severities 1-5) for every shift in the run; a note when impossible.

    The images come from the run folder's ``samples.npz`` (written by the runner); for older runs
    the data set is loaded and split again.
    """
    from robustbench_cells import plugins
    from robustbench_cells.bench.samples import load_samples

    head = "Sample images of every shift"
    if not summary.families or summary.run is None:
        return None
    try:
        shift = _shift_function()
    except ImportError as exc:
        return head, _note(f"shifted test sets are not available ({exc}); sample images skipped")
    stored = load_samples(run_dir)
    if stored is not None:
        samples, warning, origin = stored[0][one_per_class(stored[1], n_images)], "", "the shift subset of"
    else:
        try:
            samples, warning = _samples_from_data(summary, n_images)
        except CellbenchError as exc:
            return head, _note(f"{exc}; sample images skipped")
        origin = "the test split of"
    if len(samples) == 0:
        return head, _note(f"{origin} {summary.run.data_spec!r} is empty; sample images skipped")
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
    return head, body


def _built(name: str, build: SectionProvider, ctx: ReportContext) -> list[Section]:
    """What *build* returns for *ctx*, as a list; a section that raises becomes a note naming it."""
    try:
        got = build(ctx)
    except CellbenchError as exc:
        return [(name, _note(f"could not be built: {exc}"))]
    except Exception as exc:  # noqa: BLE001 - a plugin's broken section must not cost the user the whole report
        return [(name, _note(f"could not be built: {one_line(exc)}"))]
    if got is None:
        return []
    if isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], str):
        return [got]
    return list(got)


def report_sections(ctx: ReportContext, extra_sections: Iterable[Section] = ()) -> list[Section]:
    """Every section of the report for *ctx*: the registered ones by (order, name), then *extra_sections*."""
    from robustbench_cells import plugins

    specs = sorted(plugins.report_sections(), key=lambda spec: (spec.order, spec.name))
    sections: list[Section] = []
    for spec in specs:
        label = spec.name if spec.plugin in ("", "reports") else f"{spec.name} (plugin {spec.plugin})"
        sections += _built(label, spec.build, ctx)
    sections += list(extra_sections)
    return sections


def build_report(summary: RunSummary, *, run_dir: str | Path | None = None, cell: CellSummary | None = None,
                 extra_sections: Iterable[Section] = (), samples: bool = True) -> str:
    """The whole report as one HTML string: the header, then :func:`report_sections`.

    *cell* is detailed in the per-shift table and the per-class figure (default: the best cell by mean
    shifted accuracy). *samples* False skips the sample-image grid (drawn from *run_dir*'s
    ``samples.npz``, or, for older runs, from the reloaded data set).
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    if cell is None:
        cell = next((c for c in summary.done if c.mean_shifted is not None), None)
    ctx = ReportContext(summary=summary, run_dir=run_dir, cell=cell, samples=samples)
    title = esc(summary.run.name if summary.run else "run")
    parts = [_header(summary, run_dir)]
    parts += [f"<h2>{esc(heading)}</h2>{fragment}" for heading, fragment in report_sections(ctx, extra_sections)]
    parts.append('<p class="meta" style="margin-top:40px">Generated by cellbench from the stored score rows.</p>')
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
