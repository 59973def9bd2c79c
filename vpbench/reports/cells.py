"""A table as a pure function of the tidy frames: ``build_cells`` (ours beside the paper's, with the
difference, or why a cell is missing) and ``paired_deltas`` (each row against the baseline row on
the same samples, paired cluster-bootstrap CIs). Both return long frames on the paper's scale."""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np
import pandas as pd

from vpbench.errors import ConfigError
from vpbench.reports.spec import Column, RowSpec, TableSpec

CELL_COLUMNS = ("row", "label", "paper_row", "ours_row", "column", "paper", "ours", "ci_low", "ci_high",
                "spread", "n_seeds", "delta", "note", "run_ids")
PAIRED_COLUMNS = ("row", "column", "baseline", "delta", "ci_low", "ci_high", "n", "n_clusters")


def _our_cell(spec: TableSpec, col: Column, row: RowSpec, runs: pd.DataFrame) -> dict[str, Any]:
    """ours / CI / spread / note of one (row, column) from the tidy rows of the row's runs."""
    empty = {"ours": np.nan, "ci_low": np.nan, "ci_high": np.nan, "spread": np.nan, "n_seeds": 0, "run_ids": ""}
    if col.unavailable:
        return {**empty, "note": f"unavailable: {col.unavailable}"}
    if row.reason:
        return {**empty, "note": row.reason}
    if runs.empty:
        return {**empty, "note": "not run"}
    task = runs[runs["task"] == col.task]
    if task.empty:
        return {**empty, "note": f"not run: {col.task}"}
    sel = task[(task["group"] == col.group) & (task["metric"] == col.metric)]
    if sel.empty:
        notes = "; ".join(n for n in task["notes"].unique() if n)
        return {**empty, "note": f"not reported by the run{': ' + notes if notes else ''}"}
    ids = ",".join(sorted(sel["run_id"]))
    if sel["partial"].any():
        worst = sel.loc[sel["coverage"].idxmin()]
        return {**empty, "run_ids": ids, "note": f"partial coverage {worst['coverage']:.2f} "
                f"({worst['n_evaluated']}/{worst['n_total']} samples; run {worst['run_id']})"}
    if sel["protocol_fingerprint"].nunique() > 1 or sel["sample_set_hash"].nunique() > 1:
        return {**empty, "run_ids": ids, "note": "different protocol or sample set across the row's runs: "
                + ", ".join(sorted(set(sel["protocol_fingerprint"])))}
    k = spec.column_scale(col)
    values = sel["value"].to_numpy() * k
    one = len(values) == 1
    return {"ours": float(values.mean()), "ci_low": float(sel["ci_low"].iloc[0] * k) if one else np.nan,
            "ci_high": float(sel["ci_high"].iloc[0] * k) if one else np.nan,
            "spread": float(values.std(ddof=1)) if not one else np.nan, "n_seeds": len(values),
            "note": "", "run_ids": ids}


def build_cells(spec: TableSpec, tidy: pd.DataFrame, rows: Sequence[RowSpec], paper: pd.DataFrame) -> pd.DataFrame:
    """One line per (row, column): the paper's rows in order, each of ours at its paper row (or
    after them), ``delta = ours - paper`` in the paper's units; a missing cell's ``note`` says why."""
    claimed: dict[int, RowSpec] = {}
    for r in rows:
        if r.paper_row is not None:
            if r.paper_row in claimed:
                raise ConfigError(f"{spec.name}: rows '{claimed[r.paper_row].key}' and '{r.key}' both sit beside "
                                  f"paper row '{paper.loc[r.paper_row, spec.row_header]}'")
            claimed[r.paper_row] = r
    order: list[tuple[int | None, RowSpec | None]] = [(i, claimed.get(i)) for i in paper.index]
    order += [(None, r) for r in rows if r.paper_row is None]
    out = []
    for paper_row, row in order:
        runs = tidy[tidy["row_key"] == row.key] if row is not None else tidy.iloc[0:0]
        label = str(paper.loc[paper_row, spec.row_header]) if paper_row is not None else row.label  # type: ignore[union-attr]
        for col in spec.columns:
            p = float(paper.loc[paper_row, col.label]) if paper_row is not None else np.nan
            if row is None:
                cell = {"ours": np.nan, "ci_low": np.nan, "ci_high": np.nan, "spread": np.nan, "n_seeds": 0,
                        "note": "", "run_ids": ""}
            else:
                cell = _our_cell(spec, col, row, runs)
            out.append({"row": row.key if row is not None else f"paper:{paper_row}", "label": label,
                        "paper_row": paper_row, "ours_row": row is not None, "column": col.label, "paper": p,
                        **cell, "delta": cell["ours"] - p})
    frame = pd.DataFrame(out, columns=list(CELL_COLUMNS))
    return frame.astype({"paper_row": "Int64", "n_seeds": int})


def _macro(values: np.ndarray, groups: np.ndarray) -> float:
    return float(np.mean([values[groups == g].mean() for g in np.unique(groups)]))


def _row_scores(scores: pd.DataFrame, key: str, col: Column) -> pd.DataFrame:
    """Per-sample score of one row (mean over its seeds), indexed by sample id."""
    sel = scores[(scores["row_key"] == key) & (scores["task"] == col.task) & (scores["score"] == col.paired_score)]
    return sel.groupby("sample_id").agg(value=("value", "mean"), cluster=("cluster", "first"),
                                        groups=("groups", "first"))


def paired_deltas(spec: TableSpec, scores: pd.DataFrame, rows: Sequence[RowSpec], *, n_boot: int = 1000,
                  seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Δ = row − baseline on the samples both scored, per paired column, with the percentile CI of a
    paired cluster bootstrap (both sides recomputed on the same resample of videos)."""
    from vpbench.metrics.stats import cluster_bootstrap_fn

    base = [r for r in rows if r.baseline]
    if len(base) != 1:
        return pd.DataFrame(columns=list(PAIRED_COLUMNS))
    out = []
    for col in (c for c in spec.columns if c.paired_score and not c.unavailable):
        a_all = _row_scores(scores, base[0].key, col)
        for row in rows:
            if row.baseline or row.reason:
                continue
            b_all = _row_scores(scores, row.key, col)
            common = a_all.index.intersection(b_all.index)
            if a_all.empty or len(common) == 0:
                continue
            a, b = a_all.loc[common], b_all.loc[common]
            av, bv = a["value"].to_numpy(), b["value"].to_numpy()
            if col.paired_macro:
                g = np.array([json.loads(x).get(col.paired_macro, "") for x in a["groups"]])
                stat = (lambda idx, g=g, av=av, bv=bv: _macro(bv[idx], g[idx]) - _macro(av[idx], g[idx]))
            else:
                stat = (lambda idx, av=av, bv=bv: float(bv[idx].mean() - av[idx].mean()))
            k = spec.column_scale(col)
            delta = stat(np.arange(len(common)))
            lo, hi = cluster_bootstrap_fn(len(common), list(a["cluster"]), stat, n_boot=n_boot, seed=seed,
                                          alpha=alpha) if n_boot else (np.nan, np.nan)
            out.append({"row": row.key, "column": col.label, "baseline": base[0].key, "delta": delta * k,
                        "ci_low": lo * k, "ci_high": hi * k, "n": len(common), "n_clusters": a["cluster"].nunique()})
    return pd.DataFrame(out, columns=list(PAIRED_COLUMNS))
