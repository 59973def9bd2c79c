"""VRU-Accident dense-captioning task (see task.py)."""
