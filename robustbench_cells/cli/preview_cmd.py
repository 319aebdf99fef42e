"""``cellbench preview augmentation NAME``: a grid of original images and augmented copies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer

from robustbench_cells.augchain import AugmentationChain, augmentation_label, parse_value
from robustbench_cells.plotting import plain_text
from robustbench_cells.cli.preview_io import check_png, load_preview_data, save_figure, show_image
from robustbench_cells.data.splits import one_per_class
from robustbench_cells.errors import CellbenchError

preview_app = typer.Typer(help="Preview training augmentations on real images.", no_args_is_help=True)


def parse_augmentation(name: str, options: list[str]) -> list[dict[str, Any]]:
    """An augmentation label (``"simple+mixup"``, ``"simple,mixup"``, ``"simple(rotation=30)"``, see
    :meth:`AugmentationChain.from_label`) plus ``KEY=VALUE`` / ``NAME.KEY=VALUE`` options -> the
    pipeline's list of ``{"name": ..., **options}`` tables. Values are read by
    :func:`~robustbench_cells.augchain.parse_value`: Python literals (``0.5``, ``(0.8, 1.2)``,
    ``['noise']``) or plain strings."""
    if not name.strip():
        raise CellbenchError("augmentation NAME is empty (see `cellbench ls augmentations`)")
    tables = AugmentationChain.from_label(name).tables()
    names = [t["name"] for t in tables]
    for item in options:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise CellbenchError(f"--option {item!r}: expected KEY=VALUE (or NAME.KEY=VALUE)")
        if not tables:
            raise CellbenchError(f"--option {item!r}: augmentation {name!r} takes no options")
        key = key.strip()
        target, _, opt = key.rpartition(".")
        if target:
            matches = [t for t in tables if t["name"] == target]
            if not matches:
                raise CellbenchError(f"--option {item!r}: {target!r} is not one of {', '.join(names)}")
        elif len(tables) == 1:
            matches = tables
        else:
            raise CellbenchError(f"--option {item!r}: say which augmentation, e.g. {names[0]}.{key}=...")
        for table in matches:
            table[opt] = parse_value(raw)
    return tables


@plain_text()  # class and file names are user text, never mathtext
def augmentation_grid(images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...],
                      augmentation: list[dict[str, Any]], copies: int = 5, seed: int = 0, cell_inches: float = 1.0):
    """A matplotlib figure: row = image, column 0 = original, columns 1..copies = augmented draws.

    Batch augmentations (MixUp/CutMix) mix within the shown images; their soft label is printed
    under each copy.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robustbench_cells.pipeline import apply_batch_steps, apply_image_steps, resolve_augmentation

    steps = resolve_augmentation(augmentation)
    n, c = len(images), len(class_names)
    onehot = np.zeros((n, c), np.float32)
    onehot[np.arange(n), labels] = 1.0
    columns = []
    for j in range(copies):
        rng = np.random.default_rng([seed, j])
        x = apply_image_steps(steps, images, rng).astype(np.float32)
        x, y = apply_batch_steps(steps, x, onehot, rng)
        columns.append((np.clip(np.rint(x), 0, 255).astype(np.uint8), y))
    mixed = any(s.spec.kind == "batch" for s in steps)
    fig, axes = plt.subplots(n, copies + 1, figsize=((copies + 1) * cell_inches + 0.8, n * cell_inches * (1.15 if mixed else 1) + 0.5),
                             squeeze=False)
    for r in range(n):
        panels = [(images[r], None)] + [(col[0][r], col[1][r]) for col in columns]
        for k, (img, y) in enumerate(panels):
            show_image(axes[r, k], img, ("original" if k == 0 else f"draw {k}") if r == 0 else None)
            if mixed and y is not None:
                top = np.argsort(y)[::-1][:2]
                axes[r, k].set_xlabel(" ".join(f"{class_names[t][:4]}:{y[t]:.2f}" for t in top if y[t] > 0.005), fontsize=6)
        axes[r, 0].set_ylabel(class_names[labels[r]], fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(augmentation_label(augmentation), fontsize=9)
    fig.tight_layout(pad=0.3)
    return fig


@preview_app.command("augmentation")
def augmentation_command(
    name: str = typer.Argument(..., help="Augmentation name, or several joined by '+': simple+mixup; "
                                         "options in a label work too: 'simple(rotation=30)+mixup'."),
    out: Path = typer.Option(..., "--out", "-o", help="PNG file to write."),
    data: str = typer.Option("synthetic", "--data", help="Data set spec (synthetic, folder:PATH, npz:PATH, ...)."),
    count: int = typer.Option(8, "--count", "-n", help="How many images (rows); one per class in turn."),
    copies: int = typer.Option(5, "--copies", "-k", help="Augmented draws per image (columns)."),
    option: list[str] = typer.Option([], "--option", "-O",
                                     help="KEY=VALUE option (NAME.KEY=VALUE when several); repeatable."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the draws."),
) -> None:
    """Write a grid of original images and augmented copies (rows = images, columns = draws)."""
    from robustbench_cells.cli.console import console

    check_png(out)
    if not 1 <= count <= 64:
        raise CellbenchError(f"--count {count}: must be 1..64")
    if not 1 <= copies <= 16:
        raise CellbenchError(f"--copies {copies}: must be 1..16")
    augmentation = parse_augmentation(name, option)
    from robustbench_cells.pipeline import resolve_augmentation

    resolve_augmentation(augmentation)  # fail on a bad name/option before loading data
    dataset = load_preview_data(data)
    sel = one_per_class(dataset.labels, count)
    fig = augmentation_grid(dataset.images[sel], dataset.labels[sel], dataset.class_names, augmentation,
                            copies=copies, seed=seed)
    save_figure(fig, out)
    console.print(f"wrote {out} ({len(sel)} images x {copies} draws of {augmentation_label(augmentation)}, data {data})")


@plain_text()  # class and file names are user text, never mathtext
def mask_overlay_grid(images: np.ndarray, titles: list[str], columns: int = 8, cell_inches: float = 1.1):
    """Figure: each image with its :func:`~robustbench_cells.ops.mask.cell_mask` tinted green and outlined."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robustbench_cells.ops.mask import cell_mask

    masks = cell_mask(images)
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * cell_inches, rows * cell_inches + 0.3), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (img, m) in enumerate(zip(images, masks)):
        tint = img.astype(np.float32)
        tint = tint * (1 - 0.35 * m[..., None]) + np.array([0, 255, 0], np.float32) * 0.35 * m[..., None]
        edge = cv2.morphologyEx((m > 0.5).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
        tint[edge] = (255, 255, 0)
        ax = axes.ravel()[i]
        ax.imshow(tint.astype(np.uint8), interpolation="nearest")
        ax.set_title(titles[i], fontsize=6)
    fig.tight_layout(pad=0.2)
    return fig


@preview_app.command("mask")
def mask_command(
    out: Path = typer.Option(..., "--out", "-o", help="PNG file to write."),
    data: str = typer.Option("synthetic", "--data", help="Data set spec (synthetic, folder:PATH, npz:PATH, ...)."),
    count: int = typer.Option(32, "--count", "-n", help="How many images; one per class in turn."),
) -> None:
    """Write a grid of images with the white-cell mask (used by the background augmentation/shift) overlaid."""
    from robustbench_cells.cli.console import console

    check_png(out)
    if not 1 <= count <= 256:
        raise CellbenchError(f"--count {count}: must be 1..256")
    dataset = load_preview_data(data)
    sel = one_per_class(dataset.labels, count)
    fig = mask_overlay_grid(dataset.images[sel], [dataset.class_names[k][:12] for k in dataset.labels[sel]])
    save_figure(fig, out)
    console.print(f"wrote {out} ({len(sel)} images with cell masks, data {data})")


@preview_app.command("overview")
def overview_command(
    out: Path = typer.Option(..., "--out", "-o", help="PNG file to write."),
    data: str = typer.Option("synthetic", "--data", help="Data set spec (synthetic, folder:PATH, npz:PATH, ...)."),
    names: str = typer.Option("*", "--names", help="fnmatch pattern on augmentation names or families."),
    copies: int = typer.Option(6, "--copies", "-k", help="Augmented draws per augmentation (columns)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the draws."),
) -> None:
    """Write one row per registered augmentation (default options): an original image and its draws."""
    from robustbench_cells import plugins
    from robustbench_cells.cli.console import console

    check_png(out)
    specs = [s for s in plugins.augmentations().list(names) if s.name != "none"]
    if not specs:
        raise CellbenchError(f"--names {names!r}: matches no augmentation (see `cellbench ls augmentations`)")
    dataset = load_preview_data(data)
    sel = one_per_class(dataset.labels, max(copies, 2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robustbench_cells.pipeline import apply_batch_steps, apply_image_steps, resolve_augmentation

    images = dataset.images[sel]
    onehot = np.eye(dataset.num_classes, dtype=np.float32)[dataset.labels[sel]]
    fig, axes = plt.subplots(len(specs), copies + 1, figsize=((copies + 1) * 1.0 + 1.2, len(specs) * 1.0 + 0.4),
                             squeeze=False)
    for r, spec in enumerate(specs):
        steps = resolve_augmentation(spec.name)
        # Image ops: draws of the first image; batch ops: the first image mixed with the others.
        batch = np.repeat(images[:1], copies, axis=0) if spec.kind == "image" else images[:copies]
        x = apply_image_steps(steps, batch, np.random.default_rng([seed, r])).astype(np.float32)
        x, _ = apply_batch_steps(steps, x, onehot[:copies], np.random.default_rng([seed, r]))
        panels = [images[0]] + list(np.clip(np.rint(x), 0, 255).astype(np.uint8))
        for k, img in enumerate(panels):
            show_image(axes[r, k], img, ("original" if k == 0 else f"draw {k}") if r == 0 else None)
        axes[r, 0].set_ylabel(f"{spec.name}\n({spec.kind})", fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.3)
    save_figure(fig, out)
    console.print(f"wrote {out} ({len(specs)} augmentations x {copies} draws, data {data})")


def register(app: typer.Typer) -> None:
    """Add the ``preview`` command group."""
    app.add_typer(preview_app, name="preview")
