"""Reports of a benchmark run, all computed from the stored rows through :mod:`robustbench_cells.bench.metrics`.

- ``rows``: what every table shows of a cell (model and adapter apart, recipe labels, targets);
- ``tables``: the terminal (rich) tables; ``records``: JSON, CSV, Markdown; ``compare``: two runs;
- ``figures``: matplotlib figures; ``html``: the self-contained HTML report; ``html_sections``: its
  built-in sections; ``formats``: the built-in ``--format`` renderers; ``context``: ``ReportContext``.

Formats and HTML sections are plugins (hooks ``register_report_formats``, ``register_report_sections``);
the built-ins register in :mod:`robustbench_cells.default_plugins.reports`.
"""
