"""VideoMMMU tasks (see task.py)."""
