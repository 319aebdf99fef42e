"""The ``cellbench`` command line (typer): one module per command group."""
