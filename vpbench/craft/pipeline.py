"""The data-craft pipeline (paper §3.4, RECIPE §4): ``run_craft(cfg) -> CraftReport``.

Input: a generated / official MotionBench folder, or a folder of videos with optional existing annotations
(``vpbench.craft.inputs``). Per clip: annotate (``template`` or an OpenAI-compatible ``endpoint``) → validate
(``vpbench.craft.validate``) → keywords → sparsify transient-event clips (RECIPE §1.5) → key frames on the frames
the model samples under ``cfg.protocol`` → records (``vpbench.craft.process``).

Outputs under ``output.dir``:
  ``sft.jsonl``       the SFT manifest (vpbench/train/manifest.py schema)
  ``rl.jsonl``        the RL manifest, one line per prompt, with ``answer_type`` choice|number|open
  ``rejected.jsonl``  every rejected unit or item with its reason codes and messages
  ``state.jsonl``     per-item progress (``vpbench.craft.state``)
  ``craft_report.json`` counts, reason counts and per-clip key ratios before/after sparsification; rebuilt from
                      the state at the end of every run (so a resumed run reports exactly what a clean one does)
  ``videos/``         the sparsified clips

Resumable and append-only: finished items are skipped; an interrupted item is redone and only its missing lines
are appended; nothing written is rewritten. A bad record never stops the run (it lands in ``rejected.jsonl``);
a configuration error (ConfigError) does.

CLI: ``vpbench data craft --config FILE [--set section.key=value]`` → ``run_craft(load_craft_config(path, sets))``.
"""

from __future__ import annotations

import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from vpbench.craft.config import CraftConfig, craft_config_from_mapping, load_craft_config
from vpbench.craft.inputs import CraftItem, iter_motionbench, iter_videos
from vpbench.craft.process import ItemResult, Tools, item_error, process_item
from vpbench.craft.state import JsonlSink, StateFile, config_fingerprint, write_json_atomic
from vpbench.errors import ConfigError

__all__ = ["CraftConfig", "CraftReport", "load_craft_config", "craft_config_from_mapping", "run_craft",
           "build_tools", "iter_items"]

OUTPUTS = ("sft", "rl", "rejected")


@dataclass(frozen=True)
class CraftReport:
    """Outcome of one ``run_craft`` call. ``processed`` / ``skipped`` count this run's items; the other counts
    cover the whole output dir (as ``craft_report.json``)."""

    out_dir: Path
    items: int
    processed: int
    skipped: int
    done: int
    errors: int
    sft: int
    rl: int
    rejected: int
    reasons: dict[str, int] = field(default_factory=dict)
    report_path: Path | None = None


def build_tools(cfg: CraftConfig) -> Tools:
    from vpbench.craft.annotate import get_annotator
    from vpbench.keyframes.keywords import get_keyword_extractor
    from vpbench.keyframes.scorers import get_scorer
    from vpbench.keyframes.select import SelectConfig
    from vpbench.keyframes.sparsify import SparsifyConfig

    a = cfg.annotate
    annotator = get_annotator(a.annotator, a.endpoint if a.annotator == "endpoint" else None)
    sp = cfg.sparsify
    return Tools(
        cfg=cfg, out_dir=Path(cfg.output.dir), annotator=annotator,
        keywords=get_keyword_extractor(cfg.keywords.backend, **cfg.keywords.options),
        scorer=get_scorer(cfg.keyframes.scorer, **cfg.keyframes.scorer_options),
        select_cfg=SelectConfig(cfg.keyframes.min_prominence, cfg.keyframes.max_key_ratio),
        sparsify_cfg=SparsifyConfig(sp.nonkey_fps, sp.target_ratio, sp.adapt_nonkey_fps, sp.max_nonkey_fps),
    )


def iter_items(cfg: CraftConfig) -> Iterator[CraftItem]:
    """The configured input's items, duplicates of an earlier id turned into ``duplicate_id`` errors."""
    i = cfg.input
    root = Path(i.root)
    src = (iter_motionbench(root, i.transient_categories) if i.kind == "motionbench"
           else iter_videos(root, Path(i.annotations) if i.annotations else None))
    seen: Counter[str] = Counter()
    for n, item in enumerate(src):
        if i.limit is not None and n >= i.limit:
            return
        seen[item.id] += 1
        if seen[item.id] > 1:
            yield CraftItem(id=f"{item.id}#dup{seen[item.id] - 1}", video=None,
                            error=("duplicate_id", f"clip id {item.id!r} appears more than once in the input"))
        else:
            yield item


def _safe_process(item: CraftItem, tools: Tools) -> ItemResult:
    try:
        return process_item(item, tools)
    except ConfigError:
        raise
    except Exception as e:  # a bad record must never stop the run; it is reported and retried next run
        where = traceback.extract_tb(e.__traceback__)[-1]
        return item_error(item, "internal_error", f"{type(e).__name__}: {e} (at {Path(where.filename).name}:"
                          f"{where.lineno}); report this with the clip", retryable=True)


def _reason_counts(rejected: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(r["code"] for rec in rejected for r in rec["reasons"]))


def _summary(cfg: CraftConfig, order: list[str], state: StateFile, sinks: dict[str, JsonlSink]) -> dict[str, Any]:
    clips = [state.entries[i]["report"] for i in order if i in state.entries]
    reasons: Counter[str] = Counter()
    for i in order:
        if i in state.entries:
            reasons.update(state.entries[i]["report"].get("reasons", {}))
    sp = [{"item": c["item"], **c["sparsify"]} for c in clips if c.get("sparsify")]
    applied = [s for s in sp if s.get("applied")]

    def mean(key: str) -> float | None:
        return sum(s[key] for s in applied) / len(applied) if applied else None

    return {
        "config": cfg.to_dict(),
        "counts": {
            "items": len(order), "done": sum(c["status"] == "done" for c in clips),
            "errors": sum(c["status"] == "error" for c in clips),
            "sft": sum(len(state.entries[i]["sft"]) for i in order if i in state.entries),
            "rl": sum(len(state.entries[i]["rl"]) for i in order if i in state.entries),
            "rejected": sum(len(state.entries[i]["rejected"]) for i in order if i in state.entries),
        },
        "reasons": dict(sorted(reasons.items())),
        "sparsify": {"clips": sp, "applied": len(applied), "mean_ratio_before": mean("ratio_before"),
                     "mean_ratio_after": mean("ratio_after"),
                     "met_target": sum(bool(s.get("met_target")) for s in applied)},
        "clips": clips,
        "files": {"corrupt_lines": {k: s.corrupt_lines for k, s in sinks.items()}},
    }


def run_craft(cfg: CraftConfig) -> CraftReport:
    """Craft the configured input into manifests under ``cfg.output.dir`` (module docstring). Resumable."""
    out = Path(cfg.output.dir)
    out.mkdir(parents=True, exist_ok=True)
    state = StateFile(out / "state.jsonl", config_fingerprint(cfg.to_dict()))  # refuses a changed config first
    try:
        tools = build_tools(cfg)
    except BaseException:
        state.close()
        raise
    sinks = {k: JsonlSink(out / f"{k}.jsonl") for k in OUTPUTS}
    order: list[str] = []
    processed = skipped = 0
    try:
        for item in iter_items(cfg):
            order.append(item.id)
            if state.finished(item.id, sinks, cfg.output.retry_errors):
                skipped += 1
                continue
            res = _safe_process(item, tools)
            for kind in ("rejected", "sft", "rl"):
                for rec in getattr(res, kind):
                    sinks[kind].write(rec)
            state.record({"item": item.id, "status": res.status, "retryable": res.retryable,
                          "sft": [r["id"] for r in res.sft], "rl": [r["id"] for r in res.rl],
                          "rejected": [r["id"] for r in res.rejected],
                          "report": {**res.report, "reasons": _reason_counts(res.rejected)}})
            processed += 1
        summary = _summary(cfg, order, state, sinks)
        path = out / "craft_report.json"
        write_json_atomic(path, summary)
    finally:
        for s in sinks.values():
            s.close()
        state.close()
    c = summary["counts"]
    return CraftReport(out_dir=out, items=c["items"], processed=processed, skipped=skipped, done=c["done"],
                       errors=c["errors"], sft=c["sft"], rl=c["rl"], rejected=c["rejected"],
                       reasons=summary["reasons"], report_path=path)


def main(argv: list[str] | None = None) -> int:
    """``python -m vpbench.craft.pipeline --config FILE [--set k=v ...]`` (the same as ``vpbench data craft``)."""
    import argparse

    from vpbench.config import parse_assignments

    ap = argparse.ArgumentParser(prog="python -m vpbench.craft.pipeline", description="data craft (paper §3.4)")
    ap.add_argument("--config", required=True, type=Path)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ns = ap.parse_args(argv)
    r = run_craft(load_craft_config(ns.config, parse_assignments(ns.set)))
    print(f"craft: {r.items} clips ({r.processed} processed, {r.skipped} already done, {r.errors} errors) -> "
          f"{r.sft} SFT / {r.rl} RL lines, {r.rejected} rejected; report {r.report_path}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
