"""Command line entry point (``vpbench``, ``python -m vpbench``).

Each subcommand lives in its own module under ``vpbench/commands/`` exposing
``register(subparsers)``; they are discovered there, so adding one needs no edit here.

Exit codes: 0 ok, 2 user error (bad flag/config/data, with a message saying the fix),
4 internal error, 130 interrupted, 141 stdout closed early (broken pipe).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from typing import Sequence

import vpbench
from vpbench.commands._base import Parser
from vpbench.errors import VpbenchError


def command_modules() -> list:
    """Every ``vpbench.commands.<name>`` module with a ``register``, in ``ORDER`` then name order."""
    import vpbench.commands as pkg

    mods = [importlib.import_module(f"{pkg.__name__}.{m.name}")
            for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")]
    mods = [m for m in mods if hasattr(m, "register")]
    return sorted(mods, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="vpbench", description="Evaluate and train video MLLMs on fine-grained perception.")
    p.add_argument("--version", action="version", version=f"vpbench {vpbench.__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        module.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        ns = build_parser().parse_args(argv)
        ns.argv = ["vpbench", *argv]
        return int(ns.fn(ns))
    except VpbenchError as e:
        print(f"vpbench: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("vpbench: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `vpbench tasks | head`: the reader left; stop quietly like a shell tool
        _silence_stdout()
        return 141
    except Exception as e:  # a bug, not bad input: exit 4 with the traceback kept in a file
        from vpbench.errors import report_internal_error

        print(report_internal_error(e, ["vpbench", *argv]), file=sys.stderr)
        return 4


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured): nothing to flush
        pass
