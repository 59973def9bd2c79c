"""Benchmark-specific answer parsers (official post-processors reproduced as ``vpbench.task.Parser``s).

One module per benchmark, e.g. :mod:`vpbench.parsers.vru` for VRU-Accident. Modules are imported
by the tasks that use them; nothing is imported here.
"""
