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
