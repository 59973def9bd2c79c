"""Offline NLTK WordNet 3.0 from Debian's ``wordnet-base`` + ``wordnet-sense-index`` packages.

METEOR as NLTK computes it (VRU-Accident's dense-caption metric) needs the WordNet corpus, which
``nltk.download('wordnet')`` fetches from a data hub we cannot reach. Debian ships the same
Princeton WordNet 3.0 database files in ``/usr/share/wordnet``; NLTK reads them from
``<NLTK_DATA>/corpora/wordnet/`` once a ``lexnames`` file sits beside them. Debian does not ship
``lexnames``; its 45 rows are the table of the lexnames(5WN) manual page, written here.

Public API: :func:`prepare_nltk_data` (build an NLTK_DATA folder), :func:`load_wordnet` (a
``WordNetCorpusReader`` on it, cached), :func:`wordnet_available`.
"""

from __future__ import annotations

import functools
import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from vpbench.errors import MetricUnavailable

if TYPE_CHECKING:  # pragma: no cover
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")
SOURCE_ENV = "VPBENCH_WORDNET_DIR"
"""Env var: folder holding the WordNet 3.0 database files (default: Debian's /usr/share/wordnet)."""
NLTK_DATA_ENV = "VPBENCH_NLTK_DATA"
"""Env var: the NLTK_DATA folder vpbench builds (default: ~/.cache/vpbench/nltk_data)."""
INSTALL_HINT = "apt-get install wordnet-base wordnet-sense-index"

#: Database files NLTK's WordNet reader opens (index.sense and cntlist.rev lazily).
REQUIRED_FILES: tuple[str, ...] = tuple(
    [f"data.{p}" for p in ("adj", "adv", "noun", "verb")]
    + [f"index.{p}" for p in ("adj", "adv", "noun", "verb")]
    + [f"{p}.exc" for p in ("adj", "adv", "noun", "verb")]
    + ["index.sense", "cntlist.rev"]
)

#: lexnames(5WN): lexicographer file names in file-number order 00..44.
LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)
_SYNTACTIC_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


def lexnames_text() -> str:
    """The ``lexnames`` file: ``NN<TAB>name<TAB>category`` per line (lexnames(5WN))."""
    return "".join(
        f"{i:02d}\t{name}\t{_SYNTACTIC_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES)
    )


def source_dir() -> Path:
    return Path(os.environ.get(SOURCE_ENV) or DEBIAN_WORDNET_DIR)


def default_nltk_data_dir() -> Path:
    env = os.environ.get(NLTK_DATA_ENV)
    return Path(env) if env else Path.home() / ".cache" / "vpbench" / "nltk_data"


def missing_files(source: Path) -> list[str]:
    return [name for name in REQUIRED_FILES if not (source / name).is_file()]


def prepare_nltk_data(target: Path | None = None, source: Path | None = None) -> Path:
    """Build ``<target>/corpora/wordnet`` (the ``source`` files + ``lexnames``); return ``target``.

    ``target`` can then be put on ``NLTK_DATA`` / ``nltk.data.path``. The files are copied once
    (~35 MB), not linked: NLTK >= 3.10 resolves symlinks and refuses files outside its data roots,
    and refuses hard-linked files. Idempotent; safe to call concurrently (atomic replaces).

    Raises:
        MetricUnavailable: the WordNet database files are absent (names them and the apt command).
    """
    source = Path(source) if source is not None else source_dir()
    target = Path(target) if target is not None else default_nltk_data_dir()
    missing = missing_files(source)
    if missing:
        raise MetricUnavailable(
            f"METEOR needs WordNet 3.0: {', '.join(missing)} not found in {source}. "
            f"Install it with `{INSTALL_HINT}` (Debian/Ubuntu), or point ${SOURCE_ENV} at a folder "
            "holding the WordNet 3.0 database files."
        )
    corpus = target / "corpora" / "wordnet"
    corpus.mkdir(parents=True, exist_ok=True)
    for name in REQUIRED_FILES:
        _install_file(source / name, corpus / name)
    lexnames = corpus / "lexnames"
    text = lexnames_text()
    if not lexnames.is_file() or lexnames.read_text() != text:
        tmp = corpus / f".lexnames.{os.getpid()}.tmp"
        tmp.write_text(text)
        os.replace(tmp, lexnames)
    return target


def _install_file(src: Path, dst: Path) -> None:
    st = src.stat()
    if dst.is_file() and not dst.is_symlink():
        dst_st = dst.stat()
        if dst_st.st_size == st.st_size and dst_st.st_mtime >= st.st_mtime:
            return
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    if tmp.exists() or tmp.is_symlink():
        tmp.unlink()
    shutil.copy2(src, tmp)
    os.replace(tmp, dst)


@functools.lru_cache(maxsize=4)
def _reader(corpus_dir: str) -> "WordNetCorpusReader":
    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    root = str(Path(corpus_dir).parent.parent)
    if root not in nltk.data.path:  # NLTK >= 3.10 reads corpora only under its data roots
        nltk.data.path.append(root)
    with warnings.catch_warnings():  # "multilingual functions are not available": no OMW, as intended
        warnings.simplefilter("ignore", UserWarning)
        return WordNetCorpusReader(corpus_dir, None)


def load_wordnet(target: Path | None = None, source: Path | None = None) -> "WordNetCorpusReader":
    """A WordNet 3.0 reader built offline (cached per folder pair); pass it to NLTK's ``meteor_score``.

    Raises:
        MetricUnavailable: as :func:`prepare_nltk_data`.
    """
    src = Path(source) if source is not None else source_dir()
    dst = Path(target) if target is not None else default_nltk_data_dir()
    return _load(str(dst), str(src))


@functools.lru_cache(maxsize=4)
def _load(target: str, source: str) -> "WordNetCorpusReader":
    root = prepare_nltk_data(Path(target), Path(source))
    return _reader(str((root / "corpora" / "wordnet").resolve()))


def wordnet_available(source: Path | None = None) -> bool:
    return not missing_files(Path(source) if source is not None else source_dir())
