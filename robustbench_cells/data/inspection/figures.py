"""Inspection pictures: class bar chart (matplotlib, Agg) and contact sheets (cv2 tiles with captions)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from robustbench_cells.plotting import plain_text
from robustbench_cells.data.inspection.balance import ClassBalance

_CAPTION_H = 14


@plain_text()  # class and file names are user text, never mathtext
def class_bar_chart(balance: ClassBalance, path: str | Path, title: str = "") -> Path:
    """Bar chart of images per class (with counts on the bars) as PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display here; must precede pyplot
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(balance.names) + 1.5), 3.8), dpi=100)
    bars = ax.bar(range(len(balance.names)), balance.counts, color="#5b7fb5")
    ax.bar_label(bars, labels=[str(c) for c in balance.counts], fontsize=8)
    ax.set_xticks(range(len(balance.names)), balance.names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("images")
    ratio = balance.imbalance_ratio
    ax.set_title(f"{title} (imbalance ratio {ratio:.2f})" if np.isfinite(ratio) else f"{title} (a class is empty)",
                 fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def _tile(image: np.ndarray, caption: str, scale: int) -> np.ndarray:
    img = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    strip = np.full((_CAPTION_H, img.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, caption, (2, _CAPTION_H - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([img, strip], axis=0)


def contact_sheet(images: np.ndarray, captions: Sequence[str], path: str | Path, cols: int = 8,
                  scale: int = 2, pad: int = 2) -> Path | None:
    """Tile RGB *images* (with a caption under each) into one PNG; ``None`` when there is nothing to show."""
    if len(images) == 0:
        return None
    tiles = [_tile(img, cap, scale) for img, cap in zip(images, captions)]
    th, tw = tiles[0].shape[:2]
    cols = min(cols, len(tiles))
    rows = -(-len(tiles) // cols)
    sheet = np.full((rows * (th + pad) + pad, cols * (tw + pad) + pad, 3), 200, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[pad + r * (th + pad): pad + r * (th + pad) + th, pad + c * (tw + pad): pad + c * (tw + pad) + tw] = tile
    path = Path(path)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return path


def pair_sheet(images: np.ndarray, pairs: np.ndarray, scores: np.ndarray, labels: np.ndarray,
               class_names: Sequence[str], path: str | Path, max_pairs: int = 24) -> Path | None:
    """Near-duplicate pairs side by side (two pairs per row), captioned with index, class and score."""
    order = np.argsort(-np.asarray(scores), kind="stable")[:max_pairs]
    picked, caps = [], []
    for p in order:
        for i in pairs[p]:
            picked.append(int(i))
            caps.append(f"#{int(i)} {class_names[labels[i]][:9]} r={scores[p]:.3f}")
    return contact_sheet(images[picked], caps, path, cols=4) if picked else None
