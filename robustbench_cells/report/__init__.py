"""Reports of a benchmark run: rich/CSV/JSON/Markdown tables (``tables``), matplotlib figures
(``figures``) and the self-contained HTML report (``html``), all computed from the stored rows
through :mod:`robustbench_cells.bench.metrics`.
"""
