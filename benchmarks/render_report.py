"""Render a cellbench HTML report in headless Chromium and check that it really displays.

    python benchmarks/render_report.py RUN_DIR/report.html [--screenshot shot.png]
    python benchmarks/render_report.py --run RUN_DIR            # writes RUN_DIR/report.html first

Checks (exit 1 when one fails):
1. Python side: every ``<img>`` src is a ``data:image/png;base64`` URI that decodes as a PNG.
2. Chromium, DOM: a probe copy of the page counts images that did not decode (``naturalWidth == 0``)
   after load; it must be 0.
3. Chromium, pixels: a 1280x2000 screenshot is not blank (pixel standard deviation above a threshold).

Needs ``/usr/bin/chromium`` (Debian: ``apt-get install -y chromium``) or ``--chromium PATH``.
"""

from __future__ import annotations

import argparse
import base64
import io
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MIN_PIXEL_STD = 10.0  # a white page or a single flat colour has std ~0
PROBE = """<script>window.addEventListener('load', function () {
  var bad = Array.prototype.filter.call(document.images, function (i) { return !i.complete || i.naturalWidth === 0; });
  var p = document.createElement('pre'); p.id = 'render-probe';
  p.textContent = 'images=' + document.images.length + ' broken=' + bad.length;
  document.body.appendChild(p);
});</script>"""
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1280,2000"]


def check_embedded_images(text: str) -> tuple[int, list[str]]:
    """``(number of <img>, problems)``: each src must be a base64 PNG data URI that PIL can decode."""
    from PIL import Image

    srcs = re.findall(r"<img\b[^>]*?\bsrc=\"([^\"]*)\"", text)
    problems = []
    for i, src in enumerate(srcs):
        if not src.startswith("data:image/png;base64,"):
            problems.append(f"img {i}: src is not a PNG data URI ({src[:40]!r})")
            continue
        try:
            Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True))).verify()
        except Exception as exc:  # noqa: BLE001 - any decode failure is the finding
            problems.append(f"img {i}: does not decode as PNG ({exc})")
    return len(srcs), problems


def chromium(binary: str, args: list[str], profile: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", nargs="?", type=Path, help="report.html to check")
    ap.add_argument("--run", type=Path, help="run folder: write RUN/report.html with cellbench first")
    ap.add_argument("--screenshot", type=Path, help="where to keep the screenshot (default: next to the html)")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args(argv)
    html_path = args.html
    if args.run is not None:
        from robustbench_cells.bench.metrics import load_summary
        from robustbench_cells.report.html import write_report

        t0 = time.perf_counter()
        html_path = write_report(load_summary(args.run), args.run / "report.html", run_dir=args.run)
        print(f"wrote {html_path} in {time.perf_counter() - t0:.1f} s")
    if html_path is None or not html_path.is_file():
        ap.error("give a report.html or --run RUN_DIR")
    text = html_path.read_text(encoding="utf-8")
    n_img, problems = check_embedded_images(text)
    print(f"{html_path}: {len(text) / 1e6:.2f} MB, {n_img} embedded images, {len(problems)} bad")
    if not Path(args.chromium).exists():
        print(f"chromium not found at {args.chromium}", file=sys.stderr)
        return 1
    shot = args.screenshot or html_path.with_suffix(".png")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        probe = tmp / "probe.html"
        probe.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom = chromium(args.chromium, ["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()], tmp / "p1")
        found = re.search(r"images=(\d+) broken=(\d+)", dom.stdout)
        if not found:
            problems.append(f"chromium DOM probe did not run (rc {dom.returncode}): {dom.stderr.strip()[-300:]}")
        else:
            shown, broken = int(found.group(1)), int(found.group(2))
            print(f"chromium: {shown} images in the DOM, {broken} failed to decode")
            if broken or shown != n_img:
                problems.append(f"chromium: {broken} broken images, {shown} in DOM vs {n_img} in the file")
        t0 = time.perf_counter()
        res = chromium(args.chromium, [f"--screenshot={shot.resolve()}", html_path.resolve().as_uri()], tmp / "p2")
        if not shot.is_file():
            problems.append(f"chromium wrote no screenshot (rc {res.returncode}): {res.stderr.strip()[-300:]}")
        else:
            from PIL import Image

            pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
            std = float(pixels.std())
            print(f"screenshot {shot} {pixels.shape[1]}x{pixels.shape[0]} in {time.perf_counter() - t0:.1f} s, "
                  f"pixel std {std:.1f} (blank below {MIN_PIXEL_STD})")
            if std < MIN_PIXEL_STD:
                problems.append(f"screenshot looks blank (pixel std {std:.1f})")
    for p in problems:
        print("FAIL", p)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
