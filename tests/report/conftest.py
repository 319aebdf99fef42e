"""A varied fake run for the report tests: stores filled by hand, so no training is needed.

Accuracies differ per model, augmentation, shift and severity (and a little noise), so that a
sorting or aggregation bug changes what the tests see. Shifts come from an inline test plugin; one
stored shift (``retired_shift``) is deliberately not registered, as after a plugin is uninstalled.
"""

from __future__ import annotations

import numpy as np
import pytest

from robustbench_cells import plugins
from robustbench_cells.bench.store import Cell, ResultStore, Score
from robustbench_cells.data.dataset import CELL_CLASSES, Dataset
from robustbench_cells.hookspecs import hookimpl
from robustbench_cells.registry import DatasetSpec, ShiftSpec

# shift -> (family, accuracy lost per severity step for an unaugmented model)
SHIFTS = {"rt_noise": ("noise", 0.08), "rt_blur": ("blur", 0.03), "rt_stain": ("stain", 0.12),
          "retired_shift": ("unknown", 0.05)}
MODELS = {"cnn_a": (50_000, 0.95), "cnn_b": (120_000, 0.97)}
AUGS = {"none": 1.0, "simple": 0.6, "mixup": 0.8}  # multiplier on the loss (lower = more robust)


def _noise(images, sigma, rng):
    return np.clip(images + rng.normal(0, sigma, images.shape), 0, 255).astype(np.uint8)


def _blur(images, k, rng):
    import cv2

    return np.stack([cv2.blur(im, (k, k)) for im in images])


def _stain(images, factor, rng):
    out = images.astype(np.float32)
    out[..., 0] *= factor
    return np.clip(out, 0, 255).astype(np.uint8)


class ReportTestPlugin:
    """Registers the test shifts and a tiny in-memory data set ``rt_data``."""

    @hookimpl
    def register_shifts(self, register):
        register(ShiftSpec("rt_noise", "noise", _noise, (5, 10, 20, 30, 40)))
        register(ShiftSpec("rt_blur", "blur", _blur, (3, 5, 7, 9, 11)))
        register(ShiftSpec("rt_stain", "stain", _stain, (0.9, 0.8, 0.7, 0.6, 0.5)))

    @hookimpl
    def register_datasets(self, register):
        def load(arg):
            rng = np.random.default_rng(0)
            labels = np.repeat(np.arange(8), 3)
            images = rng.integers(0, 255, (len(labels), 32, 32, 3), dtype=np.uint8)
            split = None if arg == "nosplit" else np.array(["train", "val", "test"] * 8)
            return Dataset(images, labels, CELL_CLASSES, source="rt_data", split=split)

        register(DatasetSpec("rt_data", load))


@pytest.fixture
def test_plugins(monkeypatch):
    """Built-ins plus the test plugin as the process-wide plugin host."""
    host = plugins.PluginHost(entry_points=False, extra_plugins=[("report_test", ReportTestPlugin())])
    monkeypatch.setattr(plugins, "_host", host)
    return host


def make_run(path, data_spec: str = "rt_data", seed: int = 0, config: dict | None = None,
             run_config: dict | None = None, fingerprint: str = "fp123") -> ResultStore:
    """A run with 2 models x 3 augmentations (+ a second seed, a failed and a pending cell).

    *config* goes into every cell's config, *run_config* into the run row (the matrix, as the runner
    writes it: ``image_size``, ``split``, ``shifts.seed`` ...).
    """
    rng = np.random.default_rng(seed)
    store = ResultStore(path, create=True)
    run = store.create_run("fake-run", run_config or {"matrix": "test"}, {"keras": "3.x"}, data_spec, fingerprint,
                           CELL_CLASSES)
    cells, pos = [], 0
    for model in MODELS:
        for aug in AUGS:
            for s in ([0, 1] if (model, aug) == ("cnn_a", "simple") else [0]):
                recipe = {"optimizer": "adam", "learning_rate": 1e-3, "epochs": 3, "batch_size": 64,
                          "label_smoothing": 0.1 if model == "cnn_b" else 0.0}
                cells.append(Cell(f"{model}-{aug}-{s}-{pos:04d}", model, aug, s, recipe, dict(config or {}),
                                  position=pos))
                pos += 1
    cells.append(Cell("failed-cell-0001", "cnn_b", "cutmix", 0, dict(recipe, label_smoothing=0.1), position=pos))
    cells.append(Cell("pending-cell-001", "cnn_a", "cutmix", 0, dict(recipe, label_smoothing=0.0), position=pos + 1))
    store.add_cells(run.id, cells)
    for c in cells[:-2]:
        params, clean = MODELS[c.model]
        clean -= 0.01 * c.seed
        rows = [_row(c.key, "val", "clean", 0, clean + 0.02, rng), _row(c.key, "test", "clean", 0, clean, rng)]
        for shift, (_, drop) in SHIFTS.items():
            for sev in range(1, 6):
                rows.append(_row(c.key, "test", shift, sev, clean - drop * sev * AUGS[c.augmentation], rng))
        store.finish_cell(c.key, rows, params=params, model_path=None, train_seconds=1.0, eval_seconds=0.5,
                          epochs=3)
    store.mark_failed("failed-cell-0001", "ResourceExhaustedError: out of memory")
    return store


def _row(key, split, shift, sev, acc, rng) -> Score:
    acc = float(np.clip(acc + rng.normal(0, 0.003), 0.01, 1.0))
    per_class = np.clip(acc + rng.normal(0, 0.05, 8), 0, 1).tolist()
    return Score(key, split, shift, sev, acc, acc - 0.02, per_class, acc + 0.03, 0.02 + (1 - acc) * 0.1, 200)


@pytest.fixture
def fake_run(tmp_path, test_plugins):
    """``(run_dir, store)`` of a filled fake run."""
    run_dir = tmp_path / "run"
    store = make_run(run_dir)
    yield run_dir, store
    store.close()


@pytest.fixture
def run_factory(test_plugins):
    """``make_run`` itself, for tests that need a second run."""
    return make_run


#: The target of :func:`make_adapted_run`: classes 0, 1 and 3 only (as a real other-lab set holds a subset).
TARGET_COUNTS = {CELL_CLASSES[0]: 5, CELL_CLASSES[1]: 3, CELL_CLASSES[3]: 2}


def make_adapted_run(path, target_boost: float = 0.0, targets: tuple[str, ...] = ("other lab",)) -> ResultStore:
    """A run as ``adapters = ["none", "bn_adapt"]`` stores it: a plain cell ``cnn_a/simple``, its adapted
    cell (kind ``adapt``, model label ``cnn_a+bn_adapt``) and one row per target per cell.

    The adapted cell is better on the target by 0.3 (+ *target_boost* for both cells).
    """
    store = ResultStore(path, create=True)
    config = {"targets": [{"name": t} for t in targets],
              "data_facts": {"targets": {t: {"images": 10, "class_counts": TARGET_COUNTS} for t in targets}}}
    run = store.create_run("adapted-run", config, {}, "rt_data", "fp", CELL_CLASSES)
    plain = Cell("plain-cell-00000", "cnn_a", "simple", 0, {"epochs": 1},
                 {"kind": "train", "model": "cnn_a", "augmentation": "simple", "seed": 0}, position=0)
    adapted = Cell("adapt-cell-00000", "cnn_a+bn_adapt", "simple", 0, {"epochs": 1},
                   {"kind": "adapt", "base": plain.key, "base_label": "cnn_a/simple/0", "adapter": "bn_adapt",
                    "seed": 0}, position=1)
    store.add_cells(run.id, [plain, adapted])
    for cell, clean, on_target in ((plain, 0.9, 0.3), (adapted, 0.92, 0.6)):
        rows = [Score(cell.key, "val", "clean", 0, clean, clean, [clean] * 8, 0.9, 0.02, 80),
                Score(cell.key, "test", "clean", 0, clean, clean, [clean] * 8, 0.9, 0.02, 80)]
        rows += [Score(cell.key, "test", "rt_noise", sev, clean - 0.1 * sev, clean - 0.1 * sev, [0.5] * 8, 0.7, 0.1, 80)
                 for sev in (1, 3)]
        acc = on_target + target_boost
        per_class = [acc + 0.1, acc - 0.1, float("nan"), acc, float("nan"), float("nan"), float("nan"), float("nan")]
        rows += [Score(cell.key, "target", t, 0, acc, acc - 0.05, per_class, 0.6, 0.2, 10) for t in targets]
        store.finish_cell(cell.key, rows, params=1000, model_path=None, train_seconds=1.0, eval_seconds=0.5, epochs=1)
    return store


@pytest.fixture
def adapted_run(tmp_path, test_plugins):
    """``(run_dir, store)`` of :func:`make_adapted_run`."""
    run_dir = tmp_path / "adapted"
    store = make_adapted_run(run_dir)
    yield run_dir, store
    store.close()
