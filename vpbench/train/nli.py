"""NLI entailment probability for open-ended answers (RECIPE §3: Q = P(entailment)).

``NLIScorer(model_dir)`` loads a local sequence-classification checkpoint (any NLI model:
roberta-large-mnli, nli-deberta-v3, ...) and scores (premise, hypothesis) pairs with
premise = reference answer and hypothesis = model response. The entailment column is read from
``config.label2id`` (case-insensitive "entailment"), never assumed: label orders differ between
checkpoints (0/1/2 all occur). ``build_tiny_nli`` writes a tiny random BERT NLI checkpoint offline
(tests and the tiny recipe), with the label order of your choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from vpbench.errors import ConfigError

ENTAILMENT = "entailment"


def entailment_index(label2id: Mapping[str, Any], where: str = "NLI model") -> int:
    """The class index labelled "entailment" (case-insensitive) in ``label2id``; ConfigError when
    there is none (e.g. a config left at LABEL_0/LABEL_1/LABEL_2)."""
    found = {str(k).strip().lower(): int(v) for k, v in dict(label2id or {}).items()}
    if ENTAILMENT not in found:
        raise ConfigError(f"{where}: config.label2id {dict(label2id or {})} has no 'entailment' label; use an NLI "
                          "checkpoint whose config names its classes (e.g. roberta-large-mnli, "
                          "cross-encoder/nli-deberta-v3-base), or fix label2id/id2label in its config.json")
    return found[ENTAILMENT]


class NLIScorer:
    """P(entailment | premise, hypothesis) from a local NLI checkpoint; loads on first use."""

    def __init__(self, model_dir: str | Path, device: str = "cpu", batch_size: int = 32, max_length: int = 512) -> None:
        p = Path(model_dir)
        if not (p / "config.json").is_file():
            raise ConfigError(f"quality.nli_model={str(model_dir)!r}: no config.json there; pass a local NLI "
                              "sequence-classification checkpoint dir (e.g. roberta-large-mnli downloaded with "
                              "`huggingface-cli download FacebookAI/roberta-large-mnli --local-dir DIR`)")
        self.path, self.device, self.batch_size, self.max_length = p, device, batch_size, max_length
        self._model: Any = None
        self._tok: Any = None
        self.index: int | None = None

    def load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(str(self.path), local_files_only=True)
        self.index = entailment_index(model.config.label2id, f"NLI model {self.path}")
        self._model = model.to(self.device).eval()

    def __call__(self, premises: Sequence[str], hypotheses: Sequence[str]) -> list[float]:
        import torch

        if len(premises) != len(hypotheses):
            raise ValueError(f"{len(premises)} premises vs {len(hypotheses)} hypotheses")
        self.load()
        out: list[float] = []
        for s in range(0, len(premises), self.batch_size):
            enc = self._tok(list(premises[s:s + self.batch_size]), list(hypotheses[s:s + self.batch_size]),
                            return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
            with torch.inference_mode():
                logits = self._model(**{k: v.to(self.device) for k, v in enc.items()}).logits
            out += logits.float().softmax(-1)[:, self.index].tolist()
        return out


def build_tiny_nli(out_dir: str | Path, labels: Sequence[str] = ("contradiction", "neutral", "entailment"),
                   seed: int = 0) -> Path:
    """A tiny random ``BertForSequenceClassification`` with 3 classes named ``labels`` (in index
    order) and a small WordPiece tokenizer (``vpbench.keyframes.tiny_blip2.tiny_vocab``)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    from vpbench.keyframes.tiny_blip2 import tiny_vocab

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.txt").write_text("\n".join(tiny_vocab()) + "\n", encoding="utf-8")
    tok = BertTokenizer(str(out / "vocab.txt"), do_lower_case=True, model_max_length=128)
    tok.save_pretrained(str(out))
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=37, max_position_embeddings=128, num_labels=len(labels),
                     id2label={i: name for i, name in enumerate(labels)},
                     label2id={name: i for i, name in enumerate(labels)}, initializer_range=0.5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForSequenceClassification(cfg).eval()
    model.save_pretrained(str(out), safe_serialization=True)
    return out
