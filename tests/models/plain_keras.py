"""Helper for the portability tests: predict with a model file in an interpreter without cellbench."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

#: Runs in a fresh interpreter: loads the model with plain Keras and proves cellbench stayed out.
PLAIN_LOAD = """
import json, sys
import numpy as np
import keras
model = keras.models.load_model(sys.argv[1], compile=False)
x = np.load(sys.argv[2])
probs = np.asarray(model.predict(x, verbose=0))
assert not any(m.startswith("robustbench_cells") for m in sys.modules), "cellbench was imported"
print(json.dumps(probs.tolist()))
"""


def plain_keras_predict(model_path, images: np.ndarray, tmp_path) -> np.ndarray:
    """Probabilities from *model_path* computed in a subprocess that does not import robustbench_cells."""
    np.save(tmp_path / "x.npy", images.astype(np.float32))
    # -I: isolated mode, so neither the repo on the cwd nor PYTHONPATH can make cellbench importable by accident.
    out = subprocess.run([sys.executable, "-I", "-c", PLAIN_LOAD, str(model_path), str(tmp_path / "x.npy")],
                         capture_output=True, text=True, env={"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    return np.asarray(json.loads(out.stdout.strip().splitlines()[-1]), dtype=np.float32)
