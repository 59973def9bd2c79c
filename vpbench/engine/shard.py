"""Data-parallel evaluation: which process does which sample, and the per-rank record files.

``torchrun --nproc_per_node N -m vpbench run ...``, ``accelerate launch -m vpbench run ...`` and
``vpbench run --nproc N`` all start N processes with ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set.
A sample belongs to rank ``stable_hash(sample_id) % WORLD_SIZE``, so the split depends on nothing
but the ids and the world size. Rank k appends to ``<task>/records.rank<k>.jsonl``; every rank reads
all record files of the task before it starts, so whatever any earlier run (at any world size)
finished is never generated again. Rank 0 then merges every file into ``records.jsonl`` (one line
per sample, in sample order), removes the rank files and scores once.

Synchronisation uses ``torch.distributed`` on the gloo backend (CPU; works beside any GPU backend),
initialised from the launcher's ``MASTER_ADDR``/``MASTER_PORT``. Multi-node is the same: torchrun's
rendezvous plus an output directory on a file system every node sees.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from vpbench.errors import ConfigError

_TIMEOUT_ENV = "VPBENCH_DIST_TIMEOUT_S"  # how long a rank waits for the slowest one (default 24 h)


def shard_of(sample_id: str, world_size: int) -> int:
    """The rank that evaluates ``sample_id``: sha256 of the id, first 8 bytes, modulo the world size."""
    return int.from_bytes(hashlib.sha256(sample_id.encode("utf-8")).digest()[:8], "big") % world_size


@dataclass(frozen=True)
class DistContext:
    """This process's place in a data-parallel run (rank 0 of 1 when not launched by torchrun/accelerate)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size or self.local_rank < 0:
            raise ConfigError(f"bad data-parallel layout: RANK={self.rank} WORLD_SIZE={self.world_size} "
                              f"LOCAL_RANK={self.local_rank} (need 0 <= RANK < WORLD_SIZE)")

    @classmethod
    def from_env(cls) -> "DistContext":
        env = os.environ
        try:
            world = int(env.get("WORLD_SIZE", "1"))
            rank = int(env.get("RANK", "0"))
            local = int(env.get("LOCAL_RANK", str(rank)))
        except ValueError as e:
            raise ConfigError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers ({e})") from e
        return cls(rank, world, local)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def owns(self, sample_id: str) -> bool:
        return shard_of(sample_id, self.world_size) == self.rank

    def device(self, device: str) -> str:
        """``auto``/``cuda`` → ``cuda:LOCAL_RANK`` on a multi-process run with CUDA (one GPU per rank)."""
        if not self.distributed or device not in ("auto", "cuda"):
            return device
        import torch

        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else ("cpu" if device == "auto" else device)

    def record_file(self, base: str) -> str:
        """This rank's record file for ``base`` (``records.jsonl`` → ``records.rank1.jsonl``)."""
        return base if not self.distributed else base.replace(".jsonl", f".rank{self.rank}.jsonl")

    # -- collectives (no-ops in a single process) -----------------------------------------------
    def _group(self):
        import torch.distributed as dist

        if not dist.is_initialized():
            timeout = timedelta(seconds=float(os.environ.get(_TIMEOUT_ENV, 86400)))
            dist.init_process_group("gloo", rank=self.rank, world_size=self.world_size, timeout=timeout)
        return dist

    def barrier(self) -> None:
        if self.distributed:
            self._group().barrier()

    def sum(self, value: int) -> int:
        """``value`` summed over all ranks."""
        if not self.distributed:
            return value
        import torch

        t = torch.tensor([value], dtype=torch.int64)
        self._group().all_reduce(t)
        return int(t.item())

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


SINGLE = DistContext()


def rank_files(task_dir: Path, base: str) -> list[Path]:
    """Per-rank record files of ``base`` in ``task_dir`` (any world size), by rank."""
    stem = base[: -len(".jsonl")]
    found = [(p, p.name[len(stem) + len(".rank"): -len(".jsonl")]) for p in task_dir.glob(f"{stem}.rank*.jsonl")]
    return [p for p, k in sorted(found, key=lambda x: int(x[1]) if x[1].isdigit() else -1) if k.isdigit()]
