"""Caption metrics as VRU-Accident's official ``utils/evaluation.py`` computes them (0-1 scale).

* ROUGE-1/2/L precision/recall/F: ``rouge_score.RougeScorer(['rouge1','rouge2','rougeL'],
  use_stemmer=True).score(ref, hyp)`` per pair (``rougeL``, not ``rougeLsum``).
* METEOR: ``nltk.translate.meteor_score.meteor_score([ref_tokens], hyp_tokens)`` with NLTK's
  defaults (alpha 0.9, beta 3, gamma 0.5, Porter stems, WordNet 3.0 synonyms), on
  ``word_tokenize`` tokens minus those ``in string.punctuation`` (a substring test).
  See :func:`meteor_tokens` for how the tokenisation of the official run (NLTK 3.9.1) is pinned.
* SPICE: the SPICE 1.0 jar shipped in pycocoevalcap 1.2 (``-subset -silent``, one reference per
  sample), per-sample ``All.f``; needs Stanford CoreNLP 3.6.0 (see :func:`spice_scores`).
* COMET: ``unbabel-comet`` ``predict`` on ``{"src": "", "mt": hyp, "ref": ref}`` (empty source),
  ``batch_size=8``; the checkpoint comes from ``$VPBENCH_COMET_CKPT`` (see :func:`comet_scores`).

The official code macro-averages every metric over samples; :func:`corpus_caption_scores`
does the same for a list of pairs.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import string
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from vpbench.errors import DataError, MetricUnavailable

if TYPE_CHECKING:  # pragma: no cover
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
ROUGE_KEYS = tuple(f"{r}_{k}" for r in ROUGE_TYPES for k in ("p", "r", "f"))
CORENLP_ENV = "VPBENCH_CORENLP_DIR"
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
COMET_ENV = "VPBENCH_COMET_CKPT"


# --- ROUGE -----------------------------------------------------------------------------------
class _CachedRougeTokenizer:
    """rouge-score's ``DefaultTokenizer(use_stemmer=True)`` with memoised results (same tokens;
    each reference is tokenised once however many models are scored against it)."""

    def __init__(self) -> None:
        from rouge_score import tokenizers

        self._inner = tokenizers.DefaultTokenizer(use_stemmer=True)
        self.tokenize = functools.lru_cache(maxsize=65536)(self._tokenize)

    def _tokenize(self, text: str) -> list[str]:
        return self._inner.tokenize(text)


@functools.lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True, tokenizer=_CachedRougeTokenizer())


def rouge_scores(reference: str, hypothesis: str) -> dict[str, float]:
    """ROUGE-1/2/L of one pair: keys ``rouge1_p``, ``rouge1_r``, ``rouge1_f``, … ``rougeL_f``."""
    scores = _rouge_scorer().score(reference, hypothesis)
    out: dict[str, float] = {}
    for r in ROUGE_TYPES:
        s = scores[r]
        out[f"{r}_p"], out[f"{r}_r"], out[f"{r}_f"] = float(s.precision), float(s.recall), float(s.fmeasure)
    return out


# --- METEOR tokenisation ---------------------------------------------------------------------
# NLTK 3.9.1's NLTKWordTokenizer (the official run pins nltk==3.9.1). NLTK 3.10 added a rule that
# splits off Unicode dashes (U+2012-U+2015) and changed the opening-apostrophe rule; both move
# METEOR by up to 6e-4 on the official captions, so the 3.9.1 rules are reproduced here.
_STARTING_QUOTES = (
    (re.compile("([«“‘„]|[`]+)"), r" \1 "),
    (re.compile(r"^\""), r"``"),
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
    (re.compile(r"(?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b"), r"\1 \2"),
)
_PUNCTUATION = (
    (re.compile(r'([^\.])(\.)([\]\)}>"\'' "»”’ " r"]*)\s*$"), r"\1 \2 \3 "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.{2,}"), r" \g<0> "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r"[*]"), r" \g<0> "),
)
_PARENS_BRACKETS = (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> ")
_DOUBLE_DASHES = (re.compile(r"--"), r" -- ")
_ENDING_QUOTES = (
    (re.compile("([»”’])"), r" \1 "),
    (re.compile(r"''"), " '' "),
    (re.compile(r'"'), " '' "),
    (re.compile(r"\s+"), " "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
)
_CONTRACTIONS = tuple(
    re.compile(p)
    for p in (
        r"(?i)\b(can)(?#X)(not)\b", r"(?i)\b(d)(?#X)('ye)\b", r"(?i)\b(gim)(?#X)(me)\b",
        r"(?i)\b(gon)(?#X)(na)\b", r"(?i)\b(got)(?#X)(ta)\b", r"(?i)\b(lem)(?#X)(me)\b",
        r"(?i)\b(more)(?#X)('n)\b", r"(?i)\b(wan)(?#X)(na)(?=\s)",
        r"(?i) ('t)(?#X)(is)\b", r"(?i) ('t)(?#X)(was)\b",
    )
)


def treebank_words(sentence: str) -> list[str]:
    """NLTK 3.9.1 ``NLTKWordTokenizer().tokenize(sentence)`` (improved Treebank rules)."""
    text = sentence
    for rx, sub in _STARTING_QUOTES + _PUNCTUATION:
        text = rx.sub(sub, text)
    for rx, sub in (_PARENS_BRACKETS, _DOUBLE_DASHES):
        text = rx.sub(sub, text)
    text = " " + text + " "
    for rx, sub in _ENDING_QUOTES:
        text = rx.sub(sub, text)
    for rx in _CONTRACTIONS:
        text = rx.sub(r" \1 \2 ", text)
    return text.split()


@functools.lru_cache(maxsize=1)
def _sentence_splitter() -> Any:
    from nltk.tokenize.punkt import PunktLanguageVars, PunktSentenceTokenizer

    class _Nltk391Vars(PunktLanguageVars):
        """NLTK 3.9.1's Punkt punctuation classes (3.10 added curly quotes / guillemets)."""

        re_boundary_realignment = re.compile(r'["\')\]}]+?(?:\s+|(?=--)|$)', re.MULTILINE)

        @property
        def _re_non_word_chars(self) -> str:
            return r"(?:[)\";}\]\*:@\'\({\[%s])" % re.escape("".join(sorted(set(self.sent_end_chars) - {"."})))

    return PunktSentenceTokenizer(lang_vars=_Nltk391Vars())


def sentences(text: str) -> list[str]:
    """Sentence split with an untrained Punkt model (NLTK 3.9.1 punctuation rules)."""
    return list(_sentence_splitter().tokenize(text))


def meteor_tokens(text: str) -> list[str]:
    """Tokens the official METEOR sees: ``[w for w in word_tokenize(text) if w not in string.punctuation]``.

    ``in string.punctuation`` is a *substring* test on the punctuation string (as in the official
    code): "," and "." go, "..." and "''" stay.

    ``word_tokenize`` = Punkt sentence split + Treebank words per sentence. The official run used
    NLTK 3.9.1 with Punkt's trained English parameters (NLTK data, not downloadable here). We
    use an *untrained* Punkt model and the 3.9.1 rules; with these, vpbench reproduces the
    official METEOR of all 16 captioning models to the 3 printed decimals. The two Punkt
    models can only disagree after a period-final abbreviation / initial / number (e.g. "car A.
    Then"); such sites are rare in VRU-Accident captions (see tasks/vru_accident_caption/README.md).
    """
    return [w for s in sentences(text) for w in treebank_words(s) if w not in string.punctuation]


# --- METEOR --------------------------------------------------------------------------------
class _CachedWordNet:
    """The two WordNet calls METEOR makes (``synsets``), memoised; results are unchanged."""

    def __init__(self, reader: "WordNetCorpusReader") -> None:
        self.reader = reader
        self.synsets = functools.lru_cache(maxsize=262144)(reader.synsets)


@functools.lru_cache(maxsize=1)
def _porter() -> Any:
    """NLTK's ``PorterStemmer()`` (NLTK_EXTENSIONS mode, METEOR's default) with memoised ``stem``."""
    from nltk.stem.porter import PorterStemmer

    stemmer = PorterStemmer()
    stemmer.stem = functools.lru_cache(maxsize=262144)(stemmer.stem)  # type: ignore[method-assign]
    return stemmer


@functools.lru_cache(maxsize=4)
def _cached_wordnet(reader: "WordNetCorpusReader") -> _CachedWordNet:
    return _CachedWordNet(reader)


@functools.lru_cache(maxsize=65536)
def _meteor_tokens_cached(text: str) -> tuple[str, ...]:
    return tuple(meteor_tokens(text))


def meteor(reference: str, hypothesis: str, wordnet: "WordNetCorpusReader | None" = None) -> float:
    """NLTK ``meteor_score([ref_tokens], hyp_tokens)`` with NLTK defaults and offline WordNet 3.0.

    Raises:
        MetricUnavailable: WordNet is not installed (``apt-get install wordnet-base wordnet-sense-index``).
    """
    from nltk.translate.meteor_score import meteor_score

    if wordnet is None:
        from vpbench.metrics.wordnet import load_wordnet

        wordnet = load_wordnet()
    return float(meteor_score([list(_meteor_tokens_cached(reference))], list(_meteor_tokens_cached(hypothesis)),
                              stemmer=_porter(), wordnet=_cached_wordnet(wordnet)))


def caption_scores(reference: str, hypothesis: str, wordnet: "WordNetCorpusReader | None" = None) -> dict[str, float]:
    """Per-sample ROUGE (``ROUGE_KEYS``) and ``meteor`` of one pair."""
    out = rouge_scores(reference, hypothesis)
    out["meteor"] = meteor(reference, hypothesis, wordnet)
    return out


def corpus_caption_scores(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """Macro means over pairs of :func:`caption_scores` (the official averaging)."""
    if len(references) != len(hypotheses) or not references:
        raise ValueError(f"need equal, non-zero numbers of references and hypotheses "
                         f"(got {len(references)} and {len(hypotheses)})")
    from vpbench.metrics.wordnet import load_wordnet

    wn = load_wordnet()
    rows = [caption_scores(r, h, wn) for r, h in zip(references, hypotheses)]
    return {k: sum(row[k] for row in rows) / len(rows) for k in rows[0]}


# --- SPICE ---------------------------------------------------------------------------------
def corenlp_dir(explicit: Path | None = None) -> Path:
    """The folder holding the CoreNLP 3.6.0 jars; raises MetricUnavailable naming what is missing."""
    where = explicit if explicit is not None else (Path(os.environ[CORENLP_ENV]) if os.environ.get(CORENLP_ENV) else None)
    if where is None:
        raise MetricUnavailable(
            f"SPICE needs Stanford CoreNLP 3.6.0: set ${CORENLP_ENV} to a folder "
            f"holding {' and '.join(CORENLP_JARS)} (from stanford-corenlp-full-2015-12-09.zip)."
        )
    missing = [j for j in CORENLP_JARS if not (Path(where) / j).is_file()]
    if missing:
        raise MetricUnavailable(
            f"SPICE needs Stanford CoreNLP 3.6.0: {', '.join(missing)} not found in {where} "
            f"(${CORENLP_ENV}); copy them there from stanford-corenlp-full-2015-12-09.zip."
        )
    return Path(where)


def _spice_jar() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pycocoevalcap.spice")
    if spec is None or not spec.submodule_search_locations:
        raise MetricUnavailable("SPICE needs pycocoevalcap==1.2 (`pip install pycocoevalcap==1.2`).")
    return Path(list(spec.submodule_search_locations)[0]) / "spice-1.0.jar"


def spice_command(in_file: Path, out_file: Path, corenlp: Path) -> list[str]:
    """The java command: pycocoevalcap's ``-jar -Xmx8G spice-1.0.jar IN -out OUT -subset -silent``,
    with CoreNLP taken from ``corenlp`` (no writes into site-packages, no parse cache)."""
    jar = _spice_jar()
    cp = os.pathsep.join([str(jar), str(jar.parent / "lib" / "*")] + [str(corenlp / j) for j in CORENLP_JARS])
    return ["java", "-Xmx8G", "-cp", cp, "edu.anu.spice.SpiceScorer", str(in_file),
            "-out", str(out_file), "-subset", "-silent"]


def parse_spice_output(results: Sequence[dict[str, Any]], ids: Sequence[str]) -> list[float]:
    """Per-sample ``All.f`` in ``ids`` order (NaN where SPICE gives none, as pycocoevalcap)."""
    by_id = {str(item["image_id"]): item["scores"]["All"]["f"] for item in results}
    out = []
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise DataError(f"SPICE returned no score for {len(missing)} of {len(ids)} captions (first: #{missing[0]}); "
                        f"check the SPICE log above for a Java/CoreNLP failure")
    for i in ids:
        try:
            out.append(float(by_id[i]))
        except (TypeError, ValueError):
            out.append(float("nan"))
    return out


def spice_scores(references: Sequence[str], hypotheses: Sequence[str], corenlp: Path | None = None) -> list[float]:
    """Per-sample SPICE F (``All.f``). The official value is their mean.

    Raises:
        MetricUnavailable: CoreNLP 3.6.0 jars or java missing.
    """
    jars = corenlp_dir(corenlp)
    if shutil.which("java") is None:
        raise MetricUnavailable("SPICE needs Java (e.g. `apt-get install openjdk-17-jre-headless`).")
    ids = [str(i) for i in range(len(references))]
    data = [{"image_id": i, "test": h, "refs": [r]} for i, r, h in zip(ids, references, hypotheses)]
    with tempfile.TemporaryDirectory(prefix="vpbench-spice-") as tmp:
        in_file, out_file = Path(tmp) / "in.json", Path(tmp) / "out.json"
        in_file.write_text(json.dumps(data, indent=2))
        proc = subprocess.run(spice_command(in_file, out_file, jars), capture_output=True, text=True)
        if proc.returncode != 0:
            raise MetricUnavailable(f"SPICE failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
        results = json.loads(out_file.read_text())
    return parse_spice_output(results, ids)


# --- COMET ---------------------------------------------------------------------------------
def comet_checkpoint(explicit: Path | None = None) -> Path:
    """``checkpoints/model.ckpt`` from ``explicit`` or ``$VPBENCH_COMET_CKPT`` (a .ckpt or its model dir)."""
    raw = explicit if explicit is not None else (Path(os.environ[COMET_ENV]) if os.environ.get(COMET_ENV) else None)
    hint = ("COMET needs the Unbabel/wmt22-comet-da checkpoint: set "
            f"${COMET_ENV} to its folder or to its checkpoints/model.ckpt")
    if raw is None:
        raise MetricUnavailable(hint + ".")
    path = Path(raw)
    if path.is_dir():
        path = path / "checkpoints" / "model.ckpt"
    if not path.is_file():
        raise MetricUnavailable(f"{hint}; {path} does not exist.")
    return path


@functools.lru_cache(maxsize=2)
def _comet_model(ckpt: str) -> Any:
    from comet import load_from_checkpoint

    return load_from_checkpoint(ckpt, local_files_only=True)


def comet_scores(references: Sequence[str], hypotheses: Sequence[str], checkpoint: Path | None = None,
                 batch_size: int = 8, gpus: int | None = None) -> list[float]:
    """Per-sample COMET scores of ``{"src": "", "mt": hyp, "ref": ref}`` (official: mean of these).

    ``gpus`` defaults to 1 when CUDA is available, else 0 (as the official code).
    """
    model = _comet_model(str(comet_checkpoint(checkpoint)))
    if gpus is None:
        import torch

        gpus = 1 if torch.cuda.is_available() else 0
    data = [{"src": "", "mt": h, "ref": r} for r, h in zip(references, hypotheses)]
    out = model.predict(data, batch_size=batch_size, gpus=gpus, progress_bar=False)
    return [float(s) for s in out.scores]
