"""What lmms-eval 0.7.3's own ``qwen2_5_vl`` model does per request, written for a CPU machine without
torchvision (no HF video processor can be built there, research deps.md §3.1):

1. read the whole video (qwen-vl-utils' torchvision reader decodes every frame with PyAV),
2. pick ``nframes`` indices with ``linspace(0, total - 1, n).round()`` and resize each frame to the
   ``smart_resize`` size (bicubic, PIL: vpbench's stand-in for torchvision's resize),
3. the slow HF image processor's arithmetic (float64 rescale, float32 normalise, patch order),
4. the checkpoint's chat template (video part, then the text), ``<|video_pad|>`` expanded,
5. ``model.generate`` greedy, one request at a time (lmms-eval's default batch size 1), decoded
   with ``skip_special_tokens=True``.

Imports nothing from lmms_eval, so the parity test (tests/test_lmms_parity.py) runs it without the
package; ``vpb_lmms.py`` wraps it in an lmms-eval model class.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def smart_resize(height: int, width: int, min_pixels: int, max_pixels: int, factor: int = 28) -> tuple[int, int]:
    """qwen-vl-utils ``smart_resize``."""
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def read_video(path: str, nframes: int, min_pixels: int, max_pixels: int, total_pixels: int) -> tuple[np.ndarray, float]:
    """Frames [n, H, W, 3] uint8 at the smart_resize size, and the sample fps (qwen-vl-utils rules)."""
    import av
    import torch
    from PIL import Image

    with av.open(path) as c:
        s = c.streams.video[0]
        video_fps = float(s.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    total = len(frames)
    idx = torch.linspace(0, total - 1, nframes).round().long().tolist()
    h, w = frames[0].shape[:2]
    max_px = max(min(max_pixels, total_pixels / nframes * 2), int(min_pixels * 1.05))
    rh, rw = smart_resize(h, w, min_pixels, max_px)
    out = np.stack([np.asarray(Image.fromarray(frames[i]).resize((rw, rh), Image.Resampling.BICUBIC)) for i in idx])
    return out, nframes / max(total, 1e-6) * video_fps


def patchify(frames: np.ndarray, patch: int = 14, merge: int = 2, tps: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """HF ``Qwen2VLImageProcessor`` video arithmetic: float64 rescale, float32 normalise, patch order."""
    x = (frames.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = ((x - np.asarray(CLIP_MEAN, np.float32)) / np.asarray(CLIP_STD, np.float32)).transpose(0, 3, 1, 2)
    if len(x) % tps:
        x = np.concatenate([x] + [x[-1:]] * (tps - len(x) % tps))
    t, c, h, w = x.shape
    gt, gh, gw = t // tps, h // patch, w // patch
    x = x.reshape(gt, tps, c, gh // merge, merge, patch, gw // merge, merge, patch).transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return np.ascontiguousarray(x.reshape(gt * gh * gw, c * tps * patch * patch)), np.array([[gt, gh, gw]])


def respond(model: Any, tokenizer: Any, video: str, text: str, *, nframes: int, min_pixels: int, max_pixels: int,
            total_pixels: int, max_new_tokens: int, system: str | None = None) -> str:
    """One request through steps 1-5 of the module docstring."""
    import torch

    frames, fps = read_video(video, nframes, min_pixels, max_pixels, total_pixels)
    pv, thw = patchify(frames)
    conv = ([{"role": "system", "content": [{"type": "text", "text": system}]}] if system else [])
    conv.append({"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]})
    prompt = tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
    prompt = prompt.replace("<|video_pad|>", "<|video_pad|>" * int(thw.prod() // 4))
    ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
    eos = model.generation_config.eos_token_id
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values_videos=torch.from_numpy(pv),
            video_grid_thw=torch.from_numpy(thw), second_per_grid_ts=torch.tensor([round(2 / fps, 6)]),
            max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, repetition_penalty=1.0,
            eos_token_id=eos, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
