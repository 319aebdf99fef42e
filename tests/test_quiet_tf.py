"""quiet_tf: TensorFlow's import-time absl INFO lines are dropped; warnings, errors and the rest stay,
even when the import aborts the process or stderr is closed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


from robustbench_cells import quiet_tf

NOISE = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    b"I0000 00:00:1795655920.325177   17619 port.cc:153] oneDNN custom operations are on.\n"
    b"I0000 00:00:1795655920.325932   17619 cudart_stub.cc:31] Could not find cuda drivers on your machine.\n"
    b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow.\n"
)
KEPT = (
    b"E0000 00:00:1795655920.4 17619 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"
    b"W0000 00:00:1795655920.5 17619 cpu_allocator.cc:12] Allocation exceeds 10% of memory\n"
    b"Traceback (most recent call last):\n"
)


def _drop_noise(captured: bytes) -> bytes:
    """What the filter process lets through: every line :data:`quiet_tf.NOISE` does not match."""
    return b"".join(line for line in captured.splitlines(keepends=True) if not quiet_tf.NOISE.match(line))


def test_noise_pattern_matches_only_info_lines():
    assert _drop_noise(NOISE + KEPT) == KEPT
    assert _drop_noise(b"Info: not absl\nI said so\n") == b"Info: not absl\nI said so\n"
    assert _drop_noise(b"") == b""


def test_filtered_native_stderr_passes_on_what_matters(capfd):
    with quiet_tf.filtered_native_stderr():
        os.write(2, NOISE)
        print("python-level warning", file=sys.stderr)
        os.write(2, KEPT)
    os.write(2, NOISE[:20])  # fd 2 is restored afterwards: nothing is filtered any more
    out, err = capfd.readouterr()
    assert err == "python-level warning\n" + KEPT.decode() + NOISE[:20].decode()


def _fake_tensorflow(root, body: str) -> dict[str, str]:
    """A stand-in ``tensorflow`` package under *root* whose import runs *body*; the env to find it."""
    (root / "tensorflow").mkdir()
    (root / "tensorflow" / "__init__.py").write_text("import os\n" + textwrap.dedent(body))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *sys.path]), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _run(script: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, env=env,
                          timeout=240, **kwargs)


def test_a_fatal_message_before_an_abort_still_shows(tmp_path):
    env = _fake_tensorflow(tmp_path, f"""
        os.write(2, {NOISE!r})
        os.write(2, b"F0000 00:00:1.0 1 cpu_feature_guard.cc:1] This TensorFlow binary needs AVX\\n")
        os.abort()
    """)
    done = _run("from robustbench_cells import quiet_tf; quiet_tf.install(); import tensorflow", env)
    assert done.returncode != 0
    assert b"This TensorFlow binary needs AVX" in done.stderr and b"oneDNN" not in done.stderr


def test_a_probe_does_not_use_up_the_hook_and_closed_stderr_is_fine(tmp_path):
    env = _fake_tensorflow(tmp_path, f"""
        try:
            os.write(2, {NOISE + KEPT!r})
        except OSError:  # fd 2 closed: C code writing to it just loses the text, as here
            pass
    """)
    probe = """
        import importlib.util
        from robustbench_cells import quiet_tf
        quiet_tf.install()
        assert importlib.util.find_spec("tensorflow") is not None  # a probe, not an import
        import tensorflow
        print("ok")
    """
    done = _run(probe, env)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.strip() == b"ok" and done.stderr == KEPT
    if os.name == "posix":  # fd 2 closed (2>&-): sys.stderr is None; the import runs unfiltered, no crash
        closed = _run(probe, env, preexec_fn=lambda: os.close(2))
        assert closed.returncode == 0 and closed.stdout.strip() == b"ok"


def test_first_real_tensorflow_import_is_quiet_and_tensorflow_works():
    script = """
        import sys
        from robustbench_cells import quiet_tf
        quiet_tf.install(); quiet_tf.install()  # idempotent: one hook
        hooks = [f for f in sys.meta_path if type(f).__name__ == "_TensorFlowImportFilter"]
        assert len(hooks) == 1, hooks
        import keras  # imports tensorflow through the hook
        import tensorflow as tf
        assert not [f for f in sys.meta_path if type(f).__name__ == "_TensorFlowImportFilter"]
        assert int(tf.constant(2) + 1) == 3 and keras.ops.convert_to_numpy(keras.ops.ones(2)).sum() == 2
        print("ok")
    """
    done = _run(script, {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.strip() == b"ok"
    assert not [line for line in done.stderr.splitlines(keepends=True) if quiet_tf.NOISE.match(line)]


def test_asking_for_info_lines_installs_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # as if not imported yet
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # restored afterwards
    before = list(sys.meta_path)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    quiet_tf.install()
    assert sys.meta_path == before
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet_tf.install()
    assert len(sys.meta_path) == len(before) + 1




def test_retracing_advice_is_dropped_and_other_tensorflow_warnings_kept():
    import logging

    quiet_tf.install()
    logger = logging.getLogger("tensorflow")
    advice = logger.makeRecord("tensorflow", logging.WARNING, "f", 1,
                               "5 out of the last 5 calls to <function> triggered tf.function retracing.", (), None)
    other = logger.makeRecord("tensorflow", logging.WARNING, "f", 1, "something else", (), None)
    assert not logger.filter(advice) and logger.filter(other)
