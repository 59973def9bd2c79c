"""lmms-eval side of benchmarks/e2e_lmms_eval.py, run in the lmms-eval venv:
``python run_lmms.py CKPT PROTOCOL_JSON TASK_DIR OUT_JSON`` (cwd = the folder holding the task's
data_files). Programmatic ``simple_evaluate`` with ``include_defaults=False``: lmms-eval's fastest
route (the CLI first indexes ~2,000 built-in tasks, research deps.md §3.5)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lmms_eval.evaluator import simple_evaluate  # noqa: E402
from lmms_eval.tasks import TaskManager  # noqa: E402
from vpb_lmms import VpbQwen, dump  # noqa: E402

ckpt, protocol, task_dir, out = sys.argv[1:5]
model = VpbQwen(pretrained=ckpt, protocol=protocol)
simple_evaluate(model=model, tasks=["vpb_motionbench"], batch_size=1, device="cpu", log_samples=False,
                task_manager=TaskManager(verbosity="ERROR", include_path=task_dir, include_defaults=False))
dump(model, out)
