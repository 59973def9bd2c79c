"""Run directories → tidy pandas frames.

``load_metrics(dirs)``: one row per (run, task, group, metric) with its CI, counts and provenance
(``TIDY_COLUMNS``). ``load_scores(dirs)``: one row per (run, task, sample, score key) from the
records of each task's last run, for paired comparisons. Values stay on the 0-1 scale; formatting
happens only at export. A run made by ``vpbench reproduce`` carries ``reproduce.json`` (its table
row key, seed and ablation id); any other run's row key is its model spec.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from vpbench.errors import DataError
from vpbench.hashing import stable_hash
from vpbench.results import SCHEMA_VERSION, read_json

MARKER = "reproduce.json"
TIDY_COLUMNS = (
    "run_id", "run_dir", "row_key", "seed", "ablation_id", "model_spec", "model_fingerprint",
    "task", "group", "metric", "value", "ci_low", "ci_high", "ci_method", "n", "n_clusters",
    "n_total", "n_evaluated", "n_failed", "n_unparsed", "coverage", "partial", "parser",
    "protocol_fingerprint", "protocol", "sample_set_hash", "recipe", "config_hash", "notes",
)
SCORE_COLUMNS = ("run_id", "row_key", "seed", "task", "sample_id", "cluster", "groups", "score", "value")


def _run_id(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)


def _read_run(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(manifest, results, reproduce marker) of one run dir, with the fix when it is not one."""
    manifest_path, results_path = path / "manifest.json", path / "results.json"
    if not manifest_path.is_file() or not results_path.is_file():
        raise DataError(f"{path}: not a finished vpbench run (needs manifest.json and results.json); "
                        f"run `vpbench run ... --output {path}` first, or leave it out")
    manifest, results = read_json(manifest_path), read_json(results_path)
    for name, doc in (("manifest.json", manifest), ("results.json", results)):
        version = doc.get("schema_version")
        if version != SCHEMA_VERSION:
            raise DataError(f"{path / name}: schema_version {version!r}, this vpbench reads {SCHEMA_VERSION} "
                            f"(docs/results-schema.md); re-score it with `vpbench score {path}`")
    marker = read_json(path / MARKER) if (path / MARKER).is_file() else {}
    return manifest, results, marker


def training_provenance(model: Mapping[str, Any]) -> dict[str, Any]:
    """recipe, config hash of a checkpoint trained by a vpbench recipe (else empty strings)."""
    train = model.get("training") or {}
    config = train.get("config")
    return {"recipe": train.get("recipe", ""), "config_hash": stable_hash(config) if config else ""}


def _run_fields(path: Path, root: Path | None, manifest: Mapping[str, Any],
                marker: Mapping[str, Any]) -> dict[str, Any]:
    model = manifest.get("model", {})
    return {"run_id": _run_id(path, root), "run_dir": str(path),
            "row_key": marker.get("row", model.get("spec", "")), "seed": marker.get("seed"),
            "ablation_id": marker.get("ablation_id", ""), "model_spec": model.get("spec", ""),
            "model_fingerprint": model.get("fingerprint", ""), **training_provenance(model)}


def _task_fields(info: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    counts = result.get("counts", {})
    return {"n_total": counts.get("n_total"), "n_evaluated": counts.get("n_evaluated"),
            "n_failed": counts.get("n_failed", 0), "n_unparsed": counts.get("n_unparsed", 0),
            "coverage": result.get("coverage"), "partial": bool(result.get("partial")),
            "parser": info.get("parser", ""), "protocol_fingerprint": result.get("protocol_fingerprint", ""),
            "protocol": json.dumps(info.get("protocol", {}), sort_keys=True),
            "sample_set_hash": result.get("sample_set_hash", ""), "notes": " | ".join(result.get("notes", ()))}


def _metric_fields(m: Mapping[str, Any], group: str, metric: str | None = None) -> dict[str, Any]:
    return {"group": group, "metric": metric or m["name"], "value": m["value"], "ci_low": m.get("ci_low"),
            "ci_high": m.get("ci_high"), "ci_method": m.get("ci_method", ""), "n": m.get("n"),
            "n_clusters": m.get("n_clusters")}


def _rows_of_run(path: Path, root: Path | None) -> list[dict[str, Any]]:
    manifest, results, marker = _read_run(path)
    run = _run_fields(path, root, manifest, marker)
    rows: list[dict[str, Any]] = []
    tasks = manifest.get("tasks", {})
    for task, result in results.get("results", {}).items():
        base = {**run, "task": task, **_task_fields(tasks.get(task, {}), result)}
        rows += [{**base, **_metric_fields(m, "")} for m in result.get("metrics", ())]
        for group, metrics in result.get("by_group", {}).items():
            rows += [{**base, **_metric_fields(m, group)} for m in metrics]
        for key, m in (result.get("perception_gap") or {}).items():
            rows.append({**base, **_metric_fields(m, "perception_gap", key)})
    for name, m in results.get("derived", {}).items():
        task, _, metric = name.rpartition("/")
        base = {**run, "task": task, **_task_fields(tasks.get(task, {}), results.get("results", {}).get(task, {}))}
        rows.append({**base, **_metric_fields(m, "derived", metric)})
    return rows


def load_metrics(dirs: Iterable[Path], root: Path | None = None) -> pd.DataFrame:
    """Tidy metrics of the given run dirs (``TIDY_COLUMNS``; ``run_id`` relative to ``root``)."""
    rows = [r for d in dirs for r in _rows_of_run(Path(d), root)]
    frame = pd.DataFrame(rows, columns=list(TIDY_COLUMNS))
    return frame.astype({"value": float, "ci_low": float, "ci_high": float})


def load_scores(dirs: Iterable[Path], tasks: Iterable[str], root: Path | None = None) -> pd.DataFrame:
    """Per-sample scores of the full pass of each task's last run (``SCORE_COLUMNS``); ``groups``
    is the record's group mapping as sorted JSON."""
    from vpbench.engine.records import RecordStore

    wanted = set(tasks)
    rows: list[dict[str, Any]] = []
    for d in map(Path, dirs):
        manifest, _results, marker = _read_run(d)
        run = _run_fields(d, root, manifest, marker)
        for task in sorted(wanted & set(manifest.get("tasks", {}))):
            ids_file = d / task / "sample_ids.json"
            done = RecordStore(d / task / "records.jsonl").load()
            ids = read_json(ids_file) if ids_file.is_file() else list(done)
            for sid in ids:
                rec = done.get(sid)
                if rec is None:
                    raise DataError(f"{d / task / 'records.jsonl'}: no record for sample {sid} listed in "
                                    f"{ids_file}; re-run the same `vpbench run` command to finish it")
                groups = json.dumps(dict(rec.groups), sort_keys=True)
                rows += [{"run_id": run["run_id"], "row_key": run["row_key"], "seed": run["seed"], "task": task,
                          "sample_id": sid, "cluster": rec.cluster or sid, "groups": groups, "score": k,
                          "value": float(v)} for k, v in sorted(rec.scores.items())]
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
