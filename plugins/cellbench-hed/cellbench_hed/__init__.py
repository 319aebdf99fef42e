"""cellbench-hed: HED stain jitter as a training augmentation and as a test-time shift.

An example third-party plugin: cellbench finds it through the ``cellbench`` entry point declared in
this package's ``pyproject.toml`` and calls the two hooks below with a ``register`` callback.
Randomness comes only from the generator cellbench passes in.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robustbench_cells import hookimpl
from robustbench_cells.errors import CellbenchError
from robustbench_cells.registry import AugmentationSpec, ShiftSpec

__version__ = "0.1.0"


def hed_jitter(images: np.ndarray, sigma: float, bias: float, rng: np.random.Generator) -> np.ndarray:
    """Per-image HED jitter of uint8 ``(N, H, W, 3)``: ``c' = c * U(1-sigma, 1+sigma) + U(-bias, bias)``.

    Only the change the jitter makes is applied (``x + hed2rgb(c') - hed2rgb(c)``), so pixels that
    scikit-image's clamped round trip cannot represent keep their colour and zero jitter is identity.
    """
    from skimage.color import hed2rgb, rgb2hed  # the plugin's own dependency, imported when used

    n = len(images)
    alpha = rng.uniform(1.0 - sigma, 1.0 + sigma, size=(n, 1, 1, 3))
    beta = rng.uniform(-bias, bias, size=(n, 1, 1, 3))
    hed = rgb2hed(images)
    change = hed2rgb(hed * alpha + beta) - hed2rgb(hed)
    return np.clip(np.rint(images + 255.0 * change), 0, 255).astype(np.uint8)


def _augmentation_factory(sigma: Any = 0.05, bias: Any = 0.005):
    for option, value, hi in (("sigma", sigma, 1.0), ("bias", bias, 0.5)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= hi:
            raise CellbenchError(f"augmentation 'hed_jitter': option {option!r} must be a number in [0, {hi}], got {value!r}")

    def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return hed_jitter(images, float(sigma), float(bias), rng)

    return augment


def _shift(images: np.ndarray, param: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    return hed_jitter(images, param[0], param[1], rng)


@hookimpl
def register_augmentations(register) -> None:
    """The ``hed_jitter`` training augmentation."""
    register(AugmentationSpec(
        name="hed_jitter", family="stain", kind="image", factory=_augmentation_factory,
        description="random HED stain jitter per image (Tellez et al. 2018; scikit-image)",
        options={"sigma": 0.05, "bias": 0.005},
    ))


@hookimpl
def register_shifts(register) -> None:
    """The ``hed_stain`` shift: random per-image HED jitter, (sigma, bias) per severity."""
    register(ShiftSpec(
        name="hed_stain", family="stain", fn=_shift,
        severities=((0.02, 0.002), (0.04, 0.004), (0.07, 0.007), (0.1, 0.01), (0.15, 0.015)),
        description="random per-image HED stain jitter (sigma, bias); scikit-image",
    ))
