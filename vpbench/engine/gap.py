"""Perception gap: score(full video) − score(key-information-absent video), paired per sample.

Each sample's key frames are found on the frames the model actually sees (same sampler and
pixel budget), from keywords of the sample's question and answer text, and replaced by their
original predecessors (RECIPE.md §1). A model that uses the transient frames loses accuracy on
the key-absent clips; the paired cluster-bootstrap CI of the difference says by how much.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from vpbench.errors import ConfigError, DataError
from vpbench.hashing import stable_hash
from vpbench.metrics.aggregate import ci_method
from vpbench.task import StatsOptions
from vpbench.types import Frames, MetricResult, Record, Sample


@dataclass(frozen=True)
class GapOptions:
    """How key frames are found. ``scorer``: blip2 (RECIPE default; needs ``scorer_path``), clip,
    motion_energy (generated data), random (Ablation A)."""

    scorer: str = "blip2"
    scorer_path: str | None = None
    keywords: str = "rule"
    min_prominence: float = 0.0
    max_key_ratio: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        from vpbench.config import suggest
        from vpbench.keyframes.scorers import scorer_names

        if self.scorer not in scorer_names():
            raise ConfigError(f"gap.scorer {self.scorer!r} is unknown{suggest(self.scorer, scorer_names())}; "
                              f"known: {', '.join(scorer_names())}")
        if self.min_prominence < 0 or not 0 < self.max_key_ratio <= 1:
            raise ConfigError(f"gap: need min_prominence >= 0 and 0 < max_key_ratio <= 1, got "
                              f"{self.min_prominence}, {self.max_key_ratio}")

    def fingerprint(self) -> str:
        return stable_hash(self)


def sample_text(sample: Sample) -> str:
    """Question plus the text of the correct option (when the answer is known and is a letter)."""
    text = sample.question
    if sample.answer is not None:
        for opt in sample.options:
            label, _, body = opt.partition(".")
            if label.strip() == sample.answer:
                return f"{text} {body.strip()}"
        if not sample.options:
            text = f"{text} {sample.answer}"
    return text


Transform = Callable[[Sample, Frames], "tuple[Frames, tuple[int, ...]]"]


def make_transform(opts: GapOptions) -> Transform:
    """Build the frames → key-absent frames function (scorer and extractor created once)."""
    from vpbench.keyframes.degrade import key_absent
    from vpbench.keyframes.keywords import RuleBasedKeywords
    from vpbench.keyframes.scorers import get_scorer
    from vpbench.keyframes.select import SelectConfig

    if opts.keywords != "rule":
        raise DataError(f"perception gap: keyword backend {opts.keywords!r} is not supported here; use 'rule'")
    scorer_opts: dict[str, Any] = {}
    if opts.scorer in ("blip2", "clip"):
        if not opts.scorer_path:
            raise DataError(f"perception gap: scorer '{opts.scorer}' needs a local checkpoint dir: "
                            f"--set gap.scorer_path=DIR (or --set gap.scorer=motion_energy for generated data)")
        scorer_opts["model_dir"] = opts.scorer_path
    elif opts.scorer == "random":
        scorer_opts["seed"] = opts.seed
    scorer = get_scorer(opts.scorer, **scorer_opts)
    extractor = RuleBasedKeywords()
    select = SelectConfig(min_prominence=opts.min_prominence, max_key_ratio=opts.max_key_ratio)

    def transform(sample: Sample, frames: Frames) -> tuple[Frames, tuple[int, ...]]:
        keywords = extractor.extract(sample_text(sample)) or [sample.question]
        out = key_absent(frames.array, keywords, scorer, select)
        return dataclasses.replace(frames, array=out.degraded), tuple(int(i) for i in out.key_idx)

    return transform


def gap_metrics(full: Sequence[Record], absent: Sequence[Record], score_key: str,
                stats: StatsOptions) -> dict[str, MetricResult]:
    """Paired full / key-absent / Δ (= full − key_absent) over samples scored in both passes."""
    from vpbench.metrics.stats import cluster_bootstrap, paired_cluster_bootstrap

    a = {r.sample_id: r for r in absent if r.answer is not None}
    pairs = [(r, a[r.sample_id]) for r in full if r.answer is not None and r.sample_id in a]
    if not pairs:
        raise DataError("perception gap: no sample was scored in both the full and the key-absent pass")
    try:
        x_full = np.array([float(f.scores[score_key]) for f, _ in pairs])
        x_abs = np.array([float(k.scores[score_key]) for _, k in pairs])
    except KeyError as e:
        raise DataError(f"perception gap: records lack score '{score_key}'") from e
    clusters = [f.cluster or f.sample_id for f, _ in pairs]
    n, k = len(pairs), len(set(clusters))
    method = ci_method(stats)
    out = {}
    for name, x in (("full", x_full), ("key_absent", x_abs)):
        lo, hi = cluster_bootstrap(x, clusters, n_boot=stats.n_boot, seed=stats.seed, alpha=stats.alpha) \
            if stats.n_boot else (None, None)
        out[name] = MetricResult(f"{score_key} ({name})", float(x.mean()), lo, hi, n, k, 0, method)
    if stats.n_boot:
        delta, lo, hi = paired_cluster_bootstrap(x_abs, x_full, clusters, n_boot=stats.n_boot, seed=stats.seed,
                                                 alpha=stats.alpha)
    else:
        delta, lo, hi = float(x_full.mean() - x_abs.mean()), None, None
    out["delta"] = MetricResult(f"Δ {score_key} (full − key_absent)", float(delta), lo, hi, n, k, 0,
                                "paired-" + method)
    return out
