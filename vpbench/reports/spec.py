"""Table specs as data (``reports/tables.yaml``) and the paper's numbers (``reports/paper/*.csv``).

A ``TableSpec`` names the paper's CSV, its row-header column, and each metric column: the paper's
column label and the (task, group, metric) of our tidy frame it compares with, on the paper's
scale (``scale`` × our 0-1 value). Specs load strictly (unknown keys fail with a suggestion).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from vpbench.config import from_mapping, load_yaml, suggest
from vpbench.errors import ConfigError, DataError


def reports_dir() -> Path:
    """``reports/`` (paper numbers, table specs, grids, model configs): the checkout's, or the copy
    an installed vpbench ships (``vpbench/reports_data``); ``$VPBENCH_REPORTS_DIR`` overrides."""
    from vpbench.resources import reports_dir as bundled

    return bundled()


@dataclass(frozen=True)
class Column:
    label: str                       # the paper's column name
    task: str
    metric: str
    group: str = ""                  # by_group name; "" = the task's overall metrics
    scale: float | None = None       # paper units per 0-1 unit (default: the table's)
    decimals: int | None = None      # printed decimals (default: the table's)
    unavailable: str = ""            # why this column cannot be made locally (always a missing cell)
    paired_score: str = ""           # per-sample score key for paired Δ CIs (ablation tables)
    paired_macro: str = ""           # record group key to macro-average over (e.g. category)


@dataclass(frozen=True)
class Plot:
    kind: str                        # bars (ours vs paper per column) | curve (a metric along rows)
    columns: tuple[str, ...] = ()
    x: str = ""                      # curve: the paper column giving the x labels
    section: str = ""                # curve: only rows of this section
    paper_rows: tuple[str, ...] = ()  # bars: paper rows always drawn for reference

    def __post_init__(self) -> None:
        if self.kind not in ("bars", "curve"):
            raise ConfigError(f"plot kind '{self.kind}' must be bars or curve")


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    paper: str                       # CSV under reports/
    row_header: str                  # the paper's first column
    kind: str                        # models (rows from a models config) | ablation (rows from a grid)
    columns: tuple[Column, ...]
    scale: float = 1.0
    decimals: int = 2
    plots: tuple[Plot, ...] = ()
    paper_note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("models", "ablation"):
            raise ConfigError(f"table {self.name}: kind '{self.kind}' must be models or ablation")
        labels = [c.label for c in self.columns]
        if len(set(labels)) != len(labels):
            raise ConfigError(f"table {self.name}: duplicate column labels {labels}")
        for p in self.plots:
            unknown = [c for c in p.columns if c not in labels]
            if unknown:
                raise ConfigError(f"table {self.name}: plot column {unknown[0]!r} is not a column{suggest(unknown[0], labels)}")

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.task for c in self.columns if not c.unavailable))

    def column_scale(self, col: Column) -> float:
        return self.scale if col.scale is None else col.scale

    def column_decimals(self, label: str) -> int:
        col = next(c for c in self.columns if c.label == label)
        return self.decimals if col.decimals is None else col.decimals


def load_specs(path: Path | None = None) -> dict[str, TableSpec]:
    path = path or reports_dir() / "tables.yaml"
    raw = load_yaml(path)
    specs = {}
    for name, body in raw.items():
        if not isinstance(body, Mapping):
            raise ConfigError(f"{path}: table {name} must be a mapping")
        body = dict(body)
        body["columns"] = tuple(from_mapping(Column, c, f"{path}: {name}.columns") for c in body.get("columns", ()))
        body["plots"] = tuple(from_mapping(Plot, p, f"{path}: {name}.plots") for p in body.get("plots", ()))
        specs[name] = from_mapping(TableSpec, {"name": name, **body}, f"{path}: {name}")
    return specs


def get_spec(name: str) -> TableSpec:
    specs = load_specs()
    if name not in specs:
        raise ConfigError(f"unknown table '{name}'{suggest(name, specs)}; tables: {', '.join(specs)}")
    return specs[name]


def load_paper(spec: TableSpec, root: Path | None = None) -> pd.DataFrame:
    """The paper's table as printed: text columns as strings, metric columns as floats (a printed
    "-" is NaN), rows in the paper's order."""
    path = (root or reports_dir()) / spec.paper
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError as e:
        raise DataError(f"{path}: the paper's numbers for {spec.name} are missing") from e
    missing = [c.label for c in spec.columns if c.label not in frame.columns]
    if spec.row_header not in frame.columns or missing:
        raise DataError(f"{path}: columns {missing or [spec.row_header]} named by reports/tables.yaml are absent")
    for c in spec.columns:
        frame[c.label] = pd.to_numeric(frame[c.label].replace("", None), errors="raise").astype(float)
    return frame


def text_columns(spec: TableSpec, paper: pd.DataFrame) -> list[str]:
    """The paper's non-metric columns (section, row header, LLM, # Frames, ...), in order."""
    metric = {c.label for c in spec.columns}
    return [c for c in paper.columns if c not in metric]


def match_paper_row(spec: TableSpec, paper: pd.DataFrame, key: str | Mapping[str, Any], where: str) -> int:
    """The paper row index named by ``key``: a row-header value, or {column: value, ...}."""
    wanted = {spec.row_header: key} if isinstance(key, str) else dict(key)
    mask = pd.Series(True, index=paper.index)
    for col, value in wanted.items():
        if col not in paper.columns:
            raise ConfigError(f"{where}: paper column {col!r} not in {spec.name}{suggest(col, list(paper.columns))}")
        mask &= paper[col] == str(value)
    hits = list(paper.index[mask])
    if len(hits) != 1:
        names = list(dict.fromkeys(paper[spec.row_header]))
        hint = suggest(str(wanted.get(spec.row_header, "")), names) if len(hits) == 0 else ""
        raise ConfigError(f"{where}: paper row {wanted} matches {len(hits)} rows of {spec.name} "
                          f"(need exactly 1; add columns such as 'section' to tell them apart){hint}")
    return int(hits[0])


@dataclass(frozen=True)
class RowSpec:
    """One of our rows: its key in the tidy frame (``row_key``), display label, the paper row it
    sits beside (index into the paper frame, or None) and, when it cannot be made, why."""

    key: str
    label: str
    paper_row: int | None = None
    reason: str = ""
    baseline: bool = False           # the row every other row's paired Δ is against
    extra: Mapping[str, str] = field(default_factory=dict)  # text cells for rows without a paper row
