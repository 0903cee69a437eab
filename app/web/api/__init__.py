"""The HTTP API of docs/CONTRACT.md: one module per resource."""
