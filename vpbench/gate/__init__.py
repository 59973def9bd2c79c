"""Checkpoint regression gate: compare two runs sample by sample and decide PASS / REGRESSION /
INCONCLUSIVE / INVALID against a policy of non-inferiority margins (``vpbench compare``,
``vpbench regress``, ``vpbench baseline freeze``)."""
