"""The ``hf`` backend: Qwen2.5-VL through transformers, frames in, text out.

Models load from a LOCAL checkpoint dir only. Video inputs are built by ``qwen_inputs`` (no HF
processor: it needs torchvision). Decoding is fully defined by the ``Request``: greedy when
``temperature == 0``, else sampling with ``temperature``/``top_p`` under ``torch.manual_seed(seed)``.
The checkpoint's ``generation_config.json`` sampling defaults (repetition_penalty, top_k, ...) are
NOT applied (only its eos/pad/bos ids are); ``describe()`` lists what was ignored.

Greedy requests are batched (left padding) by ``max_new_tokens``; sampled requests run one at a
time so each one's result depends only on its own seed, not on its batch neighbours.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vpbench.errors import ConfigError, VpbenchError
from vpbench.hashing import file_sha256, stable_hash
from vpbench.models.base import BackendBase, Prepared
from vpbench.models.qwen_inputs import (
    VisionPreproc,
    build_prompt,
    chat_renderer,
    count_video_parts,
    load_chat_template,
    mm_token_type_ids,
    n_video_tokens,
    patchify_with,
    second_per_grid_t,
    takes_mm_token_type_ids,
)
from vpbench.types import Response

DTYPES = ("auto", "float32", "bfloat16", "float16")
SUPPORTED_MODEL_TYPES = ("qwen2_5_vl",)
# Small files that change what the model is shown or how it decodes: part of the fingerprint.
AUX_FILES = (
    "config.json", "generation_config.json", "preprocessor_config.json", "chat_template.json",
    "chat_template.jinja", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
    "special_tokens_map.json", "added_tokens.json",
)
WEIGHTS_SIDECAR = ".vpbench_weights_sha256.json"
_IGNORED_GEN_KEYS = ("do_sample", "temperature", "top_p", "top_k", "repetition_penalty", "num_beams")


# -- weights hash with a size+mtime keyed sidecar -------------------------------------------------
def weight_files(model_dir: Path) -> list[Path]:
    """``*.safetensors`` (else ``*.bin``) weight shards of a checkpoint, sorted by name."""
    files = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    if not files:
        raise ConfigError(f"{model_dir}: no weight files (*.safetensors or *.bin) in the model dir")
    return files


def _sidecar_paths(model_dir: Path) -> list[Path]:
    cache_root = Path(os.environ.get("VPBENCH_CACHE_DIR") or Path.home() / ".cache" / "vpbench")
    key = stable_hash(str(model_dir.resolve()))
    return [model_dir / WEIGHTS_SIDECAR, cache_root / "weights_sha256" / f"{key}.json"]


def weights_sha256(model_dir: Path) -> tuple[str, dict[str, str]]:
    """sha256 of every weight file and a combined hash over ``{name: sha}``.

    Per-file hashes are cached in a sidecar (in the model dir, or under ``$VPBENCH_CACHE_DIR``
    / ``~/.cache/vpbench`` when the dir is read-only) keyed by size and mtime_ns, so an unchanged
    7B checkpoint is not re-hashed on every run.
    """
    cached: dict[str, Any] = {}
    for sc in _sidecar_paths(model_dir):
        if sc.is_file():
            try:
                cached = json.loads(sc.read_text(encoding="utf-8")).get("files", {})
                break
            except (OSError, json.JSONDecodeError, AttributeError):
                cached = {}
    entries: dict[str, dict[str, Any]] = {}
    dirty = False
    for f in weight_files(model_dir):
        st = f.stat()
        old = cached.get(f.name)
        if isinstance(old, dict) and old.get("size") == st.st_size and old.get("mtime_ns") == st.st_mtime_ns:
            entries[f.name] = old
        else:
            entries[f.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": file_sha256(f)}
            dirty = True
    if dirty or set(cached) != set(entries):
        payload = json.dumps({"version": 1, "files": entries}, indent=1, sort_keys=True)
        for sc in _sidecar_paths(model_dir):
            try:
                sc.parent.mkdir(parents=True, exist_ok=True)
                tmp = sc.with_name(sc.name + f".tmp{os.getpid()}")
                tmp.write_text(payload, encoding="utf-8")
                os.replace(tmp, sc)
                break
            except OSError:
                continue
    per_file = {name: str(e["sha256"]) for name, e in entries.items()}
    return stable_hash(per_file, length=64), per_file


def _resolve_device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: this torch ({torch.__version__}) sees no CUDA device; "
                              f"Fix: use --device cpu (or auto), or install a CUDA build of torch on a GPU machine")
        index = int(device[5:]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible; "
                              f"Fix: pick cuda:0..cuda:{torch.cuda.device_count() - 1}")
        return device
    raise ConfigError(f"device must be cpu, cuda, cuda:N or auto, got {device!r}")


AUTO_BATCH_SIZE = 8


def auto_batch_size(requested: int | None, device: str, dtype: str) -> tuple[int, str]:
    """The batch size of greedy requests and why (recorded in the run's manifest).

    Greedy requests are batched with left padding; sampled ones always run one at a time (each
    with its own seed). Without ``--batch-size`` the default is ``AUTO_BATCH_SIZE`` in float32 on
    CPU, where batched greedy output is byte-identical to one sample at a time (proven on the tiny
    model by ``tests/test_hf_backend.py``), and 1 elsewhere: in bf16/fp16 or on GPU the batched
    kernels may reduce in another order, so the same sample could get another answer in a batch.
    """
    if requested is not None:
        return requested, "set by --batch-size (greedy requests batched, left padding; sampled ones one at a time)"
    if device == "cpu" and dtype == "float32":
        return AUTO_BATCH_SIZE, ("default: greedy requests batched with left padding, byte-identical to one at a "
                                 "time in float32 on CPU; sampled ones one at a time")
    return 1, (f"default: one sample per generate call: batched greedy output is not proven identical to "
               f"unbatched in {dtype} on {device}; pass --batch-size N to batch")


def cpu_threads() -> tuple[int | None, str]:
    """torch intra-op threads for ``generate`` on CPU, and why. ``OMP_NUM_THREADS`` (the user's
    choice) wins; otherwise 1: on the 2-core test machine a second thread cost 1.9-4.2x the wall
    time and ~2x the CPU of the tiny-model run, quiet or under competing load (benchmarks/threads.py).
    Set only around ``generate`` and restored after it, so other work in the process keeps its own."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        return None, f"OMP_NUM_THREADS={env} (torch's own setting)"
    return 1, "default on CPU: 1 intra-op thread (benchmarks/threads.py); set OMP_NUM_THREADS to change it"


class HFQwenVLBackend(BackendBase):
    """transformers backend for the Qwen2.5-VL family (see module docstring).

    The model and tokenizer load lazily on the first ``generate`` (or ``load()``), so a fully
    cached run never loads weights; files are validated at construction.
    """

    name = "hf"
    needs_frames = True

    def __init__(
        self,
        path: Path | str,
        *,
        dtype: str = "auto",
        device: str = "auto",
        batch_size: int | None = None,
        trust_remote_code: bool = False,
        attn_implementation: str | None = None,
    ) -> None:
        p = Path(path).expanduser()
        if not p.is_dir():
            hint = " (looks like a hub id)" if "/" in str(path) and not Path(str(path)).anchor else ""
            raise ConfigError(
                f"model path {str(path)!r} is not a local directory{hint}: vpbench loads models from "
                "local dirs only; download the checkpoint first (e.g. `huggingface-cli download "
                "Qwen/Qwen2.5-VL-7B-Instruct --local-dir DIR`) and pass DIR"
            )
        cfg_path = p / "config.json"
        if not cfg_path.is_file():
            raise ConfigError(f"{p}: no config.json; pass a transformers checkpoint dir")
        try:
            self._config = json.loads(cfg_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{cfg_path}: invalid JSON ({e})") from e
        model_type = self._config.get("model_type")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ConfigError(
                f"{cfg_path}: model_type {model_type!r} is not supported by the hf backend "
                f"(supported: {', '.join(SUPPORTED_MODEL_TYPES)})"
            )
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.path = p.resolve()
        self.device = _resolve_device(device)
        self.dtype = self._resolve_dtype(dtype)
        self.batch_size, self.batch_size_reason = auto_batch_size(batch_size, self.device, self.dtype)
        self.threads, self.threads_reason = cpu_threads() if self.device == "cpu" else (None, "not on CPU")
        self.trust_remote_code = trust_remote_code
        self.attn_implementation = attn_implementation
        self.preproc = VisionPreproc.from_pretrained(self.path)
        weight_files(self.path)  # fail early on a dir without weights
        self._weights: tuple[str, dict[str, str]] | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._render: Any = None
        self._eos_ids: tuple[int, ...] = ()
        self._pad_id: int = 0
        self._tok_lock = threading.Lock()
        self._rope_warned = False

    def _warn_truncated_rope(self, sample_id: str, spg: float) -> None:
        """Once per backend: this transformers collapses the video's temporal positions at ``spg``
        seconds per temporal patch (``truncated_rope_note``); the answers are still the model's, but not
        the reference's, so the run says so on stderr."""
        from vpbench.models.qwen_inputs import truncated_rope_note

        if not self._rope_warned and (note := truncated_rope_note(spg)):
            import warnings

            warnings.warn(f"hf backend, sample {sample_id!r}: {note}", RuntimeWarning, stacklevel=2)
            self._rope_warned = True

    def _resolve_dtype(self, dtype: str) -> str:
        if dtype != "auto":
            return dtype
        if self.device == "cpu":
            return "float32"
        declared = self._config.get("dtype") or self._config.get("torch_dtype")
        return declared if declared in ("float32", "bfloat16", "float16") else "bfloat16"

    # -- identity ----------------------------------------------------------------------------
    def weights(self) -> tuple[str, dict[str, str]]:
        if self._weights is None:
            self._weights = weights_sha256(self.path)
        return self._weights

    def fingerprint(self) -> str:
        """Hash of the backend, weights, config/tokenizer/template/preprocessor files, dtype, transformers
        version and the vision kernels swapped in (``fast_vision``) — outputs change with any of them."""
        import transformers

        from vpbench.models.fast_vision import kernels_tag

        aux = {n: file_sha256(self.path / n) for n in AUX_FILES if (self.path / n).is_file()}
        return stable_hash(
            {"backend": self.name, "weights": self.weights()[0], "files": aux, "dtype": self.dtype,
             "transformers": transformers.__version__, "vision_kernels": kernels_tag()}
        )

    def describe(self) -> dict[str, Any]:
        import torch
        import transformers

        gen_path = self.path / "generation_config.json"
        gen = json.loads(gen_path.read_text(encoding="utf-8")) if gen_path.is_file() else {}
        info: dict[str, Any] = {
            "backend": self.name,
            "path": str(self.path),
            "model_type": self._config.get("model_type"),
            "weights_sha256": self.weights()[0],
            "weight_files": self.weights()[1],
            "config_sha256": file_sha256(self.path / "config.json"),
            "dtype": self.dtype,
            "device": self.device,
            "attn_implementation": self.attn_implementation,
            "batch_size": self.batch_size,
            "batch_size_reason": self.batch_size_reason,
            "torch_threads": self.threads,
            "torch_threads_reason": self.threads_reason,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "checkpoint_generation_defaults_ignored": {k: gen[k] for k in _IGNORED_GEN_KEYS if k in gen},
            "fingerprint": self.fingerprint(),
        }
        if self.device.startswith("cuda") and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(torch.device(self.device))
        return info

    @property
    def model(self) -> Any:
        """The loaded transformers model (loads on first access)."""
        self.load()
        return self._model

    @property
    def tokenizer(self) -> Any:
        self.load()
        return self._tokenizer

    # -- loading -----------------------------------------------------------------------------
    def load(self) -> None:
        """Load tokenizer, chat template and model (once)."""
        if self._model is not None:
            return
        import torch
        from transformers import AutoTokenizer, GenerationConfig, Qwen2_5_VLForConditionalGeneration

        from vpbench.models.fast_vision import speed_up_vision_tower

        tok = AutoTokenizer.from_pretrained(
            str(self.path), local_files_only=True, trust_remote_code=self.trust_remote_code
        )
        self._render = chat_renderer(tok, load_chat_template(self.path, tok))
        kwargs: dict[str, Any] = {"local_files_only": True, "dtype": getattr(torch, self.dtype),
                                  "trust_remote_code": self.trust_remote_code}
        if self.attn_implementation:
            kwargs["attn_implementation"] = self.attn_implementation
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(self.path), **kwargs)
        speed_up_vision_tower(model)  # packed window attention, linear patch embedding: same values
        model.to(self.device).eval()
        ckpt = model.generation_config
        eos: list[int] = []
        for v in (ckpt.eos_token_id, tok.eos_token_id):
            for i in v if isinstance(v, (list, tuple)) else [v]:
                if i is not None and int(i) not in eos:
                    eos.append(int(i))
        if not eos:
            raise ConfigError(f"{self.path}: no eos token id in generation_config.json or the tokenizer")
        pad = tok.pad_token_id if tok.pad_token_id is not None else ckpt.pad_token_id
        self._eos_ids, self._pad_id = tuple(eos), int(pad if pad is not None else eos[0])
        # A clean generation config: the request alone defines decoding (see module docstring).
        model.generation_config = GenerationConfig(
            eos_token_id=list(self._eos_ids), pad_token_id=self._pad_id, bos_token_id=ckpt.bos_token_id
        )
        self._tokenizer, self._model = tok, model

    # -- generation --------------------------------------------------------------------------
    def prepare(self, prep: Prepared) -> Prepared:
        """Patchify and tokenise ``prep`` ahead of ``generate`` (the prefetch thread). Before the
        model is loaded (the first batch) nothing is done here: ``generate`` loads and encodes."""
        if self._model is None:
            return prep
        try:
            encoded: Any = self._encode(prep)
        except (ValueError, VpbenchError) as e:  # raised again, as a per-sample error, by generate
            encoded = e
        return dataclasses.replace(prep, encoded=encoded)

    def _encode(self, prep: Prepared) -> dict[str, Any]:
        """Prompt ids and video tensors for one request; ValueError/VpbenchError when unusable."""
        req, frames = prep.request, prep.frames
        n_parts = count_video_parts(req.messages)
        item: dict[str, Any] = {"pv": None, "thw": None, "spg": None}
        n_tok = 0
        if n_parts:
            if frames is None:
                raise ValueError(
                    f"request {req.sample_id!r} has a video part but no frames were decoded; the hf "
                    "backend never answers a video question from text alone"
                )
            pv, thw = patchify_with(frames.array, self.preproc)
            n_tok = n_video_tokens(thw, self.preproc.merge_size)
            spg = second_per_grid_t(frames, self.preproc.temporal_patch_size)
            self._warn_truncated_rope(req.sample_id, spg)
            item.update(pv=pv, thw=thw, spg=spg)
        elif frames is not None:
            raise ValueError(
                f"request {req.sample_id!r} came with frames but its messages hold no video part; "
                "the prompt template must place the video"
            )
        prompt = build_prompt(req.messages, self._render, n_tok)
        with self._tok_lock:  # the prefetch thread encodes while the main thread decodes responses
            ids = self._tokenizer(prompt, add_special_tokens=False)["input_ids"]
        video_id = int(self._model.config.video_token_id)
        if sum(1 for i in ids if i == video_id) != n_tok:
            raise ValueError(f"request {req.sample_id!r}: tokenized prompt does not hold {n_tok} video tokens")
        item["ids"] = ids
        return item

    def collate(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Left-padded model inputs for encoded items: ``input_ids``/``attention_mask`` [B, L],
        and for the rows with a video ``pixel_values_videos`` [sum N_i, 1176],
        ``video_grid_thw`` [V, 3], ``second_per_grid_ts`` [V] (videos in row order), plus on
        transformers 5.x ``mm_token_type_ids`` [B, L] (2 on video tokens, else 0)."""
        import torch

        length = max(len(it["ids"]) for it in items)
        ids = torch.full((len(items), length), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), length), dtype=torch.long)
        for r, it in enumerate(items):
            ids[r, length - len(it["ids"]):] = torch.tensor(it["ids"], dtype=torch.long)
            mask[r, length - len(it["ids"]):] = 1
        inputs: dict[str, Any] = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}
        videos = [it for it in items if it["pv"] is not None]
        if videos:
            dtype = getattr(torch, self.dtype)
            inputs["pixel_values_videos"] = torch.from_numpy(
                np.concatenate([it["pv"] for it in videos])).to(self.device, dtype)
            inputs["video_grid_thw"] = torch.from_numpy(
                np.concatenate([it["thw"] for it in videos])).to(self.device)
            inputs["second_per_grid_ts"] = torch.tensor([it["spg"] for it in videos], device=self.device)
            if takes_mm_token_type_ids(self._model):
                # transformers 5.x: without these the video tokens silently get 1D text positions (no MRoPE)
                inputs["mm_token_type_ids"] = mm_token_type_ids(
                    inputs["input_ids"], self._model.config.video_token_id, self._model.config.image_token_id)
        return inputs

    def model_inputs(self, batch: Sequence[Prepared]) -> dict[str, Any]:
        """The exact tensors ``generate`` feeds the model for ``batch`` (processor-parity checks).
        Raises on a request ``generate`` would answer with an error."""
        self.load()
        return self.collate([self._encode(p) for p in batch])

    def _run(self, items: list[dict[str, Any]], max_new_tokens: int, temperature: float,
             top_p: float, seed: int | None) -> tuple[list[list[int]], float]:
        """One ``generate`` call over left-padded ``items``; returns new token ids per row."""
        import torch
        from transformers import GenerationConfig

        inputs = self.collate(items)
        length = inputs["input_ids"].shape[1]
        sample = seed is not None
        gc = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=sample, num_beams=1,
            temperature=temperature if sample else 1.0, top_p=top_p if sample else 1.0,
            top_k=0 if sample else 50, repetition_penalty=1.0,
            eos_token_id=list(self._eos_ids), pad_token_id=self._pad_id,
            bos_token_id=self._model.generation_config.bos_token_id,
        )
        t0 = time.perf_counter()
        before = torch.get_num_threads()
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        try:
            out = self._generate(inputs, gc, seed)
        finally:
            torch.set_num_threads(before)
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
        return [row.tolist() for row in out[:, length:].cpu()], elapsed

    def _generate(self, inputs: dict[str, Any], gc: Any, seed: int | None) -> Any:
        import torch

        sample = seed is not None
        with torch.inference_mode():
            if sample:
                devices = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed(int(seed))  # type: ignore[arg-type]
                    out = self._model.generate(**inputs, generation_config=gc)
            else:
                out = self._model.generate(**inputs, generation_config=gc)
        return out

    def _respond(self, prep: Prepared, item: dict[str, Any], new: list[int], elapsed: float) -> Response:
        eos = set(self._eos_ids)
        stop = next((k for k, t in enumerate(new) if t in eos), None)
        kept = new if stop is None else new[: stop + 1]
        with self._tok_lock:
            text = self._tokenizer.decode(kept, skip_special_tokens=True)
        return Response(
            sample_id=prep.request.sample_id, text=text, n_input_tokens=len(item["ids"]),
            n_output_tokens=len(kept), latency_s=elapsed,
            finish_reason="stop" if stop is not None else "length",
        )

    def generate(self, batch: Sequence[Prepared]) -> list[Response]:
        """One ``Response`` per ``Prepared``, in order. Per-sample problems (missing frames,
        bad frame sizes, a failing forward) become ``Response.error``; ``latency_s`` is the wall
        time of the ``generate`` call that produced the response."""
        self.load()
        out: list[Response | None] = [None] * len(batch)
        items: dict[int, dict[str, Any]] = {}
        for i, prep in enumerate(batch):
            try:
                if isinstance(prep.encoded, BaseException):
                    raise prep.encoded
                items[i] = prep.encoded if prep.encoded is not None else self._encode(prep)
            except (ValueError, VpbenchError) as e:
                out[i] = Response(sample_id=prep.request.sample_id, text="", error=f"{type(e).__name__}: {e}")
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i in items:
            req = batch[i].request
            key = ("greedy", req.max_new_tokens) if req.greedy else ("sample", i)
            groups.setdefault(key, []).append(i)
        for key, idx in groups.items():
            for s in range(0, len(idx), self.batch_size):
                chunk = idx[s: s + self.batch_size]
                req = batch[chunk[0]].request
                try:
                    new, elapsed = self._run(
                        [items[i] for i in chunk], req.max_new_tokens, req.temperature, req.top_p,
                        None if key[0] == "greedy" else req.seed,
                    )
                except (RuntimeError, ValueError) as e:
                    for i in chunk:
                        out[i] = Response(sample_id=batch[i].request.sample_id, text="",
                                          error=f"{type(e).__name__}: {e}")
                    continue
                for i, row in zip(chunk, new):
                    out[i] = self._respond(batch[i], items[i], row, elapsed)
        missing = [batch[i].request.sample_id for i, r in enumerate(out) if r is None]
        if missing:
            raise RuntimeError(f"hf backend produced no response for {missing}")
        return [r for r in out if r is not None]
