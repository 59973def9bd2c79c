"""vpbench: evaluation harness and reference trainer for fine-grained video perception."""

__version__ = "0.1.0"
