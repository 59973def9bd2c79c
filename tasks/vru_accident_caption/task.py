"""VRU-Accident dense captioning: one ~150-word reference description per crash video (1,000).

Reads ``MetaData/<SRC>/<SRC>_Dense_Caption.json`` unchanged (``{"./VRU_videos/<SRC>/VRU_<n>":
{"gt": ...}}``, keys without ``.mp4``); videos at ``VRU_videos/<SRC>/VRU_<n>.mp4``. The prompt
is the official one verbatim (indentation and " \\n" line ends included), in a user message
``[text, video]``; 8 frames, ``max_new_tokens=200``, greedy.

Per-sample scores (in each record): ROUGE-1/2/L P/R/F (``rouge1_p`` … ``rougeL_f``) and
``meteor``, computed as the official ``utils/evaluation.py`` (see vpbench.metrics.captions).
SPICE (needs CoreNLP 3.6.0 jars, ``$VPBENCH_CORENLP_DIR``) and COMET (``$VPBENCH_COMET_CKPT``) run
over all captions at once in :func:`aggregate`; when their runtime is absent the other metrics
still report and a note says what to install. All metrics are macro means over samples (0-1).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from vpbench.errors import DataError, MetricUnavailable
from vpbench.metrics.aggregate import group_metrics, mean_metric, scorable
from vpbench.parsers.vru import CAPTION_DEFAULT_PARSER, CAPTION_PARSERS
from vpbench.protocol import Protocol
from vpbench.task import Aggregation, StatsOptions, Task, chat_messages
from vpbench.types import Message, MetricResult, Record, Sample, VideoRef

NAME = "vru_accident_caption"
SOURCES = ("CAP_DATA", "DADA_2000", "DoTA", "MANUAL_DATA")
"""Official order: the official evaluation concatenates the sources in this order."""
OFFICIAL_PROMPT = (
    "\n        Provide a detailed description of this crash video. \n\n"
    "        Use clear and complete sentences with appropriate traffic and crash-related terminology. \n\n"
    "        Include descriptions of weather conditions, road type, and vehicle or pedestrian appearance "
    "(such as clothing and posture). \n\n"
    "        Mention vehicle speed, trajectory, and movements, as well as any changes in the pedestrian's "
    "behavior. \n\n"
    "        Focus on the dynamics of the collision, including vehicle approach, pedestrian movement, "
    "and final impact. \n\n        "
)
"""``utils/utils.py: build_conversation_template`` dense-captioning text, byte for byte."""
ROUGE_COLUMNS = tuple(
    (f"{key}_{k}", f"ROUGE-{label} {k.upper()}")
    for key, label in (("rouge1", "1"), ("rouge2", "2"), ("rougeL", "L"))
    for k in ("p", "r", "f")
)
"""(score key, reported name), e.g. ("rougeL_f", "ROUGE-L F")."""


def caption_file(src: str) -> str:
    return f"MetaData/{src}/{src}_Dense_Caption.json"


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise DataError(f"{path} not found: copy MetaData/ from github.com/Kimyounggun99/VRU-Accident "
                        f"into the data root (see tasks/{NAME}/README.md)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e}); use the official file unchanged") from e
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object keyed by video path")
    return data


def _stem(key: str, src: str, where: str) -> str:
    rel = key[2:] if key.startswith("./") else key
    parts = rel.split("/")
    if len(parts) != 3 or parts[0] != "VRU_videos" or parts[1] != src or not parts[2].startswith("VRU_"):
        raise DataError(f"{where}: key {key!r} is not './VRU_videos/{src}/VRU_<n>'; use the official file unchanged")
    return parts[2][:-4] if parts[2].endswith(".mp4") else parts[2]


def load_samples(root: Path) -> list[Sample]:
    samples: list[Sample] = []
    for src in SOURCES:
        path = Path(root) / caption_file(src)
        for index, (key, item) in enumerate(_read_json(path).items()):
            where = f"{path} [{key!r}]"
            stem = _stem(key, src, where)
            if not isinstance(item, dict) or not isinstance(item.get("gt"), str):
                raise DataError(f"{where}: expected {{'gt': <caption string>}}")
            samples.append(Sample(
                id=f"{NAME}/{src}/{stem}", task=NAME, video=VideoRef(f"VRU_videos/{src}/{stem}.mp4"),
                question=OFFICIAL_PROMPT, answer=item["gt"], cluster=f"{src}/{stem}",
                groups={"source": src}, meta={"video_key": key, "index": index},
            ))
    return samples


def build_messages(sample: Sample, protocol: Protocol) -> tuple[Message, ...]:
    text = protocol.prompt_template.format(question=sample.question)
    return chat_messages(text, protocol, video_first=False)  # official order for Qwen: [text, video]


def score(parsed: str | None, answer: str, meta: Mapping[str, Any]) -> dict[str, float]:
    """ROUGE P/R/F and METEOR of (reference=answer, hypothesis=parsed); None scores as "".

    METEOR is left out (and a note reported by :func:`aggregate`) when WordNet is not installed.
    """
    from vpbench.metrics.captions import meteor, rouge_scores

    hyp = parsed or ""
    out = rouge_scores(answer, hyp)
    try:
        out["meteor"] = meteor(answer, hyp)
    except MetricUnavailable:
        pass
    return out


def _official_order(recs: Sequence[Record]) -> list[Record]:
    rank = {s: i for i, s in enumerate(SOURCES)}
    return sorted(recs, key=lambda r: (rank.get(r.groups.get("source", ""), len(rank)), r.meta.get("index", 0)))


def _corpus_metric(name: str, key: str, recs: Sequence[Record], stats: StatsOptions,
                   fn: Callable[[list[str], list[str]], list[float]], notes: list[str]) -> tuple[MetricResult, ...]:
    """Run a corpus-level scorer (SPICE / COMET) over all pairs; per-sample values give the CI."""
    refs = [r.answer or "" for r in recs]
    hyps = [r.parsed or "" for r in recs]
    try:
        values = fn(refs, hyps)
    except MetricUnavailable as e:
        notes.append(f"{name} not reported: {e}")
        return ()
    bad = sum(1 for v in values if not math.isfinite(v))
    if bad:
        notes.append(f"{name} not reported: no score for {bad} samples (the official mean would be NaN)")
        return ()
    scored = [dataclasses.replace(r, scores={**r.scores, key: v}) for r, v in zip(recs, values)]
    return (mean_metric(name, scored, key, stats),)


def _spice(refs: list[str], hyps: list[str]) -> list[float]:
    from vpbench.metrics.captions import spice_scores

    return spice_scores(refs, hyps)


def _comet(refs: list[str], hyps: list[str]) -> list[float]:
    from vpbench.metrics.captions import comet_scores

    return comet_scores(refs, hyps)


def aggregate(records: Sequence[Record], stats: StatsOptions) -> Aggregation:
    recs = _official_order(scorable(records))
    if not recs:
        return Aggregation(metrics=(), notes=("no scorable records",))
    notes: list[str] = []
    metrics: list[MetricResult] = list(_corpus_metric("SPICE", "spice", recs, stats, _spice, notes))
    if all("meteor" in r.scores for r in recs):
        metrics.append(mean_metric("METEOR", recs, "meteor", stats))
        primary = "meteor"
    else:
        from vpbench.metrics.wordnet import INSTALL_HINT

        notes.append(f"METEOR not reported: WordNet is missing for some records; `{INSTALL_HINT}` and re-score")
        primary = "rougeL_f"
    metrics.extend(_corpus_metric("COMET", "comet", recs, stats, _comet, notes))
    metrics.extend(mean_metric(label, recs, key, stats) for key, label in ROUGE_COLUMNS)
    by_source = group_metrics(recs, primary, "source", stats, order=list(SOURCES))
    return Aggregation(metrics=tuple(metrics), by_group={f"source ({primary})": by_source}, notes=tuple(notes))


# --- official responses → replay ------------------------------------------------------------
def official_caption_pairs(model_dir: Path, data_root: Path) -> list[tuple[str, str, bool]]:
    """[(sample_id, pred, keys_agree)] pairing the official way: **by dict order**, per source.

    The official ``Dense_Captioning_eval`` takes ``[data[key][field] for key in data]`` of the
    response file and of the MetaData file and zips them, so the i-th response is scored
    against the i-th reference whatever its key. ``keys_agree`` tells whether the response's key
    (minus ".mp4") is the reference key too (True for every official response file).
    """
    out: list[tuple[str, str, bool]] = []
    for src in SOURCES:
        pred_path = Path(model_dir) / f"{src}_Dense_Captioning_response.json"
        gt_path = Path(data_root) / caption_file(src)
        preds, gts = _read_json(pred_path), _read_json(gt_path)
        if len(preds) != len(gts):
            raise DataError(f"{pred_path}: {len(preds)} captions for {len(gts)} references in {gt_path} "
                            "(the official evaluation asserts equal counts)")
        for (pkey, item), gkey in zip(preds.items(), gts):
            if not isinstance(item, dict) or not isinstance(item.get("pred"), str):
                raise DataError(f"{pred_path} [{pkey!r}]: expected {{'pred': <caption string>}}")
            agree = (pkey[:-4] if pkey.endswith(".mp4") else pkey) == gkey
            out.append((f"{NAME}/{src}/{_stem(gkey, src, str(gt_path))}", item["pred"], agree))
    return out


def official_caption_replay(model_dir: Path, data_root: Path, out_file: Path) -> int:
    """Write a ``replay:FILE`` JSONL ({"sample_id", "response"}) from an official model folder,
    paired by dict order as the official scorer does (:func:`official_caption_pairs`).
    The saved captions are already cleaned: score them with the ``raw`` parser (the default)."""
    from vpbench.models.replay import write_replay

    return write_replay(out_file, NAME, ((sid, pred) for sid, pred, _ in official_caption_pairs(model_dir, data_root)))


def _synth(out: Path, seed: int) -> None:
    """Generated data in the official layout (2 clips per source): see tasks/vru_accident_vqa/synth.py."""
    from ..vru_accident_vqa.synth import synth_vru

    synth_vru(out, seed)


TASK = Task(
    name=NAME,
    version="1.0",
    description="VRU-Accident dense captioning: SPICE/METEOR/COMET/ROUGE vs one reference per video",
    load_samples=load_samples,
    build_messages=build_messages,
    protocol=Protocol(fps=None, nframes=8, prompt_template="{question}", prompt_version="vru-official",
                      max_new_tokens=200),
    parsers=CAPTION_PARSERS,
    default_parser=CAPTION_DEFAULT_PARSER,
    score=score,
    aggregate=aggregate,
    primary_metric="METEOR",
    annotation_files=tuple(caption_file(s) for s in SOURCES),
    video_dir="",
    synth=_synth,
    requires={m: "pip install -c constraints.txt -e '.[captions]' (the captions extra: rouge-score, nltk, "
                 "pycocoevalcap)" for m in ("rouge_score", "nltk")},
)
