"""Evidence for ``cellbench explain``: does the fingerprint name the injected shifts, and how close
are the label-free accuracy estimates to the truth?

Targets are built from PBC *test* images that are not in the run's shift subset (so no cell was
scored on these exact images), each with a known recipe:

    single      gaussian_noise@3 on every image (a registered shift)
    pair        half defocus_blur@4, half jpeg_compression@4
    triple      thirds: stain_shift@3, impulse_noise@3, brightness_down@4
    chain_sbn   every image: stain_shift -> gaussian_blur -> gaussian_noise, each at a random severity
                1..5 drawn per image (a chained recipe that is not in the registry)
    chain_hcj   every image: hue_shift -> contrast_down -> jpeg_compression, random severities per image
    bg_dust     half background@3, half dust@3
    clean       untouched test images (the control)
    lab_mix     thirds: lab_profile@3, od_stain@3, camera@3 (the lab-shift family)
    lab_chain   every image: magnification -> plasma_tint -> low_res, random severities per image
    real        (full) the run's own ``[[targets]]`` (e.g. ../shared/data/crosslab/tecom96) and any
                ``--real NAME=SPEC``: real images from other labs, with their labels
    spurious    (with --spurious-run) untouched test images for models trained on a PBC copy whose
                background colour was planted per class (``make-spurious`` writes that data set)

Usage::

    python benchmarks/explain_eval.py fingerprint --size 64            # family ranking only, no models
    python benchmarks/explain_eval.py make-spurious runs/pbc_spurious64.npz --size 64
    python benchmarks/explain_eval.py full RUN_DIR [--spurious-run RUN_DIR2] [--json OUT.json]
        [--real NAME=SPEC ...] [--only NAME,NAME]

``full`` writes into RUN_DIR (the explain cache): run it on a copy of a run that is still going.
Per target it reports the default estimator's MAE and Spearman over the run's cells (adapted cells
included), the share of cells whose true accuracy lies in their 80 % interval, and whether the
recommended cell (and adapter) is within 3 points of the truly best cell, against the aims of
issue 12 (real sets: MAE <= 10, interval coverage >= 80 %; synthetic: MAE <= 5, Spearman >= 0.8;
recommendation within 3 points on >= 80 % of targets).

Figures go to stdout as markdown (paste into docs/explain.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

PBC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pbc96"
FAMILIES_OF = {}  # shift name -> family, filled from the registry


def _families() -> dict[str, str]:
    from robustbench_cells import plugins

    if not FAMILIES_OF:
        FAMILIES_OF.update({s.name: s.family for s in plugins.shifts()})
    return FAMILIES_OF


def _shift(images: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    from robustbench_cells.bench.shiftsets import shift_images

    return shift_images(images, name, severity, seed)


def _per_image_chain(images: np.ndarray, chain: list[str], rng: np.random.Generator, seed: int) -> np.ndarray:
    """Apply *chain* in order; every image gets its own random severity 1..5 at every step."""
    out = images.copy()
    for step, name in enumerate(chain):
        sev = rng.integers(1, 6, len(out))
        for s in range(1, 6):
            idx = np.flatnonzero(sev == s)
            if len(idx):
                out[idx] = _shift(out[idx], name, s, seed + 100 * step + s)
    return out


def _parts(images: np.ndarray, recipe: list[tuple[str, int]], seed: int) -> np.ndarray:
    """Split *images* into equal consecutive parts, each shifted by one (shift, severity)."""
    out = images.copy()
    bounds = np.linspace(0, len(images), len(recipe) + 1).astype(int)
    for i, (name, sev) in enumerate(recipe):
        out[bounds[i]:bounds[i + 1]] = _shift(images[bounds[i]:bounds[i + 1]], name, sev, seed + i)
    return out


def build_targets(images: np.ndarray, labels: np.ndarray, n: int, seed: int = 123) -> list[dict]:
    """The evaluation targets (name, images, labels, injected families, recipe), each from *n* images."""
    rng = np.random.default_rng(seed)
    fam = _families()
    specs = [
        ("single", [("gaussian_noise", 3)], None),
        ("pair", [("defocus_blur", 4), ("jpeg_compression", 4)], None),
        ("triple", [("stain_shift", 3), ("impulse_noise", 3), ("brightness_down", 4)], None),
        ("chain_sbn", None, ["stain_shift", "gaussian_blur", "gaussian_noise"]),
        ("chain_hcj", None, ["hue_shift", "contrast_down", "jpeg_compression"]),
        ("bg_dust", [("background", 3), ("dust", 3)], None),
        ("clean", [], None),
        ("lab_mix", [("lab_profile", 3), ("od_stain", 3), ("camera", 3)], None),
        ("lab_chain", None, ["magnification", "plasma_tint", "low_res"]),
    ]
    out = []
    for i, (name, parts, chain) in enumerate(specs):
        idx = np.sort(rng.choice(len(images), size=min(n, len(images)), replace=False))
        imgs, labs = images[idx], labels[idx]
        # Shuffle so that mixture parts are not class-sorted.
        perm = rng.permutation(len(idx))
        imgs, labs = imgs[perm], labs[perm]
        if chain is not None:
            shifted = _per_image_chain(imgs, chain, rng, 1000 + i)
            injected = sorted({fam[c] for c in chain})
            recipe = " -> ".join(f"{c}@U(1..5)" for c in chain)
        elif parts:
            shifted = _parts(imgs, parts, 1000 + i)
            injected = sorted({fam[p] for p, _ in parts})
            recipe = " | ".join(f"{p}@{s}" for p, s in parts)
        else:
            shifted, injected, recipe = imgs, ["clean"], "none"
        out.append({"name": name, "images": shifted, "labels": labs, "injected": injected, "recipe": recipe})
    return out


def _pbc_split(split: str, size: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    from robustbench_cells.data.resize import resize_images
    from robustbench_cells.data.specs import load_dataset
    from robustbench_cells.data.splits import split_dataset

    ds = load_dataset(f"folder:{PBC}")
    parts = split_dataset(ds)
    part = parts[split]
    return resize_images(part.images, size), part.labels, ds.class_names


def _top3(families: list[dict]) -> list[str]:
    return [str(f["family"]) for f in families[:3]]


def _hit(injected: list[str], top: list[str]) -> str:
    if injected == ["real"]:
        return "-"  # a real set from another lab: nothing was injected
    if injected == ["clean"]:
        return "yes" if top and top[0] == "clean" else "no"
    found = [f for f in injected if f in top]
    return "all" if len(found) == len(injected) else ("some" if found else "none")


# -- commands --------------------------------------------------------------------------------------
def cmd_fingerprint(args: argparse.Namespace) -> None:
    """Family ranking on the targets against a validation reference, without any model."""
    from robustbench_cells import plugins
    from robustbench_cells.explain.fingerprint import Reference, image_statistics
    from robustbench_cells.explain.nearest import rank_candidates, rank_families

    t0 = time.time()
    val_x, val_y, _ = _pbc_split("val", args.size)
    test_x, test_y, _ = _pbc_split("test", args.size)
    rng = np.random.default_rng(0)
    ref = val_x[np.sort(rng.choice(len(val_x), args.reference, replace=False))]
    shifts = [s.name for s in plugins.shifts()]
    sevs = [int(s) for s in args.severities.split(",")]
    shifted = {("clean", 0): image_statistics(ref)}
    for name in shifts:
        for sev in sevs:
            shifted[(name, sev)] = image_statistics(_shift(ref, name, sev, 0))
    reference = Reference.from_stats(shifted[("clean", 0)])
    print(f"reference: {len(ref)} val images x {len(shifts)} shifts x severities {sevs} "
          f"({time.time() - t0:.0f} s)", file=sys.stderr)
    rows = []
    for t in build_targets(test_x, test_y, args.n):
        cands = rank_candidates(image_statistics(t["images"]), shifted, _families(), reference)
        fams = rank_families(cands)
        top = _top3(fams)
        rows.append((t["name"], t["recipe"], ", ".join(t["injected"]), ", ".join(top),
                     f"{cands[0].shift}@{cands[0].severity}", _hit(t["injected"], top)))
    print("| target | recipe | injected families | top-3 families | nearest set | injected in top 3 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def cmd_make_spurious(args: argparse.Namespace) -> None:
    """A PBC copy (train/val/test kept) whose *train and val* backgrounds are tinted by class.

    Test images keep their natural background, so a model that learned the tint loses accuracy there
    while validation (tinted like train) still looks excellent -- the 99 % vs 26 % story.
    """
    from robustbench_cells.data.resize import resize_images
    from robustbench_cells.data.specs import load_dataset
    from robustbench_cells.ops.mask import cell_mask

    ds = load_dataset(f"folder:{PBC}")
    images = resize_images(ds.images, args.size)
    # One tint per class, strong enough to be an easy shortcut, mild enough to look plausible.
    tints = np.array([[40, -20, -20], [-20, 40, -20], [-20, -20, 40], [30, 30, -30],
                      [-30, 30, 30], [30, -30, 30], [0, 0, 0], [-25, -25, -25]], np.float32)
    out = images.copy()
    chosen = np.flatnonzero(ds.split != "test")
    for start in range(0, len(chosen), 1024):
        idx = chosen[start:start + 1024]
        bg = 1.0 - cell_mask(images[idx])[..., None]
        out[idx] = np.clip(images[idx] + bg * tints[ds.labels[idx]][:, None, None, :], 0, 255).astype(np.uint8)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    # The npz loader keeps a split when the arrays are stored per split (MedMNIST layout).
    arrays = {"class_names": np.array(ds.class_names)}
    for split in ("train", "val", "test"):
        idx = np.flatnonzero(ds.split == split)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = out[idx], ds.labels[idx]
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}: {len(out)} images at {args.size}px, train/val tinted by class, test natural")


def _explain_rows(explainer, targets: list[dict]) -> list[dict]:
    from robustbench_cells.explain.target import Target

    out = []
    for t in targets:
        t0 = time.time()
        res = explainer.explain(Target(t["images"], t["labels"], [f"{t['name']}[{i}]" for i in range(len(t['images']))],
                                       t["name"]), data_checks=False)
        res["injected"], res["recipe"], res["seconds"] = t["injected"], t["recipe"], time.time() - t0
        out.append(res)
        print(f"{t['name']}: {time.time() - t0:.0f} s", file=sys.stderr)
    return out


def _test_targets(explainer, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The run's test images that are not in its shift subset (the same selection as the runner)."""
    from robustbench_cells.bench.rundata import run_data_from_config, stratified_subset

    cfg = explainer.config
    data = run_data_from_config(cfg, explainer.store.run().data_spec)
    test, shift_cfg = data.test, cfg["shifts"]
    used = (stratified_subset(test.labels, int(shift_cfg["max_images"]), int(shift_cfg["seed"]))
            if shift_cfg.get("max_images") else np.arange(len(test)))
    free = np.setdiff1d(np.arange(len(test)), used)
    return test.images[free], test.labels[free]


def _real_targets(explainer, extra: list[str]) -> list[dict]:
    """The run's own labelled ``[[targets]]`` plus ``NAME=SPEC`` sets, at the run's size and class numbering."""
    from robustbench_cells.bench.rundata import load_target

    out = [{"name": name, "images": images, "labels": labels, "injected": ["real"], "recipe": f"run target {name}"}
           for name, (images, labels, _stats) in explainer.labelled_targets().items()]
    for item in extra:
        name, sep, spec = item.partition("=")
        if not sep:
            raise SystemExit(f"--real {item!r}: expected NAME=SPEC")
        ds = load_target(spec, int(explainer.val.images.shape[1]), explainer.val.class_names, where=f"--real {name}")
        out.append({"name": name, "images": ds.images, "labels": ds.labels, "injected": ["real"], "recipe": spec})
    return out


def target_figures(result: dict) -> dict:
    """Per explained target: the default estimator's MAE (points) and Spearman over cells, the share of
    cells whose truth lies in their interval, and how far the recommended cell is from the best."""
    from robustbench_cells.explain.estimate import spearman

    default = result.get("default_estimator")
    cells = [c for c in result["cells"] if c.get("true_accuracy") is not None]
    out = {"target": result["target"], "kind": _kind(result), "default": default, "cells": len(cells),
           "coverage": result["coverage"]["status"], "mae": None, "spearman": None, "interval_coverage": None}
    pairs = [(c["estimates"].get(default), c["true_accuracy"], c["intervals"].get(default)) for c in cells]
    pairs = [p for p in pairs if p[0] is not None]
    if pairs:
        est, true = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        rho = spearman(est, true)
        out.update(mae=float(np.mean(np.abs(est - true)) * 100), spearman=None if np.isnan(rho) else rho)
        ivs = [(iv, t) for _e, t, iv in pairs if iv is not None]
        if ivs:
            out["interval_coverage"] = float(np.mean([iv[0] <= t <= iv[1] for iv, t in ivs]))
    best = max(cells, key=lambda c: c["true_accuracy"]) if cells else None
    chosen = next((c for c in cells if c["key"] == result["recommendation"].get("choice")), None)
    out["best"] = None if best is None else _label(best)
    out["best_true"] = None if best is None else best["true_accuracy"]
    out["chosen"] = None if chosen is None else _label(chosen)
    out["chosen_true"] = None if chosen is None else chosen["true_accuracy"]
    out["within_3"] = bool(chosen is not None and best["true_accuracy"] - chosen["true_accuracy"] <= 0.03)
    # Adapter verdicts: of the adapted cells with a verdict, how many have the sign of the true gain.
    verdicts = [(a["helps"], a.get("true_gain")) for a in result.get("adapters", [])
                if a["helps"] is not None and a.get("true_gain") is not None]
    out["adapter_verdicts"] = len(verdicts)
    out["adapter_verdicts_right"] = sum(bool(h) == (g > 0) for h, g in verdicts)
    return out


def _label(cell: dict) -> str:
    return f"{cell['model']}/{cell['augmentation']}"


def _kind(result: dict) -> str:
    injected = result.get("injected", [])
    if injected == ["real"]:
        return "real"
    return "lab" if "lab" in injected else "synthetic"


def _fmt(v, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def print_target_table(figures: list[dict]) -> None:
    """The per-target evidence table and the aims of issue 12, as markdown."""
    print("### Per target: default estimator, interval coverage, recommendation\n")
    print("| target | kind | coverage | default | MAE (pts) | Spearman | in interval | recommended (true) | "
          "best (true) | within 3 pts | adapter verdicts right |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for f in figures:
        iv = "-" if f["interval_coverage"] is None else f"{f['interval_coverage']:.0%}"
        chosen = "-" if f["chosen"] is None else f"{f['chosen']} ({f['chosen_true'] * 100:.1f})"
        best = "-" if f["best"] is None else f"{f['best']} ({f['best_true'] * 100:.1f})"
        verd = f"{f['adapter_verdicts_right']}/{f['adapter_verdicts']}" if f["adapter_verdicts"] else "-"
        print(f"| {f['target']} | {f['kind']} | {f['coverage']} | {f['default']} | {_fmt(f['mae'])} | "
              f"{_fmt(f['spearman'], '.2f')} | {iv} | {chosen} | {best} | {'yes' if f['within_3'] else 'no'} | {verd} |")
    print()
    for kind, mae_aim, extra in (("real", 10.0, "interval coverage >= 80 %"), ("synthetic", 5.0, "Spearman >= 0.8"),
                                 ("lab", 5.0, "Spearman >= 0.8")):
        rows = [f for f in figures if f["kind"] == kind and f["mae"] is not None]
        if not rows:
            continue
        mae = float(np.mean([f["mae"] for f in rows]))
        rhos = [f["spearman"] for f in rows if f["spearman"] is not None]
        ivs = [f["interval_coverage"] for f in rows if f["interval_coverage"] is not None]
        print(f"- {kind} targets ({len(rows)}): mean MAE {mae:.1f} points (aim <= {mae_aim:.0f}); "
              f"mean Spearman {_fmt(float(np.mean(rhos)) if rhos else None, '.2f')}; "
              f"mean interval coverage {_fmt(100 * float(np.mean(ivs)) if ivs else None, '.0f')} % (aim: {extra})")
    ok = sum(f["within_3"] for f in figures)
    print(f"- recommended cell within 3 points of the truly best: {ok}/{len(figures)} targets (aim >= 80 %)")


def cmd_full(args: argparse.Namespace) -> None:
    from robustbench_cells.explain.core import Explainer, ExplainOptions
    from robustbench_cells.explain.estimate import ESTIMATORS, spearman

    say = (lambda m: print(m, file=sys.stderr))
    explainer = Explainer(args.run_dir, ExplainOptions(labels=True, reference_images=args.reference), say)
    test_x, test_y = _test_targets(explainer, args.n)
    targets = build_targets(test_x, test_y, args.n) + _real_targets(explainer, args.real)
    if args.only:
        keep = set(args.only.split(","))
        targets = [t for t in targets if t["name"] in keep]
    results = _explain_rows(explainer, targets)
    if args.spurious_run:
        sp = Explainer(args.spurious_run, ExplainOptions(labels=True, reference_images=args.reference), say)
        sx, sy = _test_targets(sp, args.n)
        rng = np.random.default_rng(7)
        idx = np.sort(rng.choice(len(sx), min(args.n, len(sx)), replace=False))
        results += _explain_rows(sp, [{"name": "spurious", "images": sx[idx], "labels": sy[idx],
                                       "injected": ["background"], "recipe": "natural test backgrounds; train/val tinted by class"}])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))

    print("### Fingerprint: injected families in the top 3\n")
    print("| target | recipe | injected | top-3 families | nearest set (distance) | hit |")
    print("|---|---|---|---|---|---|")
    hits = 0
    for r in results:
        top = _top3(r["fingerprint"]["families"])
        near = r["fingerprint"]["nearest"][0]
        h = _hit(r["injected"], top)
        hits += h in ("all", "yes")
        print(f"| {r['target']} | {r['recipe']} | {', '.join(r['injected'])} | {', '.join(top)} | "
              f"{near['shift']}@{near['severity']} ({near['distance']:.2f}) | {h} |")
    injected = [r for r in results if r["injected"] != ["real"]]  # nothing was injected into a real set
    print(f"\nall injected families in the top 3: {hits}/{len(injected)} targets\n")

    print("### Accuracy estimates: mean absolute error (points) / Spearman over cells\n")
    print("| target | cells | true acc. range | " + " | ".join(ESTIMATORS) + " |")
    print("|---|---|---|" + "---|" * len(ESTIMATORS))
    pooled: dict[str, list[tuple[float, float]]] = {e: [] for e in ESTIMATORS}
    for r in results:
        cells = r["cells"]
        true = [c["true_accuracy"] for c in cells]
        row = [r["target"], str(len(cells)), f"{min(true) * 100:.0f}-{max(true) * 100:.0f}%"]
        for e in ESTIMATORS:
            pairs = [(c["estimates"][e], c["true_accuracy"]) for c in cells if c["estimates"].get(e) is not None]
            pooled[e] += pairs
            if not pairs:
                row.append("-")
                continue
            est, tr = np.array(pairs).T
            rho = spearman(est, tr)
            row.append(f"{np.mean(np.abs(est - tr)) * 100:.1f} / {'-' if np.isnan(rho) else f'{rho:.2f}'}")
        print("| " + " | ".join(row) + " |")
    row = ["**all**", str(sum(len(r["cells"]) for r in results)), ""]
    for e in ESTIMATORS:
        if pooled[e]:
            est, tr = np.array(pooled[e]).T
            row.append(f"**{np.mean(np.abs(est - tr)) * 100:.1f} / {spearman(est, tr):.2f}**")
        else:
            row.append("-")
    print("| " + " | ".join(row) + " |")
    print("\n(per target: MAE in accuracy points / Spearman rank correlation between estimated and true accuracy "
          "across the run's cells; **all**: pooled over every (target, cell) pair)")
    print()
    figures = [target_figures(r) for r in results]
    print_target_table(figures)
    if args.json:
        Path(args.json).with_suffix(".figures.json").write_text(json.dumps(figures, indent=1, default=float))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fingerprint", help="family ranking only (no trained models needed)")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--n", type=int, default=400, help="images per target")
    p.add_argument("--reference", type=int, default=200, help="validation images per shifted set")
    p.add_argument("--severities", default="1,3,5")
    p.set_defaults(fn=cmd_fingerprint)
    p = sub.add_parser("make-spurious", help="write the planted-background PBC copy (npz)")
    p.add_argument("out")
    p.add_argument("--size", type=int, default=64)
    p.set_defaults(fn=cmd_make_spurious)
    p = sub.add_parser("full", help="fingerprint + estimators against the truth on a trained run")
    p.add_argument("run_dir")
    p.add_argument("--spurious-run")
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--reference", type=int, default=200)
    p.add_argument("--json")
    p.add_argument("--real", action="append", default=[], metavar="NAME=SPEC",
                   help="another labelled real set to explain (the run's own [[targets]] are always included)")
    p.add_argument("--only", help="comma-separated target names to explain (default: all)")
    p.set_defaults(fn=cmd_full)
    args = parser.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
