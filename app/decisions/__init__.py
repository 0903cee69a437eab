"""The decision log: storing each decision once and chaining it, reading it within scope, stats, overrides."""
