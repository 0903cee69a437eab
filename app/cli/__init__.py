"""The `reitti` command line: one module per command group."""
