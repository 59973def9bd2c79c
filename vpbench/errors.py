"""Error hierarchy. Each error maps to a process exit code in the CLI."""

from __future__ import annotations


class VpbenchError(Exception):
    """Base class: a user-facing error whose message says what is wrong and how to fix it."""

    exit_code = 2


class ConfigError(VpbenchError):
    """Unknown key, bad value or bad flag in a config / override."""


class DataError(VpbenchError):
    """A malformed annotation file or record (names the file, the record and the fix)."""


class MissingMedia(VpbenchError):
    """Preflight found videos that are missing or do not decode."""


class ProtocolUnsupported(VpbenchError):
    """A backend cannot honour the requested protocol."""


class MetricUnavailable(VpbenchError):
    """A metric's runtime (Java jars, a COMET checkpoint, WordNet data) is not installed."""


class RunDirMismatch(VpbenchError):
    """An output dir holds a run whose fingerprints differ from the requested one."""


class RunLocked(VpbenchError):
    """Another process holds the run directory's lock."""


def report_internal_error(exc: BaseException, argv: list[str] | tuple[str, ...] = ()) -> str:
    """The one-paragraph message for an unexpected exception (exit code 4). The traceback goes to a
    file under the temp dir (``VPBENCH_TRACEBACK=1`` prints it instead), so the user sees no Python
    traceback for a bug but the report keeps everything needed to fix it."""
    import os
    import tempfile
    import time
    import traceback

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if os.environ.get("VPBENCH_TRACEBACK"):
        return f"{text}vpbench: internal error (exit 4): {type(exc).__name__}: {exc}"
    where = os.path.join(tempfile.gettempdir(), f"vpbench-internal-error-{time.strftime('%Y%m%d-%H%M%S')}-"
                                                f"{os.getpid()}.txt")
    try:
        with open(where, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(" ".join(argv) + "\n\n" + text)
    except OSError:
        where = "(could not be written; re-run with VPBENCH_TRACEBACK=1 to print it)"
    return (f"vpbench: internal error (exit 4): {type(exc).__name__}: {exc}\n"
            f"This is a bug in vpbench, not in your input. The traceback is in {where}; "
            f"please report it with that file. Work already done in the run directory is kept.")
