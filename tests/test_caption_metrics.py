"""Caption metrics (vpbench.metrics.captions) and the offline WordNet set-up (vpbench.metrics.wordnet)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vpbench.errors import MetricUnavailable
from vpbench.metrics import captions, wordnet
from vpbench.metrics.captions import (
    CORENLP_JARS,
    comet_checkpoint,
    corenlp_dir,
    corpus_caption_scores,
    meteor,
    meteor_tokens,
    parse_spice_output,
    rouge_scores,
    sentences,
    spice_command,
    treebank_words,
)

needs_wordnet = pytest.mark.skipif(
    not wordnet.wordnet_available(), reason=f"WordNet 3.0 not installed: {wordnet.INSTALL_HINT}")


# --- WordNet set-up ------------------------------------------------------------------------
def test_lexnames_table() -> None:
    rows = [line.split("\t") for line in wordnet.lexnames_text().splitlines()]
    assert len(rows) == 45
    assert rows[0] == ["00", "adj.all", "3"]
    assert rows[3] == ["03", "noun.Tops", "1"]
    assert rows[29] == ["29", "verb.body", "2"]
    assert rows[2] == ["02", "adv.all", "4"]
    assert rows[44] == ["44", "adj.ppl", "3"]
    assert [int(r[0]) for r in rows] == list(range(45))


def test_prepare_copies_files_and_writes_lexnames(tmp_path: Path) -> None:
    src = tmp_path / "wn"
    src.mkdir()
    for name in wordnet.REQUIRED_FILES:
        (src / name).write_text(f"content of {name}\n")
    target = wordnet.prepare_nltk_data(tmp_path / "nltk_data", src)
    corpus = target / "corpora" / "wordnet"
    for name in wordnet.REQUIRED_FILES:
        f = corpus / name
        assert f.read_text() == f"content of {name}\n"
        assert not f.is_symlink() and f.stat().st_nlink == 1  # NLTK >= 3.10 refuses links
    assert (corpus / "lexnames").read_text() == wordnet.lexnames_text()
    # idempotent
    assert wordnet.prepare_nltk_data(tmp_path / "nltk_data", src) == target


def test_missing_wordnet_names_the_apt_packages(tmp_path: Path) -> None:
    src = tmp_path / "empty"
    src.mkdir()
    (src / "data.noun").write_text("x")
    with pytest.raises(MetricUnavailable, match="apt-get install wordnet-base wordnet-sense-index") as e:
        wordnet.prepare_nltk_data(tmp_path / "nd", src)
    assert "index.sense" in str(e.value) and "data.noun," not in str(e.value)
    assert not wordnet.wordnet_available(src)


@needs_wordnet
def test_wordnet_reader_and_nltk_meteor_reference_value() -> None:
    wn = wordnet.load_wordnet()
    assert wn.get_version() == "3.0"
    assert wn.synsets("dog")[0].name() == "dog.n.01"
    # NLTK's own doctest value for meteor_score (nltk/translate/meteor_score.py): 0.6944
    hyp = "It is a guide to action which ensures that the military always obeys the commands of the party"
    ref = "It is a guide to action that ensures that the military will forever heed Party commands"
    assert round(meteor(ref, hyp, wn), 4) == 0.6944
    assert meteor("this is a cat", "non matching hypothesis", wn) == 0.0


# --- tokenisation (pinned to NLTK 3.9.1, the official run's version) -------------------------
def test_treebank_words_nltk391_doctest() -> None:
    s = "Good muffins cost $3.88 (roughly 3,36 euros)\nin New York.  Please buy me\ntwo of them.\nThanks."
    assert treebank_words(s) == ["Good", "muffins", "cost", "$", "3.88", "(", "roughly", "3,36", "euros", ")",
                                 "in", "New", "York.", "Please", "buy", "me", "two", "of", "them.", "Thanks", "."]


def test_treebank_words_keep_391_rules() -> None:
    # NLTK 3.10 splits em dashes and opening apostrophes; 3.9.1 (and we) do not
    assert treebank_words("pedestrians—two cars") == ["pedestrians—two", "cars"]
    assert treebank_words("the 'Give Way' sign") == ["the", "'Give", "Way", "'", "sign"]
    assert treebank_words("a van's door can't close, it's \"fine\" (really).") == [
        "a", "van", "'s", "door", "ca", "n't", "close", ",", "it", "'s", "``", "fine", "''", "(", "really", ")", "."]


def test_untrained_punkt_with_391_punctuation() -> None:
    # 3.10 would split after the curly quote; 3.9.1 keeps one sentence
    assert sentences('The sign reads "Give Way.” Both cars stop.') == ['The sign reads "Give Way.” Both cars stop.']
    assert sentences("It hit person A. There were cars. Then it left.") == [
        "It hit person A. There were cars.", "Then it left."]


def test_meteor_tokens_drop_punctuation_tokens_only() -> None:
    assert meteor_tokens("It hit person A. There were cars, at 30 km/h... Then it left!") == [
        "It", "hit", "person", "A.", "There", "were", "cars", "at", "30", "km/h", "...", "Then", "it", "left"]
    # the official filter is a substring test on string.punctuation: "..." and "''" stay
    assert meteor_tokens('He said "go" -- now.') == ["He", "said", "``", "go", "''", "--", "now"]
    assert meteor_tokens("") == []


# --- ROUGE ---------------------------------------------------------------------------------
def test_rouge_matches_hand_counts() -> None:
    s = rouge_scores("the cat sat on the mat", "the cat is on the mat")
    assert s["rouge1_p"] == s["rouge1_r"] == pytest.approx(5 / 6)
    assert s["rouge2_f"] == pytest.approx(3 / 5)
    assert s["rougeL_f"] == pytest.approx(5 / 6)
    # stemming: "running"/"runs" → "run"
    s = rouge_scores("dogs running fast", "dog runs")
    assert s["rouge1_p"] == pytest.approx(1.0) and s["rouge1_r"] == pytest.approx(2 / 3)
    assert set(s) == set(captions.ROUGE_KEYS)


def test_rouge_equals_reference_library() -> None:
    from rouge_score import rouge_scorer

    ref, hyp = "A white van turns left at a wet intersection.", "The van turned left in the rain at an intersection."
    want = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True).score(ref, hyp)
    got = rouge_scores(ref, hyp)
    for r in ("rouge1", "rouge2", "rougeL"):
        assert (got[f"{r}_p"], got[f"{r}_r"], got[f"{r}_f"]) == tuple(want[r])


@needs_wordnet
def test_corpus_scores_are_macro_means() -> None:
    refs = ["a red car hits a man", "the bus stops at night", "a cyclist falls"]
    hyps = ["a red car strikes a man", "a bus halts", ""]
    per = [captions.caption_scores(r, h) for r, h in zip(refs, hyps)]
    out = corpus_caption_scores(refs, hyps)
    assert out["meteor"] == pytest.approx(sum(p["meteor"] for p in per) / 3)
    assert out["rougeL_f"] == pytest.approx(sum(p["rougeL_f"] for p in per) / 3)
    assert per[2]["meteor"] == 0.0 and per[2]["rouge1_f"] == 0.0
    with pytest.raises(ValueError):
        corpus_caption_scores(refs, hyps[:2])


# --- SPICE ---------------------------------------------------------------------------------
def test_spice_without_corenlp_names_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(captions.CORENLP_ENV, raising=False)
    with pytest.raises(MetricUnavailable, match="VPBENCH_CORENLP_DIR"):
        corenlp_dir()
    (tmp_path / CORENLP_JARS[0]).write_bytes(b"")
    monkeypatch.setenv(captions.CORENLP_ENV, str(tmp_path))
    with pytest.raises(MetricUnavailable, match=CORENLP_JARS[1]):
        captions.spice_scores(["a"], ["b"])
    (tmp_path / CORENLP_JARS[1]).write_bytes(b"")
    assert corenlp_dir() == tmp_path


def test_spice_command_and_output_parsing(tmp_path: Path) -> None:
    cmd = spice_command(tmp_path / "in.json", tmp_path / "out.json", tmp_path)
    assert cmd[:2] == ["java", "-Xmx8G"] and cmd[-3:] == ["-out", str(tmp_path / "out.json"), "-subset", "-silent"][-3:]
    cp = cmd[cmd.index("-cp") + 1].split(os.pathsep)
    assert cp[0].endswith("spice-1.0.jar") and all(str(tmp_path / j) in cp for j in CORENLP_JARS)
    results = [{"image_id": "1", "scores": {"All": {"f": 0.5}}}, {"image_id": "0", "scores": {"All": {"f": None}}}]
    vals = parse_spice_output(results, ["0", "1"])
    assert vals[1] == 0.5 and vals[0] != vals[0]  # NaN for a missing score, as pycocoevalcap


# --- COMET ---------------------------------------------------------------------------------
def test_comet_without_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(captions.COMET_ENV, raising=False)
    with pytest.raises(MetricUnavailable, match="VPBENCH_COMET_CKPT"):
        comet_checkpoint()
    with pytest.raises(MetricUnavailable, match="does not exist"):
        comet_checkpoint(tmp_path)
    ck = tmp_path / "checkpoints" / "model.ckpt"
    ck.parent.mkdir()
    ck.write_bytes(b"")
    monkeypatch.setenv(captions.COMET_ENV, str(tmp_path))
    assert comet_checkpoint() == ck


def build_tiny_comet(out: Path) -> Path:
    """A random-weight COMET RegressionMetric on a 2-layer XLM-R (deps.md §3.4), in COMET layout."""
    import pytorch_lightning as pl
    import yaml
    from comet.models import RegressionMetric
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    corpus = ["a red car hits a pedestrian at night", "the bus stops", "a cyclist falls on a wet road"] * 20
    tk = Tokenizer(models.Unigram())
    tk.normalizer = normalizers.NFKC()
    tk.pre_tokenizer = pre_tokenizers.Metaspace()
    tk.decoder = decoders.Metaspace()
    tk.train_from_iterator(corpus, trainers.UnigramTrainer(
        vocab_size=120, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], unk_token="<unk>"))
    tk.post_processor = TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                           special_tokens=[("<s>", 0), ("</s>", 2)])
    tok = XLMRobertaTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                  cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    enc = out / "xlmr"
    XLMRobertaModel(XLMRobertaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=130, pad_token_id=1),
                    add_pooling_layer=False).save_pretrained(enc)
    tok.save_pretrained(enc)
    m = RegressionMetric(pretrained_model=str(enc), load_pretrained_weights=True, local_files_only=True,
                         hidden_sizes=[64])
    ck = out / "comet"
    tr = pl.Trainer(accelerator="cpu", logger=False, max_epochs=0, enable_progress_bar=False)
    tr.strategy.connect(m)
    tr.save_checkpoint(str(ck / "checkpoints" / "model.ckpt"))
    (ck / "hparams.yaml").write_text(yaml.safe_dump(dict(m.hparams)))
    return ck


@pytest.mark.comet
def test_comet_scores_equal_library_predict(tmp_path: Path) -> None:
    from comet import load_from_checkpoint

    ck = build_tiny_comet(tmp_path)
    refs = ["a red car hits a pedestrian", "the bus stops at night", "a cyclist falls"]
    hyps = ["a car hits a man", "a bus halts", ""]
    got = captions.comet_scores(refs, hyps, checkpoint=ck, gpus=0)
    model = load_from_checkpoint(str(ck / "checkpoints" / "model.ckpt"), local_files_only=True)
    want = model.predict([{"src": "", "mt": h, "ref": r} for r, h in zip(refs, hyps)], batch_size=8, gpus=0).scores
    assert got == pytest.approx(list(want), abs=1e-6)
    assert len(set(round(g, 6) for g in got)) > 1  # not a constant
