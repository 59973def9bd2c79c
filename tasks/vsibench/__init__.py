"""VSI-Bench task (see task.py)."""
