"""The web UI for coaches, auditors and admins: one module per page group."""
