"""Training plumbing shared by the stage-1 and stage-2 recipes.

* ``StepSampler``: a deterministic, resumable per-process index stream (seeded per epoch);
* ``lr_lambda``: warmup then constant / linear / cosine LR factor;
* ``param_groups``: AdamW groups {model, heads} × {decay (>= 2-D weights), no decay};
* ``MetricLogger``: ``metrics.jsonl`` (+ TensorBoard when importable), trimmed on resume;
* ``error_text``: the user-facing message of an error raised in a DataLoader worker.

Config loading lives in ``vpbench.train.configio`` (no torch import).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch



# -- data order ------------------------------------------------------------------------------------
class StepSampler(torch.utils.data.Sampler):
    """Indices for one process from optimiser step ``start_step`` on. The global stream is the
    concatenation of per-epoch permutations (seeded by (seed, epoch)); step s, micro-batch m,
    process r reads positions ``((s*accum + m)*world + r)*bs + [0, bs)``."""

    def __init__(self, n: int, seed: int, shuffle: bool, bs: int, accum: int, world: int, rank: int,
                 start_step: int, max_steps: int) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.bs, self.accum, self.world, self.rank = bs, accum, world, rank
        self.start, self.stop = start_step, max_steps

    def _at(self, pos: int) -> int:
        epoch, off = divmod(pos, self.n)
        if not self.shuffle:
            return off
        return int(np.random.default_rng([self.seed, epoch]).permutation(self.n)[off])

    def indices(self, step: int, micro: int = 0) -> list[int]:
        """The ``bs`` dataset indices this process reads at (step, micro-batch)."""
        base = ((step * self.accum + micro) * self.world + self.rank) * self.bs
        return [self._at(base + j) for j in range(self.bs)]

    def __iter__(self) -> Iterator[int]:
        for s in range(self.start, self.stop):
            for m in range(self.accum):
                yield from self.indices(s, m)

    def __len__(self) -> int:
        return (self.stop - self.start) * self.accum * self.bs


def lr_lambda(kind: str, warmup: int, total: int):
    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 1.0 - progress if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return f


def param_groups(model: torch.nn.Module, lr: float, wd: float, head_lr: float | None = None,
                 head_prefix: str = "heads.") -> list[dict[str, Any]]:
    """{model, heads} × {decay (>= 2-D weights), no decay}; empty groups dropped. Parameters whose
    (unwrapped) name starts with ``head_prefix`` get ``head_lr`` (default ``lr``)."""
    buckets: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        clean = name.replace("_fsdp_wrapped_module.", "").replace("_checkpoint_wrapped_module.", "")
        clean = clean[len("module."):] if clean.startswith("module.") else clean  # DDP
        is_head = clean.startswith(head_prefix)
        buckets.setdefault((is_head, p.ndim >= 2), []).append(p)
    groups = []
    for (is_head, decay), params in sorted(buckets.items()):
        groups.append({"params": params, "lr": (head_lr if head_lr is not None else lr) if is_head else lr,
                       "weight_decay": wd if decay else 0.0,
                       "name": f"{'heads' if is_head else 'model'}_{'decay' if decay else 'no_decay'}"})
    return groups


# -- logging ---------------------------------------------------------------------------------------
class MetricLogger:
    """metrics.jsonl always; TensorBoard scalars too when tensorboard is importable.

    ``start_step``: the step training (re)starts from. Rows an earlier run logged after it (a crash
    after the last checkpoint) are dropped from metrics.jsonl, and TensorBoard purges them, so a
    resumed run's log holds each step once."""

    def __init__(self, out_dir: Path, enabled: bool, start_step: int = 0) -> None:
        self.enabled = enabled
        self.path = out_dir / "metrics.jsonl"
        self.tb = None
        if enabled:
            out_dir.mkdir(parents=True, exist_ok=True)
            self._truncate_after(start_step)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out_dir / "tb"), purge_step=start_step + 1 if start_step else None)
            except ImportError:
                self.tb = None

    def _truncate_after(self, step: int) -> None:
        """Keep only the complete rows with ``step <= step`` (atomic rewrite)."""
        if not self.path.is_file():
            return
        keep = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a half-written last line of a crashed run
            if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
                keep.append(line + "\n")
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(keep), encoding="utf-8")
        os.replace(tmp, self.path)

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(f"train/{k}", v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def error_text(err: BaseException) -> str:
    """The user-facing message of ``err``. An error raised in a DataLoader worker comes back as the
    same type with "Caught X in DataLoader worker ... Original Traceback ..." as its message: keep
    only the original message (from the traceback's last ``[module.]X: `` line on)."""
    msg = str(err)
    if "Original Traceback" not in msg:
        return msg
    lines = msg.rstrip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        head, sep, rest = lines[i].partition(": ")
        if sep and head.split(".")[-1] == type(err).__name__:
            return "\n".join([rest, *lines[i + 1:]])
    return lines[-1]
