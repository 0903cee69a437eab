"""`python -m app.cli`: the `reitti` command."""

from app.cli.main import main

raise SystemExit(main())
