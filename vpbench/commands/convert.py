"""`vpbench convert vru-accident`: official VRU-Accident response files → a ``replay:FILE``.

The official repository (github.com/Kimyounggun99/VRU-Accident) saves each model's outputs as
``Model_Response/VQA/<model>/<SRC>_VQA_response.json`` (parsed predictions) and
``Model_Response/Dense_Captioning/<model>/<SRC>_Dense_Captioning_response.json`` (captions). This
command writes them as replay JSONL and prints the ``vpbench run`` that scores them the official
way (VQA: the model's own official post-processor as parser; captions: paired by dict order).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vpbench.commands._base import command, group

ORDER = 35


def _kind(model_dir: Path) -> str:
    if any(model_dir.glob("*_VQA_response.json")):
        return "vqa"
    if any(model_dir.glob("*_Dense_Captioning_response.json")):
        return "caption"
    from vpbench.errors import DataError

    raise DataError(f"{model_dir}: no *_VQA_response.json or *_Dense_Captioning_response.json files; pass one "
                    f"model folder of the official Model_Response/VQA or Model_Response/Dense_Captioning")


def _vru(ns: argparse.Namespace) -> int:
    import importlib

    from vpbench.errors import ConfigError
    from vpbench.parsers.vru import official_vqa_parser
    from vpbench.registry import get_task

    model_dir, out = Path(ns.model_dir), Path(ns.output)
    if not model_dir.is_dir():
        raise ConfigError(f"{model_dir} is not a directory: pass one model folder of the official Model_Response/")
    kind = ns.kind or _kind(model_dir)
    name = "vru_accident_vqa" if kind == "vqa" else "vru_accident_caption"
    module = importlib.import_module(get_task(name).load_samples.__module__)
    data = f" --data-root {ns.data_root}" if ns.data_root else " --data-root DATA"
    if kind == "vqa":
        parser = official_vqa_parser(ns.model or model_dir.name)
        n = module.official_vqa_replay(model_dir, out)
        run = f"vpbench run --model replay:{out} --tasks {name}{data} --set parser={parser} --output RUN"
    else:
        if not ns.data_root:
            raise ConfigError("captions are paired with the references by file order, as the official scorer "
                              "does: pass --data-root DIR holding the official MetaData/")
        n = module.official_caption_replay(model_dir, Path(ns.data_root), out)
        run = f"vpbench run --model replay:{out} --tasks {name}{data} --output RUN"
    print(f"{name}: wrote {n} responses of {model_dir.name} to {out}")
    print(f"score them with:\n  {run}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    conv = group(sub, "convert", "convert another harness's response files into a replay:FILE")
    v = command(conv, "vru-accident", _vru, help="official VRU-Accident Model_Response folder → replay JSONL")
    v.add_argument("model_dir", help="Model_Response/VQA/<model> or Model_Response/Dense_Captioning/<model>")
    v.add_argument("--output", required=True, help="replay JSONL to write")
    v.add_argument("--kind", choices=["vqa", "caption"], help="default: from the file names")
    v.add_argument("--data-root", help="folder holding the official MetaData/ (needed for captions)")
    v.add_argument("--model", help="official model name, for the VQA parser (default: the folder name)")
