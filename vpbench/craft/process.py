"""One item through the craft steps: annotate → validate → keywords → (sparsify) → key frames → records.

``process_item`` returns an ``ItemResult`` (the SFT / RL / rejected records and the item's report) and never
raises for a bad item: input, media, annotation and data errors become ``rejected`` records with a reason code
(``bad_record``, ``duplicate_id``, ``missing_media``, ``annotate_failed``, ``sparsify_failed``, ``data_error``);
unit-level rejections carry the validator's codes plus ``no_keywords`` / ``no_key_frames``. Configuration
errors (ConfigError: unknown scorer, unreachable endpoint) do propagate: they concern every item.

Records (the manifest schemas, vpbench/train/manifest.py for SFT):
  SFT ``{"id", "video", "start", "end", "prompt", "answer", "keywords", "key_frames", "n_frames", "meta"}``
  RL  ``{"id", "video", "start", "end", "prompt", "answer", "answer_type", "keywords", "key_frames"}``
``key_frames`` index the ``n_frames`` frames ``decode_frames(video, protocol, start, end)`` yields, i.e. the
frames the model samples under the configured protocol. ``video`` is relative to the output dir when the clip
lives under it (sparsified clips), else absolute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vpbench.craft.annotate import Annotation, QAItem
from vpbench.craft.config import CraftConfig
from vpbench.craft.inputs import CraftItem, safe_id
from vpbench.craft.validate import Rejection, validate_caption, validate_qa
from vpbench.errors import DataError, MissingMedia, VpbenchError


@dataclass
class ItemResult:
    sft: list[dict[str, Any]] = field(default_factory=list)
    rl: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    status: str = "done"
    retryable: bool = False


@dataclass(frozen=True)
class Unit:
    """A caption or a QA pair of one clip, ready to become a manifest line."""

    uid: str
    kind: str  # caption | qa
    prompt: str
    answer: str
    answer_type: str
    keyword_text: str
    source: dict[str, Any]


@dataclass
class Tools:
    """What the steps use, built once per run (annotator, keyword extractor, scorer, select/sparsify configs)."""

    cfg: CraftConfig
    out_dir: Path
    annotator: Any
    keywords: Any
    scorer: Any
    select_cfg: Any
    sparsify_cfg: Any


def _reject(rid: str, item: str, stage: str, reasons: Sequence[Rejection], extra: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    return {"id": rid, "item": item, "stage": stage, "reasons": [r.to_dict() for r in reasons], **(extra or {})}


def item_error(item: CraftItem, code: str, message: str, retryable: bool = False) -> ItemResult:
    res = ItemResult(status="error", retryable=retryable)
    res.rejected.append(_reject(item.id, item.id, "item", [Rejection(code, "item", message)]))
    res.report = {"item": item.id, "status": "error", "code": code}
    return res


def _options_block(options: Sequence[str]) -> str:
    return "\n".join(f"{chr(ord('A') + i)}. {o}" for i, o in enumerate(options))


def units_of(ann: Annotation, cfg: CraftConfig, item_id: str, prefix: str = ""
             ) -> tuple[list[Unit], list[dict[str, Any]]]:
    """Validated units of an annotation and the rejected records (unit uids get ``prefix``)."""
    units: list[Unit] = []
    rejected: list[dict[str, Any]] = []
    if ann.caption is not None:
        rid = f"{item_id}/{prefix}caption"
        bad = validate_caption(ann.caption, cfg.validate)
        if bad:
            rejected.append(_reject(rid, item_id, "validate", bad, {"caption": ann.caption}))
        else:
            units.append(Unit(f"{prefix}caption", "caption", cfg.prompts.caption, ann.caption.strip(), "open",
                              ann.caption, {"source": ann.source}))
    seen: set[str] = set()
    for j, q in enumerate(ann.qa):
        uid = prefix + (q.uid or f"qa{j}")
        if uid in seen:
            uid = f"{uid}_{j}"
        seen.add(uid)
        rid = f"{item_id}/{uid}"
        try:
            bad = validate_qa(q.question, q.answer, q.answer_type, q.options, cfg.validate)
        except ValueError as e:
            bad = [Rejection("bad_answer", "answer", str(e))]
        if not bad and q.answer_type == "choice":
            bad = _choice_letter_problems(q)  # checked whatever validate.grammar says (_qa_unit indexes by it)
        if bad:
            rejected.append(_reject(rid, item_id, "validate", bad, _qa_dict(q)))
            continue
        units.append(_qa_unit(uid, q, cfg, ann.source))
    return units, rejected


def _qa_dict(q: QAItem) -> dict[str, Any]:
    return {"question": q.question, "answer": q.answer, "answer_type": q.answer_type, "options": list(q.options)}


def _choice_letter_problems(q: QAItem) -> list[Rejection]:
    """A choice answer must be one letter naming one of >= 2 options."""
    letters = [chr(ord("A") + i) for i in range(len(q.options))]
    if len(q.options) < 2:
        return [Rejection("bad_options", "answer", f"a choice question needs >= 2 options, got {len(q.options)}")]
    if q.answer.strip() not in letters:
        return [Rejection("bad_answer", "answer", f"choice answer must be one of {letters}, got {q.answer!r}")]
    return []


def _qa_unit(uid: str, q: QAItem, cfg: CraftConfig, source: str) -> Unit:
    question, answer = q.question.strip(), q.answer.strip()
    if q.answer_type == "choice":
        prompt = cfg.prompts.choice.format(question=question, options=_options_block(q.options))
        text = q.options[ord(answer) - ord("A")]
    elif q.answer_type == "number":
        prompt, text = cfg.prompts.number.format(question=question), answer
    else:
        prompt, text = cfg.prompts.open.format(question=question), answer
    return Unit(uid, "qa", prompt, answer, q.answer_type, f"{question} {text}", {"source": source, **_qa_dict(q)})


def _video_field(path: Path, out_dir: Path) -> str:
    path = path.resolve()
    try:
        return path.relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def _scorer_segments(frames: np.ndarray, keywords: list[str], tools: Tools) -> list[tuple[int, int]]:
    from vpbench.keyframes.select import select_keys

    keys = select_keys(tools.scorer.score(frames, keywords), tools.select_cfg)
    pad, n = tools.cfg.sparsify.key_pad, frames.shape[0]
    return [(max(0, t - pad), min(n, t + pad + 1)) for t in keys]


def sparsify_item(item: CraftItem, video: Path, keywords: list[str], tools: Tools) -> tuple[Path, dict[str, Any]]:
    """Write the sparsified clip (when its key ratio exceeds the target) → (clip to use, report)."""
    from vpbench.keyframes.sparsify import sparsify_plan, apply_plan
    from vpbench.synth.render import write_mp4
    from vpbench.video.decode import decode_indices, probe
    from vpbench.video.sampler import frame_range

    sp = tools.cfg.sparsify
    info = probe(video)
    a, b, _ = frame_range(info.n_frames, info.fps, item.start, item.end)
    frames = decode_indices(video, range(a, b + 1))
    if item.key_segments is not None and sp.segments in ("auto", "annotation"):
        segs = [(max(s - a, 0), min(e - a, frames.shape[0])) for s, e in item.key_segments if e > a and s <= b]
        origin = "annotation"
    elif sp.segments == "annotation":
        raise DataError(f"clip {item.id!r} has no key_segments and sparsify.segments=annotation")
    else:
        segs, origin = _scorer_segments(frames, keywords, tools), "scorer"
    plan = sparsify_plan(frames.shape[0], info.fps, segs, tools.sparsify_cfg, clip_id=item.id) if segs else None
    rep: dict[str, Any] = {"segments_from": origin, "n_key_segments": len(segs)}
    if plan is None:
        return video, {**rep, "applied": False, "why": "no key segments"}
    rep.update({k: getattr(plan.report, k) for k in ("n_src_frames", "n_key_src", "ratio_before", "n_out_frames",
                                                   "ratio_after", "nonkey_fps_effective", "met_target")})
    if plan.report.ratio_before <= plan.report.target_ratio:
        return video, {**rep, "applied": False, "why": "key ratio already <= target",
                       "n_out_frames": plan.report.n_src_frames, "ratio_after": plan.report.ratio_before,
                       "nonkey_fps_effective": plan.report.src_fps}
    out = tools.out_dir / sp.video_dir / f"{safe_id(item.id)}.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(out, apply_plan(frames, plan), plan.out_fps)
    return out, {**rep, "applied": True}


def process_item(item: CraftItem, tools: Tools) -> ItemResult:
    """Run one item through every step (module docstring); never raises for a bad item."""
    from vpbench.video.decode import decode_frames, probe

    cfg = tools.cfg
    if item.error is not None:
        return item_error(item, *item.error)
    assert item.video is not None
    try:
        info = probe(item.video)
    except MissingMedia as e:
        return item_error(item, "missing_media", str(e))
    try:
        ann = tools.annotator.annotate(item, info.duration_s)
    except DataError as e:
        return item_error(item, "annotate_failed", str(e), retryable=True)
    anns = [(ann, "")]
    if cfg.annotate.annotator == "endpoint" and cfg.annotate.keep_existing and item.existing is not None:
        anns.append((item.existing, "ex_"))
    res = ItemResult()
    units: list[Unit] = []
    for a, prefix in anns:
        u, r = units_of(a, cfg, item.id, prefix)
        units += u
        res.rejected += r
    kw_units: list[tuple[Unit, list[str]]] = []
    for u in units:
        kws = [k for k in tools.keywords.extract(u.keyword_text) if k.strip()]
        if kws:
            kw_units.append((u, kws))
        else:
            res.rejected.append(_reject(f"{item.id}/{u.uid}", item.id, "keywords", [Rejection(
                "no_keywords", u.kind, f"no keyword phrase found in {u.keyword_text[:80]!r}")]))
    report: dict[str, Any] = {"item": item.id, "status": "done", "annotator": ann.source,
                              "units": sum(len(a.qa) + (a.caption is not None) for a, _ in anns), "sparsify": None}
    video, start, end = item.video, item.start, item.end
    try:
        if item.transient and cfg.sparsify.enabled and kw_units:
            all_kws = list(dict.fromkeys(k for _, ks in kw_units for k in ks))
            video, report["sparsify"] = sparsify_item(item, item.video, all_kws, tools)
            if video != item.video:
                start = end = None
        frames = decode_frames(video, cfg.protocol, start, end).array if kw_units else None
    except MissingMedia as e:
        return item_error(item, "missing_media", str(e))
    except VpbenchError as e:
        return item_error(item, "sparsify_failed" if item.transient else "data_error", str(e))
    vfield = _video_field(video, tools.out_dir)
    scores_cache: dict[tuple[str, ...], list[int]] = {}
    from vpbench.keyframes.select import select_keys

    for u, kws in kw_units:
        key = tuple(kws) if tools.scorer.name != "motion_energy" else ()
        if key not in scores_cache:
            scores_cache[key] = select_keys(tools.scorer.score(frames, list(kws)), tools.select_cfg)
        keys = scores_cache[key]
        rid = f"{item.id}/{u.uid}"
        if not any(k > 0 for k in keys):  # degrade() keeps frame 0: V' would equal V
            res.rejected.append(_reject(rid, item.id, "keyframes", [Rejection(
                "no_key_frames", u.kind, f"the scorer found no key frame after frame 0 among {frames.shape[0]} "
                f"sampled frames (key frames {list(keys)}), so the key-information-absent clip equals the clip")]))
            continue
        base = {"id": rid, "video": vfield, "start": start, "end": end, "prompt": u.prompt, "answer": u.answer}
        res.sft.append({**base, "keywords": kws, "key_frames": keys, "n_frames": int(frames.shape[0]),
                        "meta": {"item": item.id, "kind": u.kind, "answer_type": u.answer_type, **u.source}})
        if u.kind == "qa" or cfg.output.rl_captions:
            res.rl.append({**base, "answer_type": u.answer_type, "keywords": kws, "key_frames": keys})
    report.update({"accepted": len(res.sft), "rejected": len(res.rejected),
                   "n_frames": None if frames is None else int(frames.shape[0]), "video": vfield})
    res.report = report
    return res
