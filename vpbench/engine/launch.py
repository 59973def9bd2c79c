"""``vpbench run --nproc N``: re-launch the same command under torchrun (one process per rank).

Equivalent to ``torchrun --standalone --nproc_per_node N -m vpbench run ...`` (the flag removed);
``--standalone`` picks a free local rendezvous port. For several nodes call torchrun yourself with
its rendezvous flags and an output directory every node sees (README, "Data-parallel evaluation").
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Sequence

from vpbench.errors import ConfigError


def strip_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N``."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def torchrun_command(nproc: int, vpbench_args: Sequence[str]) -> list[str]:
    """The torchrun command line for ``vpbench <vpbench_args>`` on ``nproc`` local processes."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "vpbench", *strip_nproc(vpbench_args)]


def relaunch(nproc: int, vpbench_args: Sequence[str]) -> int:
    """Run ``vpbench <args>`` on ``nproc`` processes; returns torchrun's exit status."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("--nproc given inside a torchrun/accelerate launch: drop --nproc (the launcher "
                          "already started one process per rank)")
    cmd = torchrun_command(nproc, vpbench_args)
    print("vpbench: " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=False).returncode
