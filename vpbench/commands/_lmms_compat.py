"""lmms-eval / lm-evaluation-harness habits on `vpbench run`.

Flags with a vpbench equivalent are accepted: ``--output_path`` and ``--batch_size`` are plain
aliases; ``--model_args k=v,...``, ``--gen_kwargs k=v,...`` and ``--seed N`` are translated to
vpbench options / ``--set`` overrides (an explicit ``--set`` wins). ``--tasks list`` lists tasks.
Flags with no equivalent are refused, all at once, each with the vpbench way (``FOREIGN``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

MODEL_ARGS: dict[str, str] = {
    "pretrained": "model", "dtype": "dtype", "torch_dtype": "dtype", "device": "device", "device_map": "device",
    "batch_size": "batch_size", "trust_remote_code": "trust_remote_code",
    "min_pixels": "protocol.min_pixels", "max_pixels": "protocol.max_pixels", "fps": "protocol.fps",
    "max_num_frames": "protocol.max_frames", "system_prompt": "protocol.system_prompt",
}
"""lmms-eval ``--model_args`` key → vpbench option (bare name) or ``--set`` key (dotted)."""

GEN_KWARGS: dict[str, str] = {
    "max_new_tokens": "protocol.max_new_tokens", "temperature": "protocol.temperature", "top_p": "protocol.top_p",
    "seed": "protocol.seed",
}
"""lmms-eval / lm-eval ``--gen_kwargs`` key → ``--set`` key."""

FOREIGN: dict[str, str] = {
    "--log_samples": "vpbench always logs every sample (raw response, parsed answer, scores) to "
                     "OUTPUT/<task>/records.jsonl: drop --log_samples",
    "--verbosity": "vpbench has no log levels: progress goes to stderr (a bar in a terminal, periodic lines "
                   "under CI or TQDM_DISABLE=1), results to stdout: drop --verbosity",
    "--num_fewshot": "vpbench tasks are zero-shot with each benchmark's official prompt; change the prompt "
                     "with --set TASK.protocol.prompt_template=...",
    "--include_path": "tasks are Python definitions in vpbench's tasks/ folder (see `vpbench tasks`)",
    "--use_cache": "vpbench caches greedy responses by default in OUTPUT/response_cache.sqlite: "
                   "--cache-path FILE to move it, --no-cache to disable it",
    "--wandb_args": "vpbench writes manifest.json and results.json into the run directory; log those files",
    "--apply_chat_template": "vpbench always uses the model's chat template",
}
"""Flags of the other harnesses with no vpbench equivalent → the vpbench way."""


def add_aliases(r: argparse.ArgumentParser) -> None:
    """The translated flags (shown in `vpbench run --help` under their own heading)."""
    g = r.add_argument_group("lmms-eval / lm-eval compatibility",
                             "--output_path and --batch_size are aliases of --output and --batch-size")
    g.add_argument("--model_args", metavar="K=V,...",
                   help=f"lmms-eval model args: {', '.join(MODEL_ARGS)} (pretrained=DIR is the model)")
    g.add_argument("--gen_kwargs", metavar="K=V,...",
                   help=f"generation args: {', '.join(GEN_KWARGS)} (= --set protocol.KEY=V)")
    g.add_argument("--seed", type=int, metavar="N", help="sampling seed (= --set protocol.seed=N; the bootstrap "
                                                         "seed is --set stats.seed=N)")
    r.foreign_flags = FOREIGN  # type: ignore[attr-defined]


def _pairs(text: str, flag: str) -> dict[str, str]:
    from vpbench.errors import ConfigError

    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"{flag} {text!r}: '{item}' must look like key=value")
        out[key.strip()] = value.strip()
    return out


def _model_args(ns: argparse.Namespace, sets: list[str]) -> None:
    from vpbench.config import parse_scalar, suggest
    from vpbench.errors import ConfigError

    for key, value in _pairs(ns.model_args, "--model_args").items():
        target = MODEL_ARGS.get(key)
        if target is None:
            raise ConfigError(f"--model_args key '{key}' has no vpbench equivalent{suggest(key, MODEL_ARGS)}; "
                              f"accepted: {', '.join(MODEL_ARGS)}")
        if target == "model":
            if ns.model and ns.model != value and (Path(ns.model).exists() or ":" in ns.model):
                raise ConfigError(f"--model {ns.model} and --model_args pretrained={value} name two models: "
                                  f"give one (vpbench: --model DIR)")
            ns.model = value
        elif "." in target:
            sets.append(f"{target}={value}")
        elif target in ("batch_size",):
            ns.batch_size = int(value)
        elif target == "trust_remote_code":
            ns.trust_remote_code = bool(parse_scalar(value))
        else:
            setattr(ns, target, value)


def _gen_kwargs(ns: argparse.Namespace, sets: list[str]) -> None:
    from vpbench.config import parse_scalar, suggest
    from vpbench.errors import ConfigError

    kwargs = _pairs(ns.gen_kwargs, "--gen_kwargs")
    for key, value in kwargs.items():
        if key == "do_sample":
            if parse_scalar(value) is True and float(kwargs.get("temperature", 0) or 0) <= 0:
                raise ConfigError("--gen_kwargs do_sample=true: vpbench samples when protocol.temperature > 0; "
                                  "give temperature=T too (or --set protocol.temperature=T)")
            continue
        if key == "num_beams" and str(value) == "1":
            continue
        target = GEN_KWARGS.get(key)
        if target is None:
            raise ConfigError(f"--gen_kwargs key '{key}' has no vpbench equivalent{suggest(key, GEN_KWARGS)}; "
                              f"accepted: {', '.join([*GEN_KWARGS, 'do_sample', 'num_beams=1'])}")
        sets.append(f"{target}={value}")


def apply(ns: argparse.Namespace) -> None:
    """Translate the compatibility flags on ``ns`` in place (before the run is configured)."""
    sets: list[str] = []
    if ns.model_args:
        _model_args(ns, sets)
    if ns.gen_kwargs:
        _gen_kwargs(ns, sets)
    if ns.seed is not None:
        sets.append(f"protocol.seed={ns.seed}")
    ns.set = [*sets, *(ns.set or [])]  # explicit --set comes last and wins


def limit_type(text: str) -> int:
    """--limit N (a count); lm-eval's fractional form is answered with the vpbench way."""
    try:
        value = float(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected a positive integer (a sample count), got {text!r}") from e
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(
            f"vpbench takes a sample count per task (the first N samples), not a fraction: got {text!r}; "
            f"e.g. --limit 50" if 0 < value < 1 else f"expected a positive integer (a sample count), got {text!r}")
    return int(value)

