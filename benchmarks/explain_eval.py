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
    spurious    (with --spurious-run) untouched test images for models trained on a PBC copy whose
                background colour was planted per class (``make-spurious`` writes that data set)

Usage::

    python benchmarks/explain_eval.py fingerprint --size 64            # family ranking only, no models
    python benchmarks/explain_eval.py make-spurious runs/pbc_spurious64.npz --size 64
    python benchmarks/explain_eval.py full RUN_DIR [--spurious-run RUN_DIR2] [--json OUT.json]

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
    """The run's test images that are not in its shift subset (same selection as the runner)."""
    from robustbench_cells.bench.runner import stratified_subset
    from robustbench_cells.data.splits import split_dataset

    cfg = explainer.config
    from robustbench_cells.data.resize import resize_images
    from robustbench_cells.data.specs import load_dataset

    ds = load_dataset(explainer.store.run().data_spec)
    size = int(cfg["image_size"])
    parts = split_dataset(ds, int(cfg["split"]["seed"]), tuple(cfg["split"]["fractions"]))
    test = parts["test"]
    shift_cfg = cfg["shifts"]
    used = (stratified_subset(test.labels, int(shift_cfg["max_images"]), int(shift_cfg["seed"]))
            if shift_cfg.get("max_images") else np.arange(len(test)))
    free = np.setdiff1d(np.arange(len(test)), used)
    return resize_images(test.images[free], size), test.labels[free]


def cmd_full(args: argparse.Namespace) -> None:
    from robustbench_cells.explain.core import Explainer, ExplainOptions
    from robustbench_cells.explain.estimate import ESTIMATORS, spearman

    say = (lambda m: print(m, file=sys.stderr))
    explainer = Explainer(args.run_dir, ExplainOptions(labels=True, reference_images=args.reference), say)
    test_x, test_y = _test_targets(explainer, args.n)
    results = _explain_rows(explainer, build_targets(test_x, test_y, args.n))
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
    print(f"\nall injected families in the top 3: {hits}/{len(results)} targets\n")

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
    rec_ok = 0
    for r in results:
        choice = r["recommendation"].get("choice")
        best = max(r["cells"], key=lambda c: c["true_accuracy"])
        chosen = next((c for c in r["cells"] if c["key"] == choice), None)
        if chosen is not None and best["true_accuracy"] - chosen["true_accuracy"] <= 0.02:
            rec_ok += 1
    print(f"\nrecommended cell within 2 points of the truly best cell: {rec_ok}/{len(results)} targets")


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
    p.set_defaults(fn=cmd_full)
    args = parser.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
