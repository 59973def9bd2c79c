"""A reproduce plan: the steps (generate data, build the tiny model, train each recipe stage,
evaluate) that make a table's cells, each with its exact command, output dir and fingerprint.

A step's output dir is named by its fingerprint (``<stage>-<fp8>``), and a finished step leaves
``reproduce.json`` there holding that fingerprint: a step is done only when the marker matches, so a
changed recipe, config, override, seed or upstream model never reuses an old result. A stage whose
recipe file is absent, or that needs a GPU this machine lacks, makes its variant's row missing with
that reason; nothing is guessed in its place.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from vpbench.hashing import file_sha256, stable_hash
from vpbench.reports.grid import Grid, ModelsConfig, tiny_variant
from vpbench.reports.spec import RowSpec, TableSpec, match_paper_row
from vpbench.resources import bundled_path

MARKER = "reproduce.json"


@dataclass(frozen=True)
class Step:
    id: str
    kind: str                           # synth | model | train | eval
    argv: tuple[str, ...]               # the command ("vpbench ..." runs as `python -m vpbench ...`)
    output: Path
    fingerprint: str
    needs: tuple[str, ...] = ()
    missing: str = ""                   # why it cannot run here ('' = runnable)
    meta: Mapping[str, Any] = field(default_factory=dict)  # written into the marker (row, seed, ...)

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def done(self) -> bool:
        marker = self.output / MARKER
        if not marker.is_file():
            return False
        try:
            return json.loads(marker.read_text()).get("fingerprint") == self.fingerprint
        except json.JSONDecodeError:
            return False


@dataclass(frozen=True)
class Plan:
    table: str
    scale: str
    root: Path
    steps: tuple[Step, ...]
    rows: tuple[RowSpec, ...]
    evals: Mapping[str, tuple[str, ...]]  # row key → its eval step ids (one per seed)
    torch_threads: int = 0                # > 0: every step runs with this many torch intra-op threads

    def step(self, sid: str) -> Step:
        return next(s for s in self.steps if s.id == sid)

    def needed(self) -> set[str]:
        """Ids of the steps some runnable evaluation needs (nothing is made for a cell that cannot be)."""
        out: set[str] = set()

        def visit(sid: str) -> None:
            if sid not in out:
                out.add(sid)
                for n in self.step(sid).needs:
                    visit(n)
        for ids in self.evals.values():
            for sid in ids:
                if not self.blocked_by(self.step(sid)):
                    visit(sid)
        return out

    def blocked_by(self, step: Step) -> str:
        """Why ``step`` cannot run (its own reason or an upstream one), '' when it can."""
        if step.missing:
            return step.missing
        for need in step.needs:
            why = self.blocked_by(self.step(need))
            if why:
                return why
        return ""


def _hash_file(path: Path) -> str:
    return file_sha256(path)[:16] if path.is_file() else "absent"


def _data_steps(spec: TableSpec, tasks: Sequence[str], data, root: Path) -> tuple[list[Step], Path]:
    """Generated data per task folder (synth), or the given data root (no step)."""
    from vpbench.registry import get_task

    if not data.synth:
        return [], Path(data.root).resolve()
    base = root / "data"
    steps: dict[str, Step] = {}
    for t in tasks:
        folder = get_task(t).data_folder
        if folder not in steps:
            fp = stable_hash({"synth": t, "seed": data.seed})
            steps[folder] = Step(f"data/{folder}", "synth", ("vpbench", "synth", t, "--output", str(base / folder),
                                                              "--seed", str(data.seed)), base / folder, fp)
    return list(steps.values()), base


def _tiny_model_step(root: Path, seed: int = 0, variant: str = "micro") -> Step:
    """The tiny random model (``micro``: path and fingerprint as before variants existed)."""
    if variant == "micro":
        out = root / "models" / "tiny"
        return Step("model/tiny", "model", ("vpbench", "model", "tiny", "--output", str(out), "--seed", str(seed)),
                    out, stable_hash({"model": "tiny", "seed": seed}))
    out = root / "models" / f"tiny-{variant}"
    return Step(f"model/tiny-{variant}", "model", ("vpbench", "model", "tiny", "--variant", variant, "--output",
                                                    str(out), "--seed", str(seed)),
                out, stable_hash({"model": "tiny", "variant": variant, "seed": seed}))


def _train_data_step(spec, root: Path) -> Step | None:
    """The generated training split (grid ``train_data``), or None."""
    if not spec.synth:
        return None
    out = root / "train_data"
    argv = ("vpbench", "synth", spec.synth, "--split", "train", "--n-videos", str(spec.n_videos), "--seed",
            str(spec.seed), "--output", str(out))
    return Step("train_data", "synth", argv, out, stable_hash({"train_split": spec.synth, "n": spec.n_videos,
                                                              "seed": spec.seed}))


def _threads(n: int) -> dict[str, int]:
    """The thread count's part of a fingerprint (it changes reduction order); nothing when torch's default."""
    return {"torch_threads": n} if n else {}


def _eval_step(sid: str, model: str, tasks: Sequence[str], data_root: Path, out_base: Path, args: Sequence[str],
               upstream: str, needs: Sequence[str], meta: Mapping[str, Any], missing: str = "",
               threads: int = 0) -> Step:
    fp = stable_hash({"model": model, "upstream": upstream, "tasks": list(tasks), "data": str(data_root),
                      "args": list(args), **_threads(threads)})
    out = out_base / f"eval-{fp[:8]}"
    argv = ("vpbench", "run", "--model", model, "--tasks", ",".join(tasks), "--data-root", str(data_root),
            "--output", str(out), *args)
    return Step(sid, "eval", argv, out, fp, tuple(needs), missing, meta)


def models_plan(spec: TableSpec, cfg: ModelsConfig, root: Path, *, gpu: bool) -> Plan:
    """Tables 1-4: evaluate every model of the config on the table's tasks."""
    from vpbench.reports.spec import load_paper

    paper = load_paper(spec)
    steps, data_root = _data_steps(spec, spec.tasks, cfg.data, root)
    data_ids = [s.id for s in steps]
    rows, evals = [], {}
    paper_scale = cfg.scale == "paper"
    for m in cfg.models:
        needs, model, upstream = list(data_ids), m.model, ""
        if m.model == "@tiny":
            tiny = _tiny_model_step(root)
            if tiny.id not in {s.id for s in steps}:
                steps.append(tiny)
            needs.append(tiny.id)
            model, upstream = str(tiny.output), tiny.fingerprint
        args = list(cfg.eval_args) + (list(cfg.gpu_eval_args) if paper_scale else [])
        missing = "" if gpu or not paper_scale else "paper scale needs GPUs: run the printed command on a GPU machine"
        step = _eval_step(f"{spec.name}/{m.key}/eval", model, spec.tasks, data_root, root / spec.name / m.key, args,
                          upstream, needs, {"table": spec.name, "row": m.key, "seed": None, "ablation_id": ""},
                          missing, cfg.torch_threads)
        steps.append(step)
        evals[m.key] = (step.id,)
        pr = m.paper_rows.get(spec.name)
        rows.append(RowSpec(m.key, m.label or m.key,
                            match_paper_row(spec, paper, pr, f"models config: {m.key}") if pr else None))
    return Plan(spec.name, cfg.scale, root, tuple(steps), tuple(rows), evals, cfg.torch_threads)


def _expand(value: Any, ctx: Mapping[str, str]) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)
    for k, v in ctx.items():
        text = text.replace("{" + k + "}", v)
    return text


def _recipe_missing(stage, gpu: bool) -> str:
    if not bundled_path(f"recipes/{stage.recipe}.py").is_file():
        return f"missing: recipe recipes/{stage.recipe}.py (stage '{stage.name}') is not in this checkout"
    if not bundled_path(stage.config).is_file():
        return f"missing: recipe config {stage.config} (stage '{stage.name}') is not in this checkout"
    if stage.needs_gpu and not gpu:
        return f"stage '{stage.name}' needs GPUs: run the printed command on a GPU machine"
    return ""


def _overrides(launch: Sequence[str], items: Mapping[str, str]) -> list[str]:
    """``--set k=v`` for ``vpbench train``; bare ``k=v`` for a recipe script (accelerate launch ...)."""
    flag = tuple(launch[:1]) == ("vpbench",)
    return [a for k, x in items.items() for a in (("--set", f"{k}={x}") if flag else (f"{k}={x}",))]


def _train_steps(grid: Grid, v, seed: int, root: Path, base: Step | None, gpu: bool,
                 made: dict[str, Step], data: Step | None = None) -> tuple[list[Step], Step | None, str]:
    """The chain of recipe stages of one variant and seed; returns (new steps, last step, model dir).
    A stage identical to one already planned (same fingerprint, in ``made``) is shared, not repeated."""
    steps: list[Step] = []
    prev: Step | None = base
    model = str(base.output) if base else grid.base_model
    upstream = base.fingerprint if base else grid.base_model
    if data:
        upstream = stable_hash({"model": upstream, "train_data": data.fingerprint})
    for stage in grid.stages:
        overrides = {**stage.set, **v.set.get(stage.name, {})}
        recipe, config = bundled_path(f"recipes/{stage.recipe}.py"), bundled_path(stage.config)
        fp = stable_hash({"stage": stage.name, "recipe": _hash_file(recipe), "config": _hash_file(config),
                          "set": {k: _expand(x, {"seed": str(seed)}) for k, x in overrides.items()},
                          "args": list(stage.args), "seed": seed, "upstream": upstream,
                          **_threads(grid.torch_threads)})
        if fp in made:  # e.g. Ablation C's stage 1 is the full recipe's
            prev, model, upstream = made[fp], str(made[fp].output / stage.export), fp
            continue
        out = root / grid.table / v.key / f"seed{seed}" / f"{stage.name}-{fp[:8]}"
        ctx = {"root": str(root), "out": str(out), "seed": str(seed), "prev": model, "base": model,
               "train_data": str(root / "train_data")}
        argv = (*stage.launch, "--config", str(config), *stage.args,
                *_overrides(stage.launch, {k: _expand(x, ctx) for k, x in overrides.items()}))
        step = Step(f"{grid.table}/{v.key}/seed{seed}/{stage.name}", "train", argv, out, fp,
                    tuple(s.id for s in (prev, data) if s), _recipe_missing(stage, gpu),
                    {"row": v.key, "seed": seed, "stage": stage.name})
        steps.append(step)
        made[fp] = step
        prev, model, upstream = step, str(out / stage.export), fp
    return steps, prev, model


def grid_plan(spec: TableSpec, grid: Grid, root: Path, *, gpu: bool, seeds: int | None = None) -> Plan:
    """Tables 5-6: train every variant with the recipe stages (``seeds`` times), evaluate each."""
    from vpbench.reports.spec import load_paper

    paper = load_paper(spec)
    steps, data_root = _data_steps(spec, grid.eval.tasks, grid.data, root)
    data_ids = [s.id for s in steps]
    variant = tiny_variant(grid.base_model)
    base = _tiny_model_step(root, variant=variant) if variant else None
    data = _train_data_step(grid.train_data, root)
    steps += [s for s in (base, data) if s]
    rows, evals = [], {}
    made: dict[str, Step] = {}
    paper_scale = grid.scale == "paper"
    for v in grid.variants:
        pr = match_paper_row(spec, paper, v.paper_row, f"grid variant {v.key}") if v.paper_row is not None else None
        rows.append(RowSpec(v.key, v.label or v.key, pr, reason=f"missing: {v.missing}" if v.missing else "",
                            baseline=v.baseline))
        if v.missing:
            continue
        ids = []
        for seed in range(seeds or grid.seeds):
            chain, last, model = _train_steps(grid, v, seed, root, base, gpu, made, data)
            steps += chain
            args = [_expand(a, {"root": str(root)})
                    for a in (*grid.eval.args, *v.eval_args, *(grid.eval.gpu_args if paper_scale else ()))]
            ev = _eval_step(f"{grid.table}/{v.key}/seed{seed}/eval", model, grid.eval.tasks, data_root,
                            root / grid.table / v.key / f"seed{seed}", args, last.fingerprint if last else "",
                            [*data_ids, *([last.id] if last else [])],
                            {"table": spec.name, "row": v.key, "seed": seed, "ablation_id": v.key},
                            "" if gpu or not paper_scale else "paper scale needs GPUs: run the printed command on a GPU machine",
                            grid.torch_threads)
            steps.append(ev)
            ids.append(ev.id)
        evals[v.key] = tuple(ids)
    return Plan(spec.name, grid.scale, root, tuple(steps), tuple(rows), evals, grid.torch_threads)
