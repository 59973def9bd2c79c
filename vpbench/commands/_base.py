"""Shared argparse pieces for the subcommand modules: the strict parser, groups, common options.

Imports nothing heavy: every command module imports only this at module level and loads the
library lazily inside its handler, so `vpbench --help` and replay/score runs start fast.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

from vpbench.config import suggest


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from e
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from e
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows '(default: X)' for options that have a real default (not None/False/suppressed)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        if isinstance(action.default, (list, tuple)) and not action.default:
            return text
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for unknown flags (against the chosen subcommand's own flags,
    never the flag that was typed), no prefix abbreviations and defaults shown in --help."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        kw.setdefault("allow_abbrev", False)
        kw.setdefault("formatter_class", HelpFormatter)
        super().__init__(*a, **kw)

    def error(self, message: str):  # type: ignore[override]
        """argparse's message, plus "did you mean" for a mistyped subcommand or choice."""
        import re

        bad = re.match(r"argument \S+: invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if bad:
            message += suggest(bad.group(1), re.findall(r"'([^']*)'", bad.group(2)))
        super().error(message)

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        ns, unknown = self.parse_known_args(args, namespace)
        if unknown:
            leaf: argparse.ArgumentParser = getattr(ns, "_leaf", None) or self
            foreign_table = getattr(leaf, "foreign_flags", {})
            foreign = [u.split("=")[0] for u in unknown if u.split("=")[0] in foreign_table]
            if foreign:  # another harness's flags: answer each with the vpbench way, all at once
                leaf.error("; ".join(f"{f}: {foreign_table[f]}" for f in foreign))
            known = [o for a in leaf._actions for o in a.option_strings]
            flag = unknown[0].split("=")[0]
            hint = suggest(flag, [k for k in known if k != flag]) if flag.startswith("-") else ""
            leaf.error(f"unknown argument '{unknown[0]}'{hint}")
        return ns


Handler = Callable[[argparse.Namespace], int]


def command(subparsers: argparse._SubParsersAction, name: str, fn: Handler, **kw: Any) -> argparse.ArgumentParser:
    """Add a leaf subcommand whose handler is ``fn(namespace) -> exit code``."""
    kw.setdefault("description", kw.get("help"))
    p = subparsers.add_parser(name, **kw)
    p.set_defaults(fn=fn, _leaf=p)
    return p


def group(subparsers: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    """The sub-subparsers of a command group (``data``, ``model``, ``train``), created on first use,
    so several modules can add commands to one group (``train sft`` and ``train grpo``)."""
    existing = subparsers.choices.get(name)
    if existing is None:
        existing = subparsers.add_parser(name, help=help, description=help)
        existing.set_defaults(_leaf=existing)
        existing._vp_group = existing.add_subparsers(dest=f"{name}_command", required=True,  # type: ignore[attr-defined]
                                                     metavar="COMMAND")
    return existing._vp_group  # type: ignore[attr-defined]


def add_set_option(p: argparse.ArgumentParser, help: str) -> None:
    """The one override convention of every command: repeatable ``--set KEY=VALUE``."""
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="set", help=help)


def print_run_files(run_dir, *, title: str = "run directory") -> None:
    """The closing lines of a command that writes a run: where it is and which files it holds."""
    from pathlib import Path

    root = Path(run_dir)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                   if p.is_file() and not p.name.endswith(".tmp") and not p.name.startswith("."))  # not the lock
    print(f"{title}: {root.resolve()}")
    print(f"  files: {', '.join(files)}")
