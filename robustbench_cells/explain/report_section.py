"""The "Explain" section of the HTML report: every saved ``cellbench explain`` result of the run.

``cellbench explain`` saves each result as ``RUN_DIR/explain/<target>.json``; ``cellbench report``
then shows, per target, the most likely shift families, the nearest shifted sets, the per-cell
estimates (and true accuracy when the target had labels) and the recommendation.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from robustbench_cells.atomic import atomic_path

RESULTS_FOLDER = "explain"


def result_path(run_dir: str | Path, target: str) -> Path:
    """Where the result for *target* is saved inside the run folder (a file-name-safe slug)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", target).strip("_")[:80] or "target"
    return Path(run_dir) / RESULTS_FOLDER / f"{slug}.json"


def save_result(run_dir: str | Path, result: dict[str, Any]) -> Path:
    """Write *result* to :func:`result_path` (atomically) and return the path."""
    path = result_path(run_dir, str(result.get("target", "target")))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    return path


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}"


def _iv(interval: list[float] | None) -> str:
    return "" if interval is None else f" [{interval[0] * 100:.0f}..{interval[1] * 100:.0f}]"


def _signed(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:+.1f}"


def _helps(v: bool | None) -> str:
    """An adapter verdict in words (``adapter_effects``: lower bound above the base / upper bound below)."""
    return {True: "helps", False: "hurts", None: "unclear"}[v]


def result_fragment(result: dict[str, Any]) -> str:
    """HTML for one explain result (tables built with the report's own helpers)."""
    from robustbench_cells.report.html import _table, esc

    fp = result["fingerprint"]
    parts = []
    cov = result.get("coverage")
    if cov:
        # First and plain: whether the numbers below mean anything for this target.
        parts.append(f"<p class=\"{'note' if cov['status'] != 'inside' else 'meta'}\"><b>Coverage ({esc(cov['status'])}):</b> "
                     f"{esc(cov['message'])}. Nearest benchmarked set {cov['distance']:.2f} away vs "
                     f"{cov['typical_distance']:.2f} between benchmarked shifts; {cov['uncovered_share']:.0%} of target "
                     f"images have no close reference image; intervals widened x{cov['scale']:.1f}.</p>")
    parts += [f"<p class=\"meta\">target <code>{esc(result['target'])}</code>, {result['n_target']} images"
             + (", with labels" if result.get("labels") else ", no labels") + "</p>"]
    parts.append("<h3>Most likely shift families</h3>")
    parts.append(_table(["family", "nearest member", "distance", "share of target images"],
                        [[f["family"], f"{f['nearest_shift']}@{f['nearest_severity']}", f"{f['distance']:.2f}",
                          f"{f['share']:.0%}"] for f in fp["families"][:6]], {2, 3}))
    parts.append("<h3>Most unusual statistics (target vs validation)</h3>")
    parts.append(_table(["statistic", "catches", "validation median", "target median", "z", "outside val 1-99%"],
                        [[r["statistic"], r["catches"], f"{r['val_median']:.4g}", f"{r['target_median']:.4g}",
                          f"{r['z']:+.2f}", f"{r['outside']:.0%}"] for r in fp["statistics"][:8]], {2, 3, 4, 5}))
    estimators = result["estimators"]
    header = ["cell", "val"] + list(estimators) + (["true"] if result.get("labels") else [])
    rows = []
    for c in result["cells"]:
        row = [f"{c['model']}/{c['augmentation']}/{c['seed']}", _pct(c["val_accuracy"])]
        row += [_pct(c["estimates"].get(e)) + _iv(c.get("intervals", {}).get(e)) for e in estimators]
        if result.get("labels"):
            row.append(_pct(c.get("true_accuracy")))
        rows.append(row)
    default = result.get("default_estimator")
    parts.append("<h3>Estimated target accuracy per cell (%, [80 % interval])</h3>")
    parts.append(f"<p class=\"meta\">default estimator: {esc(default)} (lowest leave-one-family-out error on this run)</p>"
                 if default else "<p class=\"note\">no leave-one-family-out calibration: no intervals</p>")
    parts.append(_table(header, rows, set(range(1, len(header)))))
    if result.get("adapters"):
        parts.append(f"<h3>Test-time adapters on this target (by {esc(default)})</h3>")
        parts.append(_table(["base cell", "adapter", "adapted", "base", "expected gain (points)", "verdict"]
                            + (["true gain"] if result.get("labels") else []),
                            [[a["base_cell"], a["adapter"], _pct(a["estimate"]) + _iv(a["interval"]),
                              _pct(a["base_estimate"]), f"{a['gain'] * 100:+.1f}", _helps(a["helps"])]
                             + ([_signed(a.get("true_gain"))] if result.get("labels") else [])
                             for a in result["adapters"]], {2, 3, 4, 6}))
    rec = result.get("recommendation", {})
    if rec.get("choice"):
        picked = next((c for c in result["cells"] if c["key"] == rec["choice"]), None)
        if picked:
            adapter = picked.get("adapter", "none")
            parts.append(f"<p><b>Submit:</b> {esc(picked['model'])} / {esc(picked['augmentation'])} / seed "
                         f"{picked['seed']}" + (f" with the test-time adapter chain {esc(adapter)}" if adapter != "none" else "")
                         + f" (confidence {esc(rec['confidence'])}). {esc(rec['reason'])}.</p>")
    return "".join(parts)


def explain_section(ctx: Any) -> list[tuple[str, str]] | None:
    """Report section provider: one section per saved explain result of ``ctx.run_dir``."""
    if ctx.run_dir is None:
        return None
    folder = Path(ctx.run_dir) / RESULTS_FOLDER
    if not folder.is_dir():
        return None
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            result = json.loads(path.read_text())
            out.append((f"Explain: {result['target']}", result_fragment(result)))
        except (OSError, ValueError, KeyError) as exc:
            out.append((f"Explain: {path.name}", f"<p class=\"note\">unreadable explain result: {exc}</p>"))
    return out or None
