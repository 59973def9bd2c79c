"""CLI subcommands that live in their own modules (each exposes ``register``)."""
