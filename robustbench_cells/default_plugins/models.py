"""Built-in models: ``simple_cnn``, ``inception_cnn`` and eleven Keras applications.

Importing this module must stay cheap (no TensorFlow): builders import Keras when called.
"""

from __future__ import annotations

from functools import partial

from robustbench_cells.hookspecs import hookimpl
from robustbench_cells.models.applications import APPLICATIONS, build_application
from robustbench_cells.models.norm import NORMS
from robustbench_cells.models.simple import build_inception_cnn, build_simple_cnn
from robustbench_cells.registry import ModelSpec

#: Parameter counts at 96x96x3 with 8 classes (checked by tests/default_plugins/test_models_contract.py).
SIMPLE_CNN_PARAMS = 47_672
INCEPTION_CNN_PARAMS = 202_400


@hookimpl
def register_models(register) -> None:
    """Register the built-in models."""
    register(ModelSpec(
        name="simple_cnn", family="cnn", builder=build_simple_cnn, default_input_size=96, min_input_size=16,
        preprocessing="x/255", params=SIMPLE_CNN_PARAMS, choices={"norm": NORMS},
        description="4 conv stages 16-32-48-64, global pooling; trains from scratch in minutes on CPU",
    ))
    register(ModelSpec(
        name="inception_cnn", family="cnn", builder=build_inception_cnn, default_input_size=96, min_input_size=16,
        preprocessing="x/255", params=INCEPTION_CNN_PARAMS, choices={"norm": NORMS},
        description="stem + 3 Inception blocks (1x1, 3x3, double-3x3, pool branches)",
    ))
    for key, info in APPLICATIONS.items():
        register(ModelSpec(
            name=key, family=info.family, builder=partial(build_application, key), default_input_size=96,
            min_input_size=info.min_input_size, preprocessing=info.preprocessing, params=info.params,
            choices={"norm": NORMS},
            description=f"keras.applications.{info.constructor} (no top) + dropout + softmax; "
                        "weights none | imagenet | file",
        ))
