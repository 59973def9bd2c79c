"""VRU-Accident's official per-model answer cleaners (``utils/utils.py: postprocessor``).

The official code saves the *cleaned* output and scores it by exact comparison with the ground
truth letter (``pred.strip().upper() == GT.strip().upper()``), so the cleaner decides the score.
Each cleaner is reproduced verbatim as a named, versioned :class:`vpbench.task.Parser`:

=====================  ==========================================================  ====================
parser                 official expression (VQA)                                    official models
=====================  ==========================================================  ====================
``qwen`` (default)     ``extract_single_choice(output.split('\\n')[-1])``           Qwen2-VL, Qwen2.5-VL
``internvl``           ``extract_single_choice(output)``                            InternVL2/2.5/3
``mobile_videogpt``    ``extract_single_choice(output)``                            Mobile-VideoGPT-1.5
``llava_next_video``   ``output.split('ASSISTANT: ')[-1].split('.')[0]``            LLaVA-NeXT-Video
``llava_video``        ``output.split('.')[0]``                                     LLaVA-Video
``video_xl2``          ``output.split('.')[0]``                                     Video-XL2
``video_xl_pro``       ``output.split('.')[0]``                                     Video-XL-Pro
``gpt``                ``output.split('.')[0]``                                     GPT-4o-mini
``llava_onevision``    ``output.split('\\n')[-1].split('.')[0]``                   LLaVA-OneVision
``gemini``             ``output`` (raw)                                             Gemini-1.5-Flash
=====================  ==========================================================  ====================

``extract_single_choice``: the first ``\\b[A-D]\\b`` match, else ``Answer:\\s*\\(?([A-D])\\)?``,
else ``None``. Dense-caption cleaners (:data:`CAPTION_PARSERS`) strip the echoed chat prompt the
way the official code does; vpbench backends return only new tokens, so ``raw`` is the default.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from vpbench.task import Parser

VERSION = "1"
_CHOICE = re.compile(r"\b[A-D]\b")
_ANSWER = re.compile(r"Answer:\s*\(?([A-D])\)?")


def extract_single_choice(text: str) -> str | None:
    """Official ``extract_single_choice``: first standalone A-D letter, else ``Answer: X``, else None."""
    candidates = _CHOICE.findall(text)
    if candidates:
        return candidates[0]
    match = _ANSWER.search(text)
    if match:
        return match.group(1)
    return None


def _qwen(text: str, options: tuple[str, ...], meta: Mapping[str, Any]) -> str | None:
    return extract_single_choice(text.split("\n")[-1])


def _single_choice(text: str, options: tuple[str, ...], meta: Mapping[str, Any]) -> str | None:
    return extract_single_choice(text)


def _llava_next_video(text: str, options: tuple[str, ...], meta: Mapping[str, Any]) -> str | None:
    return text.split("ASSISTANT: ")[-1].split(".")[0]


def _first_sentence(text: str, options: tuple[str, ...], meta: Mapping[str, Any]) -> str | None:
    return text.split(".")[0]


def _llava_onevision(text: str, options: tuple[str, ...], meta: Mapping[str, Any]) -> str | None:
    return text.split("\n")[-1].split(".")[0]


def _raw(text: str, options: tuple[str, ...], meta: Mapping[str, Any]) -> str | None:
    return text


def _after_assistant_nl(text: str, options: tuple[str, ...], meta: Mapping[str, Any]) -> str | None:
    return text.split("assistant\n")[-1]


def _after_assistant_colon(text: str, options: tuple[str, ...], meta: Mapping[str, Any]) -> str | None:
    return text.split("ASSISTANT: ")[-1]


def _p(name: str, fn: Any, expr: str) -> Parser:
    return Parser(name=name, version=VERSION, fn=fn, description=f"VRU-Accident official: {expr}")


VQA_PARSERS: dict[str, Parser] = {
    p.name: p
    for p in (
        _p("qwen", _qwen, "extract_single_choice(output.split('\\n')[-1])"),
        _p("internvl", _single_choice, "extract_single_choice(output)"),
        _p("mobile_videogpt", _single_choice, "extract_single_choice(output)"),
        _p("llava_next_video", _llava_next_video, "output.split('ASSISTANT: ')[-1].split('.')[0]"),
        _p("llava_video", _first_sentence, "output.split('.')[0]"),
        _p("video_xl2", _first_sentence, "output.split('.')[0]"),
        _p("video_xl_pro", _first_sentence, "output.split('.')[0]"),
        _p("gpt", _first_sentence, "output.split('.')[0]"),
        _p("llava_onevision", _llava_onevision, "output.split('\\n')[-1].split('.')[0]"),
        _p("gemini", _raw, "output (raw)"),
    )
}
VQA_DEFAULT_PARSER = "qwen"

CAPTION_PARSERS: dict[str, Parser] = {
    p.name: p
    for p in (
        _p("raw", _raw, "output (vpbench backends return only the generated text)"),
        _p("qwen", _after_assistant_nl, "output.split('assistant\\n')[-1]"),
        _p("llava_onevision", _after_assistant_nl, "output.split('assistant\\n')[-1]"),
        _p("llava_next_video", _after_assistant_colon, "output.split('ASSISTANT: ')[-1]"),
    )
}
CAPTION_DEFAULT_PARSER = "raw"

#: Official model folder name (``Model_Response/VQA/<model>``) -> the VQA parser its run used.
OFFICIAL_MODEL_PARSERS: dict[str, str] = {
    "GPT_4o_mini": "gpt",
    "Gemini_15_flash": "gemini",
    "InternVL25_1B": "internvl",
    "InternVL25_2B": "internvl",
    "InternVL25_4B": "internvl",
    "InternVL25_8B": "internvl",
    "InternVL2_8B": "internvl",
    "InternVL3_2B": "internvl",
    "InternVL3_8B": "internvl",
    "LLaVA_NeXT_Video": "llava_next_video",
    "LLaVA_OneVision": "llava_onevision",
    "LLaVA_Video": "llava_video",
    "Mobile_VideoGPT_15": "mobile_videogpt",
    "Qwen25_VL": "qwen",
    "Qwen2_VL_7B": "qwen",
    "Video_XL2": "video_xl2",
    "Video_XL_Pro": "video_xl_pro",
}


def official_vqa_parser(model: str) -> str:
    """The VQA parser name the official code applies to ``model`` (its ``postprocessor`` branch)."""
    if model in OFFICIAL_MODEL_PARSERS:
        return OFFICIAL_MODEL_PARSERS[model]
    if "Qwen" in model:
        return "qwen"
    if "InternVL" in model:
        return "internvl"
    from vpbench.errors import ConfigError

    raise ConfigError(
        f"no official VRU-Accident parser for model '{model}'; known: {', '.join(sorted(OFFICIAL_MODEL_PARSERS))}"
    )
