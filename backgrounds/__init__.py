"""The shipped background images (``*.png``/``*.jpg``), their ``MANIFEST.csv`` and their generator
(``make_backgrounds.py``).

Installed as the package ``robustbench_cells.backgrounds`` (``package-dir`` in pyproject.toml), so
:mod:`robustbench_cells.data.backgrounds` reads them with :mod:`importlib.resources` from a wheel,
a zip or an editable install alike. Nothing here is imported at run time.
"""
