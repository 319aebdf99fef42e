"""cellbench from Python: the stable names a notebook uses, without the CLI.

Everything here is re-exported from :mod:`robustbench_cells`::

    import robustbench_cells as cb
    results = cb.evaluate(model, "folder:/data/pbc", shifts="blur*", severities=(1, 3, 5))
    results.table()                       # the rich summary table `cellbench report` prints
    results.save("runs/my-model")         # a run folder: `cellbench report runs/my-model` works
    cb.explain(results, "folder:/data/hidden_test")

Images are uint8 ``(N, H, W, 3)`` RGB arrays throughout. Nothing here imports TensorFlow until a
model is used. The work is done by the modules the CLI uses (:mod:`robustbench_cells.bench`,
:mod:`robustbench_cells.report`, :mod:`robustbench_cells.evaluation`); this module only names it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robustbench_cells.errors import CellbenchError, did_you_mean, unknown_name_error

__all__ = ["Results", "augment", "evaluate", "explain", "list_adapters", "list_augmentations", "list_models",
           "list_shifts", "load_dataset", "shift"]


def _patterns(pattern: str | Iterable[str]) -> list[str]:
    if isinstance(pattern, str):
        return [p.strip() for p in pattern.split(",") if p.strip()] or ["*"]
    return list(pattern)


def _select(registry: Any, pattern: str | Iterable[str], kind: str) -> list[str]:
    """Names whose name or family matches any of the comma-separated fnmatch *pattern*s.

    A pattern that matches nothing is an error (a typo must not silently score fewer shifts).
    """
    out: list[str] = []
    for p in _patterns(pattern):
        hits = [spec.name for spec in registry.list(p)]
        if not hits:
            raise CellbenchError(f"{kind} pattern {p!r} matches nothing"
                                 f"{did_you_mean(p, registry.names())}")
        out += [h for h in hits if h not in out]
    return out


def list_shifts(pattern: str | Iterable[str] = "*") -> list[str]:
    """Registered test-time shifts whose name or family matches *pattern* (fnmatch, comma-separated:
    ``"noise,*blur*"``)."""
    from robustbench_cells import plugins

    return _select(plugins.shifts(), pattern, "shift")


def list_augmentations() -> list[str]:
    """Registered training augmentations (built-ins and plugins)."""
    from robustbench_cells import plugins

    return plugins.augmentations().names()


def list_models() -> list[str]:
    """Registered model builders (``simple_cnn``, ``mobilenetv2``, ...)."""
    from robustbench_cells import plugins

    return plugins.models().names()


def list_adapters() -> list[str]:
    """Test-time adapters :func:`evaluate` accepts; ``"none"`` (score the model as it is) always.

    Adapters come from the plugin host's adapter registry where this version has one.
    """
    from robustbench_cells import plugins

    registry = getattr(plugins, "adapters", None)
    names = list(registry().names()) if callable(registry) else []
    return ["none", *[n for n in names if n != "none"]]


def shift(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """*images* under shift *name* at *severity* (1..5; 0 is the identity). Deterministic in *seed*."""
    from robustbench_cells.bench.shiftsets import shift_images

    return shift_images(np.asarray(images), name, int(severity), int(seed))


def augment(images: np.ndarray, name: str, seed: int = 0, **options: Any) -> np.ndarray:
    """*images* through training augmentation *name* with *options*; the same *seed* gives the same bytes.

    Per-image augmentations return uint8 images. Batch augmentations (MixUp, CutMix) mix labels
    too: use them in :class:`robustbench_cells.pipeline.TrainingBatches` or
    :func:`robustbench_cells.keras_layers.augmentation_map` instead.
    """
    from robustbench_cells import plugins
    from robustbench_cells.pipeline import AugmentationStep, apply_image_steps

    spec = plugins.augmentations().get(name)
    if spec.kind != "image":
        raise CellbenchError(f"augmentation {name!r} mixes labels (kind {spec.kind!r}); "
                             "use TrainingBatches or keras_layers.augmentation_map")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise CellbenchError(f"augment: images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    step = AugmentationStep(spec, dict(options), spec.build(**options))
    return apply_image_steps([step], images, np.random.default_rng(int(seed)))


def load_dataset(spec: str) -> Any:
    """A :class:`~robustbench_cells.data.dataset.Dataset` from a spec (``folder:PATH``, ``synthetic:500``, ...)."""
    from robustbench_cells.data.specs import load_dataset as _load

    return _load(spec)


class Results:
    """What :func:`evaluate` returns: the score rows of one model, as a run that can be saved."""

    def __init__(self, evaluation: Any) -> None:
        self._ev = evaluation
        self._tmp: tempfile.TemporaryDirectory | None = None

    @property
    def run_dir(self) -> Path | None:
        """The folder :meth:`save` wrote, or ``None`` before."""
        return self._ev.run_dir

    def probabilities(self, adapter: str = "none") -> dict[str, np.ndarray]:
        """``"split|shift|severity"`` -> class probabilities ``(N, C)`` under *adapter* (``probs.npz`` layout)."""
        for cell in self._ev.cells:
            if cell.adapter == adapter:
                return dict(cell.probs)
        raise CellbenchError(f"adapter {adapter!r}: not evaluated; evaluated: {', '.join(self.adapters)}")

    @property
    def adapters(self) -> list[str]:
        """The adapter chains evaluated, in order (one run cell each)."""
        return [cell.adapter for cell in self._ev.cells]

    def records(self) -> list[dict[str, Any]]:
        """One plain dict per adapter and scored set: model, adapter, split, shift, family, severity,
        accuracy, balanced_accuracy, mean_confidence, ece, n, per_class."""
        from robustbench_cells.bench.metrics import CLEAN, shift_family

        out = []
        for cell in self._ev.cells:
            for s in cell.scores:
                family = CLEAN if s.shift == CLEAN else ("target" if s.split == "target" else shift_family(s.shift))
                out.append({"model": self._ev.model_name, "adapter": cell.adapter, "split": s.split,
                            "shift": s.shift, "family": family, "severity": s.severity, "accuracy": s.accuracy,
                            "balanced_accuracy": s.balanced_accuracy, "mean_confidence": s.mean_confidence,
                            "ece": s.ece, "n": s.n, "per_class": dict(zip(self._ev.data.class_names, s.per_class))})
        return out

    def save(self, run_dir: str | os.PathLike) -> Path:
        """Write a run folder that ``cellbench report``, ``compare`` and ``explain`` read unchanged."""
        from robustbench_cells.evaluation import save_run

        return save_run(self._ev, run_dir)

    def _folder(self) -> Path:
        if self._ev.run_dir is None:  # table()/explain() on an unsaved result: a private temporary run
            self._tmp = tempfile.TemporaryDirectory(prefix="cellbench-results-")
            self.save(Path(self._tmp.name) / "run")
        return self._ev.run_dir

    def summary(self) -> Any:
        """The run's :class:`~robustbench_cells.bench.metrics.RunSummary` (clean, mean shifted, per family, ...)."""
        from robustbench_cells.bench.metrics import load_summary

        return load_summary(self._folder())

    def table(self, console: Any = None) -> Any:
        """Print the summary table ``cellbench report`` shows (rich renders in Jupyter too); return the summary."""
        from robustbench_cells.report.tables import cell_table, print_run_summary

        if console is None:
            from rich.console import Console

            console = Console()
        summary = self.summary()
        print_run_summary(summary, console)
        if summary.done:
            console.print(cell_table(summary, summary.done[0]))
        return summary

    def __repr__(self) -> str:
        scores = self._ev.cells[0].scores if self._ev.cells else []
        clean = next((s.accuracy for s in scores if s.split == "test" and s.shift == "clean"), None)
        shifted = [s.accuracy for s in scores if s.split == "test" and s.shift != "clean"]
        mean = f"{np.mean(shifted):.3f}" if shifted else "-"
        return (f"<Results {self._ev.model_name} on {self._ev.data_spec or 'data'} ({', '.join(self.adapters)}): "
                f"clean test {'-' if clean is None else f'{clean:.3f}'}, mean shifted {mean}, {len(scores)} sets>")


def evaluate(model_or_predict_fn: Any, data: Any, shifts: str | Iterable[str] = "*",
             severities: Sequence[int] = (1, 2, 3, 4, 5), targets: Sequence[str] = (),
             adapters: Sequence[str] = ("none",), *, classes: Sequence[str] | None = None,
             preprocess: str = "none", max_shift_images: int | None = None, split_seed: int = 0,
             split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2), shift_seed: int = 0,
             batch_size: int = 256, name: str = "evaluate",
             progress: bool | Callable[[int, int, str], None] = True) -> Results:
    """Score a model on the clean val/test splits of *data*, the shift suite and *targets*.

    - *model_or_predict_fn*: a Keras model, a ``.keras`` file / cell folder / SavedModel folder, or
      ``fn(uint8 images (N, H, W, 3)) -> probabilities (N, C)``. Keras models are fed float32 RGB on
      the 0..255 scale at their own input size; *preprocess* (``unit``: /255, ``symmetric``:
      [-1, 1], ``imagenet``: mean/std, ``none``) adds the scaling your model expects, and logits
      get a softmax.
    - *data*: a data set spec or a Dataset, split as ``cellbench run`` splits it (its own split
      when it has one, else stratified 70/10/20 with *split_seed*); shifts apply to the test split
      (*max_shift_images*: a fixed stratified subset).
    - *classes*: the model's class names in output order (default: the data set's order, or the
      cell's ``meta.json``); they must be the data set's classes.
    - *targets*: labelled data set specs from elsewhere (another lab), scored as they are.
    - *adapters*: test-time adapter chains (:func:`list_adapters`; ``"stain_norm+bn_adapt"`` chains),
      each stored as its own cell; ``"none"`` scores the model unchanged. Adapters need a Keras model.
    - *progress*: a progress bar on stderr that works in Jupyter and terminals (``True``), nothing
      (``False``), or your own ``fn(done, total, what)`` called before each step.
    """
    from robustbench_cells import evaluation

    adapters = [adapters] if isinstance(adapters, str) else list(adapters)
    known = list_adapters()
    for chain in adapters:
        for adapter in chain.split("+"):
            if adapter.strip() not in known:
                raise unknown_name_error("adapter", adapter.strip(), known)
    shift_names = list_shifts(shifts) if shifts else []
    bar = _ProgressBar() if progress is True else contextlib.nullcontext()
    with bar:
        say = progress if callable(progress) else (bar.update if progress is True else None)
        ev = evaluation.evaluate(
            model_or_predict_fn, data, shifts=shift_names,
            severities=[int(s) for s in severities], targets=list(targets), adapters=adapters or ["none"],
            classes=classes, preprocess=preprocess,
            options=evaluation.DataOptions(split_seed, tuple(split_fractions), max_shift_images, shift_seed),
            batch_size=batch_size, name=name, progress=say)
    return Results(ev)


class _ProgressBar:
    """Progress of :func:`evaluate` on stderr, for notebooks and terminals alike.

    ``tqdm.auto`` when tqdm is installed (a widget in Jupyter, text elsewhere); else rich, already a
    dependency: a live bar in a terminal, the final state printed once where stderr is no terminal
    (a log, CI), and in Jupyter a live widget when ipywidgets is installed, else a line per 10 %.
    Nothing is drawn before the first step, so an error in the arguments prints only the error.
    """

    def __init__(self, description: str = "cellbench evaluate") -> None:
        self.description = description
        self._bar: Any = None
        self._kind = ""
        self._printed = -1

    def __enter__(self) -> _ProgressBar:
        return self

    def _start(self, total: int) -> None:
        import sys

        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            self._kind, self._bar = "tqdm", tqdm(total=total, desc=self.description, file=sys.stderr, leave=True)
            return
        from rich.console import Console

        console = Console(stderr=True, highlight=False, emoji=False)
        if console.is_jupyter and not _importable("ipywidgets"):  # rich's live display needs the widgets
            self._kind, self._bar = "lines", sys.stderr
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._kind = "rich"
        self._bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TextColumn("{task.fields[what]}", markup=False),
                             console=console, transient=False, refresh_per_second=4)
        self._task = self._bar.add_task(self.description, total=total, what="")
        self._bar.start()

    def update(self, done: int, total: int, what: str) -> None:
        """Step *done* of *total*, now doing *what* (the ``progress`` callback of the evaluation)."""
        if self._bar is None:
            self._start(total)
        if self._kind == "tqdm":
            self._bar.total = total
            self._bar.n = done
            self._bar.set_postfix_str(what, refresh=True)
        elif self._kind == "rich":
            self._bar.update(self._task, total=total, completed=done, what=what)
        else:
            tenth = 10 * done // max(total, 1)
            if tenth > self._printed:
                self._printed = tenth
                print(f"{self.description}: {done}/{total} {what}", file=self._bar, flush=True)

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if self._kind == "tqdm":
            self._bar.close()
        elif self._kind == "rich":
            self._bar.live.transient = exc_type is not None  # a failed run leaves only its error
            self._bar.stop()


def _importable(module: str) -> bool:
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def explain(run_dir_or_results: str | os.PathLike | Results, target: str, **options: Any) -> dict[str, Any]:
    """Fingerprint unlabeled *target* images, find the nearest shifts and estimate each model's accuracy.

    *run_dir_or_results* is a run folder or :class:`Results` (saved to a temporary run if needed);
    *options* are :class:`~robustbench_cells.explain.core.ExplainOptions` fields. Returns the same
    dict ``cellbench explain --json`` prints.
    """
    from robustbench_cells.explain.core import ExplainOptions
    from robustbench_cells.explain.core import explain as _explain

    run_dir = run_dir_or_results._folder() if isinstance(run_dir_or_results, Results) else Path(run_dir_or_results)
    return _explain(run_dir, target, ExplainOptions(**options))
