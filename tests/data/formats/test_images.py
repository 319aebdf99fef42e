"""Decoding image files: a corrupt file gives cellbench's one warning naming it, and nothing from OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from robustbench_cells.data.formats.folder import load_folder
from robustbench_cells.data.formats.images import decode_images, quiet_opencv
from robustbench_cells.errors import CellbenchError

# A PNG signature followed by garbage: OpenCV's PNG reader logs "[ WARN:0@...] ... chunk data is
# too large" and "[ERROR:0@...] ... IHDR chunk shall be first" to fd 2 before returning None.
CORRUPT_PNG = b"\x89PNG\r\n\x1a\n garbage that is not a chunk"


def _truncated_jpeg() -> bytes:
    ok, buf = cv2.imencode(".jpg", np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    return buf.tobytes()[: len(buf) // 2]


def _folder(root, corrupt: bytes, name: str) -> None:
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(root / cls / f"{i}.png"), rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (root / "a" / name).write_bytes(corrupt)


def test_opencv_logs_by_itself_without_the_quiet_section(tmp_path, capfd):
    """The premise of the next test: without quiet_opencv, this file makes OpenCV write to fd 2."""
    path = tmp_path / "broken.png"
    path.write_bytes(CORRUPT_PNG)
    assert cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED) is None
    assert "grfmt_png" in capfd.readouterr().err


@pytest.mark.parametrize("name, corrupt", [("broken.png", CORRUPT_PNG), ("broken.jpg", _truncated_jpeg())],
                         ids=["png", "truncated-jpeg"])
def test_corrupt_file_gives_only_cellbenchs_warning(tmp_path, capfd, name, corrupt):
    _folder(tmp_path, corrupt, name)
    skipped = rf"skipped 1 unreadable image file\(s\): .*{name.replace('.', '[.]')} \(not a decodable image\)"
    with pytest.warns(UserWarning, match=skipped):
        ds = load_folder(str(tmp_path))
    assert len(ds) == 6
    err = capfd.readouterr().err  # fd 2, where OpenCV's C++ logger writes
    assert "WARN" not in err and "ERROR" not in err and "grfmt" not in err, err


def test_quiet_section_restores_opencv_log_level_even_when_nested_or_failing(tmp_path):
    logging = cv2.utils.logging
    before = logging.getLogLevel()
    with quiet_opencv():
        with quiet_opencv():
            assert logging.getLogLevel() == logging.LOG_LEVEL_SILENT
        assert logging.getLogLevel() == logging.LOG_LEVEL_SILENT  # the outer section still holds
    assert logging.getLogLevel() == before
    with pytest.raises(CellbenchError, match="none of the 1 image files could be decoded"):
        decode_images([tmp_path / "missing.png"], "folder:x")
    assert logging.getLogLevel() == before
