"""A hand-built run folder for explain tests: real PBC images, a store written through ResultStore,
toy shifts and nearest-centroid "models" standing in for the trainer (so tests run in seconds).

Not a test module: ``test_core.py`` and ``tests/cli/test_explain_cmd.py`` load it by path."""

from __future__ import annotations

import cv2
import numpy as np

from robustbench_cells.bench.store import ResultStore, Score
from robustbench_cells.data.dataset import CELL_CLASSES, Dataset
from robustbench_cells.data.splits import split_dataset
from robustbench_cells.errors import CellbenchError
from robustbench_cells.explain import core

SHIFTS = {"toy_blur": "blur", "toy_noise": "noise"}
SEVERITIES = [1, 2, 3]
SPLIT = {"seed": 0, "fractions": [0.5, 0.25, 0.25]}


def toy_shift(images: np.ndarray, shift: str, severity: int, seed: int) -> np.ndarray:
    if shift == "toy_blur":
        return np.stack([cv2.GaussianBlur(im, (0, 0), 0.7 * severity) for im in images])
    rng = np.random.default_rng([seed, severity])
    return np.clip(images + rng.normal(0, 8 * severity, images.shape), 0, 255).astype(np.uint8)


class CentroidModel:
    """Nearest class centroid on 12x12 thumbnails; softmax of negative distances / temperature."""

    def __init__(self, train: Dataset, temperature: float) -> None:
        x = self.features(train.images)
        self.centroids = np.stack([x[train.labels == c].mean(0) for c in range(8)])
        self.temperature = temperature

    @staticmethod
    def features(images: np.ndarray) -> np.ndarray:
        return np.stack([cv2.resize(im, (12, 12), interpolation=cv2.INTER_AREA) for im in images]).reshape(len(images), -1) / 255.0

    def proba(self, images: np.ndarray) -> np.ndarray:
        d = ((self.features(images)[:, None, :] - self.centroids[None]) ** 2).sum(-1)
        z = -d / self.temperature
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(1, keepdims=True)


TARGET: dict[str, np.ndarray] = {}
#: The adapter chain of the toy run's adapted cell: a median filter before the model (undoes noise).
ADAPTER = "toy_denoise"


def toy_denoise(images: np.ndarray) -> np.ndarray:
    return np.stack([cv2.medianBlur(im, 5) for im in images])


def fake_adapt(chain, model, meta, images, seed):
    """Stands in for ``adapters.adapt_predict``: the only chain the toy run knows is :data:`ADAPTER`."""
    assert chain == ADAPTER
    return model.proba(toy_denoise(images))


def run_target_images(test_images: np.ndarray) -> np.ndarray:
    """The toy run's own labelled ``[[targets]]`` set ("lab2"): its test images, dimmed."""
    return (test_images * 0.7).astype(np.uint8)


def build_run(tmp_path, pbc_sample, monkeypatch, with_probs: bool = True, adapters: bool = False,
              run_target: bool = False):
    """Write RUN folder + a flat target folder under *tmp_path*; patch explain's seams. Returns the run folder.

    ``adapters``: add an adapted cell (base ``km2.0``, chain :data:`ADAPTER`) with its own probs.npz in
    ``RUN/cells/KEY`` as the runner writes it. ``run_target``: the run has a labelled target ``lab2``
    (data spec ``labelled-target-2``), stored for every cell."""
    labels = np.repeat(np.arange(8), 32)
    dataset = Dataset(pbc_sample, labels, CELL_CLASSES, source="toy-pbc")
    parts = split_dataset(dataset, SPLIT["seed"], tuple(SPLIT["fractions"]))
    test = parts["test"]

    def fake_load(spec):
        if spec == "toy-pbc":
            return dataset
        if spec == "labelled-target":
            return Dataset(TARGET["images"], TARGET["labels"], CELL_CLASSES, source=spec)
        if spec == "labelled-target-2":
            return Dataset(run_target_images(test.images), test.labels, CELL_CLASSES, source=spec)
        raise CellbenchError(f"unknown data set {spec!r}")

    monkeypatch.setattr("robustbench_cells.data.specs.load_dataset", fake_load)
    monkeypatch.setattr(core, "_shift_fn", lambda: toy_shift)
    monkeypatch.setattr(core, "_shift_families", lambda names: {n: SHIFTS[n] for n in names})
    monkeypatch.setattr(core, "_adapt_fn", lambda: fake_adapt)
    models = {f"m{t}": CentroidModel(parts["train"], t) for t in (0.5, 2.0, 8.0)}
    monkeypatch.setattr(core, "_model_api", lambda: (lambda path: (models[path.split("/")[-1]], {}),
                                                     lambda model, images, *a: model.proba(images)))
    store = ResultStore(tmp_path / "run", create=True)
    config = {"data": "toy-pbc", "image_size": 96, "split": SPLIT,
              "shifts": {"names": list(SHIFTS), "severities": SEVERITIES, "max_images": None, "seed": 0}}
    if run_target:
        config["targets"] = [{"name": "lab2", "data": "labelled-target-2", "classes": {}}]
    run = store.create_run("toy", config, {}, "toy-pbc", dataset.fingerprint(), CELL_CLASSES)
    from robustbench_cells.bench.store import Cell

    cells = [Cell(key=f"k{name}", model="centroid", augmentation=name, seed=0, position=i)
             for i, name in enumerate(models)]
    if adapters:
        cells.append(Cell(key="kadapt", model=f"centroid+{ADAPTER}", augmentation="m2.0", seed=0, position=3,
                          config={"kind": "adapt", "base": "km2.0", "base_label": "centroid/m2.0/0",
                                  "adapter": ADAPTER, "seed": 0}))
    store.add_cells(run.id, cells)
    for cell in cells:
        name = cell.augmentation
        model = models[name]
        adapt = cell.config.get("kind") == "adapt"

        def predict(images):
            return fake_adapt(ADAPTER, model, {}, images, 0) if adapt else model.proba(images)

        scores = []
        probs = {"val|clean|0": predict(parts["val"].images)} if adapt else {}
        for shift, sev in [("clean", 0)] + [(s, v) for s in SHIFTS for v in SEVERITIES]:
            imgs = test.images if shift == "clean" else toy_shift(test.images, shift, sev, 0)
            probs[f"test|{shift}|{sev}"] = predict(imgs)
            acc = float(np.mean(probs[f"test|{shift}|{sev}"].argmax(1) == test.labels))
            scores.append(Score(cell.key, "test", shift, sev, acc, acc, [acc] * 8, 0.5, 0.1, len(test)))
        if run_target:
            probs["target|lab2|0"] = predict(run_target_images(test.images))
        if with_probs:  # the runner's probs.npz beside the model: what leave-one-family-out needs
            folder = tmp_path / "run" / "cells" / cell.key if adapt else tmp_path / "cells" / name
            folder.mkdir(parents=True, exist_ok=True)
            np.savez(folder / "probs.npz", **probs)
        # an adapted cell shares its base cell's model, as in bench/adapting.py
        store.finish_cell(cell.key, scores, params=1, model_path=f"{tmp_path}/cells/{name}", train_seconds=0,
                          eval_seconds=0, epochs=1)
    store.close()
    # The target: other PBC test images than the run's, blurred at severity 2.
    target = toy_shift(test.images, "toy_blur", 2, 0)
    TARGET.update(images=target, labels=test.labels)
    folder = tmp_path / "target"
    folder.mkdir()
    for i, im in enumerate(target):
        cv2.imwrite(str(folder / f"img_{i:03d}.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    return tmp_path / "run"


