"""VRU-Accident VQA task (see task.py)."""
