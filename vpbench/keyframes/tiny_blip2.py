"""Offline builders of tiny *random* checkpoints for tests and demos (no hub access).

* ``build_tiny_blip2(out_dir)``: a ``Blip2ForImageTextRetrieval`` checkpoint (ViT 2 layers, Q-Former 2 layers,
  hidden 32, ``num_query_tokens`` queries, ITC dim 16) + a BERT WordPiece tokenizer over a small vocabulary +
  a ``BlipImageProcessor`` resizing to ``image_size``. Loadable by ``Blip2VisionModelWithProjection`` /
  ``Blip2TextModelWithProjection`` and so by ``Blip2Scorer``. The query tokens are drawn at random (the
  library initialises them to zero, which would make all queries identical).
* ``build_tiny_clip(out_dir)``: a ``CLIPModel`` with the same tokenizer and a ``CLIPImageProcessor``.

The weights are random: scores are meaningless but deterministic for a given ``seed``.
"""

from __future__ import annotations

from pathlib import Path

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_WORDS = (
    "a the of and to in on at his her their person man woman car light hand head fingers door ball "
    "raise wave blink nod turn jump fall crash snap open close kick flash smile run walk hit stop"
).split()
_LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]
_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def tiny_vocab() -> list[str]:
    """Special tokens, a few words, letters and ##letters (so every lowercase word tokenises)."""
    out: list[str] = []
    for tok in _SPECIAL + _WORDS + _LETTERS + ["##" + c for c in _LETTERS] + list(".,?!'-"):
        if tok not in out:
            out.append(tok)
    return out


def _save_tokenizer(out: Path) -> int:
    from transformers import BertTokenizer

    vocab_file = out / "vocab.txt"
    vocab_file.write_text("\n".join(tiny_vocab()) + "\n", encoding="utf-8")
    tok = BertTokenizer(str(vocab_file), do_lower_case=True, model_max_length=32)
    tok.save_pretrained(str(out))
    return len(tok)


def build_tiny_blip2(
    out_dir: str | Path, *, seed: int = 0, image_size: int = 30, num_query_tokens: int = 4, embed_dim: int = 16
) -> Path:
    """Write a tiny random BLIP-2 retrieval checkpoint (+ tokenizer, image processor) to ``out_dir``."""
    import torch
    from transformers import (
        Blip2Config,
        Blip2ForImageTextRetrieval,
        Blip2QFormerConfig,
        Blip2VisionConfig,
        BlipImageProcessor,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab_size = _save_tokenizer(out)
    # plain sub-config dicts: what 4.x's ``from_vision_qformer_text_configs`` passed, and that helper is gone in
    # 5.x; text_config stays None (the default OPT config: the retrieval model has no language model)
    cfg = Blip2Config(
        vision_config=Blip2VisionConfig(
            image_size=image_size, patch_size=6, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=4, intermediate_size=37, initializer_range=0.2,
        ).to_dict(),
        qformer_config=Blip2QFormerConfig(
            vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=64, pad_token_id=0, initializer_range=0.2,
            use_qformer_text_input=True,
        ).to_dict(),
        num_query_tokens=num_query_tokens,
        image_text_hidden_size=embed_dim,
    )
    torch.manual_seed(seed)
    model = Blip2ForImageTextRetrieval(cfg).eval()
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed + 1)
        model.query_tokens.copy_(torch.randn(model.query_tokens.shape, generator=gen))
    model.save_pretrained(str(out))
    BlipImageProcessor(
        size={"height": image_size, "width": image_size}, image_mean=_CLIP_MEAN, image_std=_CLIP_STD
    ).save_pretrained(str(out))
    return out


def build_tiny_clip(out_dir: str | Path, *, seed: int = 0, image_size: int = 30, embed_dim: int = 16) -> Path:
    """Write a tiny random ``CLIPModel`` checkpoint (+ BERT tokenizer, ``CLIPImageProcessor``) to ``out_dir``."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab_size = _save_tokenizer(out)
    vocab = tiny_vocab()
    cfg = CLIPConfig(
        text_config=CLIPTextConfig(
            vocab_size=vocab_size, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=32, pad_token_id=vocab.index("[PAD]"),
            bos_token_id=vocab.index("[CLS]"), eos_token_id=vocab.index("[SEP]"),
        ).to_dict(),
        vision_config=CLIPVisionConfig(
            image_size=image_size, patch_size=6, hidden_size=32, intermediate_size=37,
            num_hidden_layers=2, num_attention_heads=4,
        ).to_dict(),
        projection_dim=embed_dim,
    )
    torch.manual_seed(seed)
    CLIPModel(cfg).eval().save_pretrained(str(out))
    CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size},
        image_mean=_CLIP_MEAN, image_std=_CLIP_STD,
    ).save_pretrained(str(out))
    return out
