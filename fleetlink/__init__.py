"""Composition root: settings, embedded PostgreSQL, migrations, runtime and the CLI."""
