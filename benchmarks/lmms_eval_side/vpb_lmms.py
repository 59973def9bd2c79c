"""An out-of-tree lmms-eval 0.7.3 model class serving a local Qwen2.5-VL checkpoint through
:mod:`qwen_path` (what lmms-eval's own ``qwen2_5_vl`` does, without torchvision)."""

from __future__ import annotations

import json
import os

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms

from qwen_path import respond


class VpbQwen(lmms):
    def __init__(self, pretrained: str, protocol: str, **kwargs) -> None:
        super().__init__()
        from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

        self.tok = AutoTokenizer.from_pretrained(pretrained, local_files_only=True)
        self.model = Qwen2_5_VLForConditionalGeneration.from_pretrained(pretrained, local_files_only=True).eval()
        self.protocol = json.loads(open(protocol).read())
        self.responses: dict[str, str] = {}

    def generate_until(self, requests: list[Instance]) -> list[str]:
        out = []
        for req in requests:
            context, gen_kwargs, doc_to_visual, doc_id, task, split = req.args
            doc = self.task_dict[task][split][doc_id]
            text = respond(self.model, self.tok, doc_to_visual(doc)[0], context,
                           max_new_tokens=int(gen_kwargs.get("max_new_tokens", 64)), system=doc.get("system"),
                           **self.protocol)
            self.responses[doc["sample_id"]] = text
            out.append(text)
        return out

    def loglikelihood(self, requests):
        raise NotImplementedError

    def generate_until_multi_round(self, requests):
        raise NotImplementedError


def dump(model: VpbQwen, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(model.responses, f, ensure_ascii=False, sort_keys=True)
    os.sync()
