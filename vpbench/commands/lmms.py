"""`vpbench lmms export-task`: a vpbench task as an lmms-eval 0.7.x ``--include_path`` folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from vpbench.commands._base import add_set_option, command, group, positive_int

ORDER = 75


def _export_task(ns: argparse.Namespace) -> int:
    from vpbench.config import parse_assignments
    from vpbench.engine.overrides import resolve
    from vpbench.lmms.tasks import export_task

    resolved = resolve(parse_assignments(ns.set or []), [ns.task])
    folder = export_task(ns.task, Path(ns.data_root), Path(ns.output),
                         overrides=resolved.protocol.get(ns.task, {}), parser=resolved.parser.get(ns.task),
                         preset=resolved.preset.get(ns.task), limit=ns.limit)
    print(f"{ns.task}: lmms-eval task vpb_{ns.task} written to {folder}; run it with\n"
          f"  lmms-eval --model vpbench --model_args spec=CKPT --tasks vpb_{ns.task} --include_path {ns.output}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    g = group(sub, "lmms", help="lmms-eval 0.7.x bridge")
    e = command(g, "export-task", _export_task, help="write a vpbench task as an lmms-eval --include_path folder")
    e.add_argument("task")
    e.add_argument("--data-root", required=True)
    e.add_argument("--output", required=True, help="the --include_path folder (the task goes in vpb_TASK/)")
    e.add_argument("--limit", type=positive_int, help="first N scorable samples")
    add_set_option(e, "protocol/parser override as for `vpbench run`, e.g. protocol.nframes=8")
