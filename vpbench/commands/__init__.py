"""Subcommands of the ``vpbench`` CLI, one module each.

A module here exposing ``register(subparsers)`` (and optionally ``ORDER``, default 100: its place
in ``vpbench --help``) is found by ``vpbench.cli`` automatically; adding a command needs no edit
to ``cli.py``. Modules whose names start with ``_`` are helpers. A module must import nothing
heavy at module level: load the library inside the handler. Nested groups (``train sft``,
``train grpo``) share their group via ``vpbench.commands._base.group``.
"""
