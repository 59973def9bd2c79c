"""Data craft (paper §3.4, RECIPE §4): annotate → validate → sparsify → key frames → SFT/RL manifests.

Entry points: ``vpbench.craft.pipeline.run_craft`` / ``load_craft_config``; the rule-based validator is
``vpbench.craft.validate``; annotators are in ``vpbench.craft.annotate``.
"""
