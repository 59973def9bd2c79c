"""Exports of a rendered table: CSV (long cells at full precision), Markdown and LaTeX (display
strings, escaped), PNG plots (matplotlib, Agg) and a provenance sidecar (cell → run ids)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from vpbench.reports.spec import Plot, TableSpec, text_columns


def _fmt(x: Any, decimals: int, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return ""
    return f"{x:+.{decimals}f}" if sign else f"{x:.{decimals}f}"


def _ours_text(c: pd.Series, d: int) -> str:
    if math.isnan(c["ours"]):
        return "—" if c["ours_row"] else ""
    if c["n_seeds"] > 1:
        return f"{c['ours']:.{d}f} ± {c['spread']:.{d}f} ({c['n_seeds']} seeds)"
    if not math.isnan(c["ci_low"]):
        return f"{c['ours']:.{d}f} [{c['ci_low']:.{d}f}, {c['ci_high']:.{d}f}]"
    return f"{c['ours']:.{d}f}"


def merge_paired(cells: pd.DataFrame, paired: pd.DataFrame | None) -> pd.DataFrame:
    """Cells with the paired Δ-vs-baseline columns (NaN where a cell has none)."""
    if paired is None or paired.empty:
        return cells.assign(paired_delta=math.nan, paired_ci_low=math.nan, paired_ci_high=math.nan, paired_n=pd.NA)
    p = paired.rename(columns={"delta": "paired_delta", "ci_low": "paired_ci_low", "ci_high": "paired_ci_high",
                               "n": "paired_n"})[["row", "column", "paired_delta", "paired_ci_low",
                                                  "paired_ci_high", "paired_n"]]
    return cells.merge(p, on=["row", "column"], how="left")


def display_frame(spec: TableSpec, cells: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """One line per table row: the paper's text columns, then per metric column 'paper', 'ours',
    'Δ' (ours − paper) and, for ablation tables, 'Δ vs <baseline> [CI]'; then the notes."""
    texts = text_columns(spec, paper)
    has_paired = "paired_delta" in cells and cells["paired_delta"].notna().any()
    lines = []
    for key, rows in cells.groupby("row", sort=False):
        first = rows.iloc[0]
        pr = first["paper_row"]
        line: dict[str, str] = {t: (str(paper.loc[pr, t]) if pr is not pd.NA else "") for t in texts}
        if pr is pd.NA:
            line[spec.row_header] = first["label"]
        line["ours"] = key if first["ours_row"] else ""
        for _, c in rows.iterrows():
            d = spec.column_decimals(c["column"])
            line[f"{c['column']} paper"] = _fmt(c["paper"], d)
            line[f"{c['column']} ours"] = _ours_text(c, d)
            line[f"{c['column']} Δ"] = _fmt(c["delta"], d, sign=True)
            if has_paired:
                line[f"{c['column']} Δ vs base"] = "" if math.isnan(c["paired_delta"]) else (
                    f"{c['paired_delta']:+.{d}f} [{c['paired_ci_low']:+.{d}f}, {c['paired_ci_high']:+.{d}f}]")
        notes = [f"{c['column']}: {c['note']}" for _, c in rows.iterrows() if c["note"]]
        if notes and len({n.split(': ', 1)[1] for n in notes}) == 1:
            notes = [notes[0].split(": ", 1)[1]]
        line["notes"] = "; ".join(notes)
        lines.append(line)
    frame = pd.DataFrame(lines).fillna("")
    keep = [c for c in frame.columns if c in texts or c.endswith(" paper") or (frame[c] != "").any()]
    return frame[keep]


def to_markdown(spec: TableSpec, display: pd.DataFrame) -> str:
    head = f"**{spec.title}**\n\n"
    note = f"\n\n{spec.paper_note}\n" if spec.paper_note else "\n"
    return head + display.to_markdown(index=False, disable_numparse=True) + note


def to_latex(spec: TableSpec, display: pd.DataFrame) -> str:
    styler = display.style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
    return styler.to_latex(hrules=True, caption=spec.title.replace("&", r"\&").replace("%", r"\%").replace("#", r"\#"))


def _bars(spec: TableSpec, cells: pd.DataFrame, paper: pd.DataFrame, plot: Plot, path: Path) -> None:
    """Grouped bars per column: each of our rows, the paper row it sits beside, and the plot's
    reference paper rows (e.g. Random, the base model, VideoPerceiver)."""
    import matplotlib.pyplot as plt
    import numpy as np

    columns = list(plot.columns)
    sel = cells[cells["column"].isin(columns)]
    series: list[tuple[str, pd.Series, bool]] = []
    for key in dict.fromkeys(sel.loc[sel["ours_row"], "row"]):
        r = sel[sel["row"] == key].set_index("column").reindex(columns)
        series.append((f"{key} (ours)", r["ours"], False))
        if r["paper"].notna().any():
            series.append((f"{r['label'].iloc[0]} (paper)", r["paper"], True))
    for name in plot.paper_rows:
        hit = paper.index[paper[spec.row_header] == name]
        if len(hit) and not any(lbl == f"{name} (paper)" for lbl, _, _ in series):
            series.append((f"{name} (paper)", paper.loc[hit[0], columns].astype(float), True))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(columns) * max(1, len(series))), 4))
    x = np.arange(len(columns))
    width = 0.8 / max(1, len(series))
    for i, (label, values, is_paper) in enumerate(series):
        ax.bar(x + i * width, pd.Series(values.to_numpy(dtype=float)).fillna(0), width, label=label,
               hatch="//" if is_paper else None, alpha=0.6 if is_paper else 1.0)
    ax.set_xticks(x + width * (len(series) - 1) / 2, columns, rotation=20)
    ax.set_title(spec.title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _curve(spec: TableSpec, cells: pd.DataFrame, paper: pd.DataFrame, column: str, x: str, section: str,
           path: Path) -> None:
    import matplotlib.pyplot as plt

    rows = paper[paper["section"] == section] if "section" in paper.columns and section else paper
    sel = cells[(cells["column"] == column) & cells["paper_row"].isin(list(rows.index))].copy()
    sel["x"] = [str(paper.loc[int(i), x]) for i in sel["paper_row"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(sel["x"], sel["paper"], "o-", label="paper")
    if sel["ours"].notna().any():
        ax.plot(sel["x"], sel["ours"], "s--", label="ours")
    ax.set_xlabel(x)
    ax.set_ylabel(column)
    ax.set_title(f"{spec.name}: {section or column}", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(spec: TableSpec, cells: pd.DataFrame, paper: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write <name>.csv/.md/.tex/.provenance.json and the spec's PNG plots; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir.mkdir(parents=True, exist_ok=True)
    display = display_frame(spec, cells, paper)
    paths = [out_dir / f"{spec.name}.{ext}" for ext in ("csv", "md", "tex", "provenance.json")]
    cells.to_csv(paths[0], index=False)
    paths[1].write_text(to_markdown(spec, display), encoding="utf-8")
    paths[2].write_text(to_latex(spec, display), encoding="utf-8")
    prov = {f"{r['row']}|{r['column']}": {"run_ids": r["run_ids"].split(",") if r["run_ids"] else [],
                                          "note": r["note"]} for _, r in cells[cells["ours_row"]].iterrows()}
    paths[3].write_text(json.dumps(prov, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for i, plot in enumerate(spec.plots):
        path = out_dir / f"{spec.name}_{plot.kind}{i + 1}.png"
        if plot.kind == "bars":
            _bars(spec, cells, paper, plot, path)
        else:
            _curve(spec, cells, paper, plot.columns[0], plot.x, plot.section, path)
        paths.append(path)
    return paths
