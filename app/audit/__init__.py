"""The audit trail: the hash chain of decisions and overrides, and the access log of people's reads."""
