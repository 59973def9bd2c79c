"""Rule-based validator for generated captions and temporal QA (paper §3.4, RECIPE §4).

Three families of rules, each rejection carrying a stable reason code and a message:

Grammatical form
  * ``empty``            — the text is empty / whitespace (caption, question).
  * ``not_capitalized``  — the first letter is lower-case (a sentence starts with a capital or a digit).
  * ``unterminated``     — a caption does not end with ``.``, ``!`` or ``?``.
  * ``no_verb``          — a sentence without a verb (see below); every caption sentence and the question
    must have one.
  * ``repeated_word``    — the same word twice in a row ("the the").
  * ``question_mark``    — a question does not end with ``?``.
  * ``empty_answer``     — the answer is empty.
  * ``bad_answer``       — the answer does not fit its type: ``choice`` → one of the option letters;
    ``number`` → a number (digits, optionally a decimal point); ``open`` → at least one word.
  * ``bad_options``      — a ``choice`` question with fewer than 2 options.

Temporal specificity
  * ``no_temporal_cue``  — no time, order, count or duration cue (``TEMPORAL_CUES``) in the caption, or in the
    question together with its answer (and the answer's option text for a choice question).

Grounding
  * ``off_screen``       — a reference to content that is not visible in the clip (``OFF_SCREEN``): off-screen,
    outside the frame, before/after the video, the narrator, audio, "we can't see"...

Verb detection is a lexicon rule (no tagger model): a token is a verb when it is an auxiliary / copula /
modal, an inflection of a verb in ``VERBS`` (base, -s/-es, -ed/-d, -ing, irregular past forms), or an
``-ed`` / ``-ing`` word of >= 5 letters that is not in ``NOT_VERBS``. Plural nouns ("lamps") never count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

ANSWER_TYPES = ("choice", "number", "open")

REASON_CODES = (
    "empty", "not_capitalized", "unterminated", "no_verb", "repeated_word", "question_mark", "empty_answer",
    "bad_answer", "bad_options", "no_temporal_cue", "off_screen",
)


@dataclass(frozen=True)
class Rejection:
    """Why a text failed: ``code`` (one of ``REASON_CODES``), ``field`` (caption/question/answer) and a message."""

    code: str
    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class ValidatorConfig:
    """Which rule families run (all by default)."""

    grammar: bool = True
    temporal: bool = True
    grounding: bool = True


AUX = frozenset("""am is are was were be been being do does did done has have had having can could will would
shall should may might must 's 're 've 'd isn't aren't wasn't weren't doesn't don't didn't hasn't haven't hadn't
can't cannot couldn't won't wouldn't shouldn't""".split())

_VERB_BASES = """flash blink light glow dim flicker move turn rotate spin slide shrink grow bounce jump hop run walk
fall drop rise lift raise lower pan tilt zoom appear disappear vanish enter leave exit stop start begin end finish
pause stay remain wave nod shake smile frown laugh cry speak talk open close raise touch grab hold throw catch kick hit
push pull swing roll travel reach go come head cross pass overtake collide crash brake swerve stand sit lie lean bend
stretch clap snap point look glance stare watch blow smoke drink eat chew swallow climb dive swim ride drive
change become increase decrease expand contract flip twist tap press release carry place put set lay pick show
perform happen occur repeat continue return cover reveal follow precede hold illuminate brighten darken switch
fade shift track approach retreat descend ascend move land fly float sink wipe rub scratch hug kiss pour cut draw
write read sing dance play fight punch step wink squint raise turn accelerate slow speed dart jerk twitch tremble
wobble sway hover emerge hide count do make take give get see seem end exhibit display remain settle end arrive
hit strike tip topple tumble trip slip skid veer yield merge park signal cross enter""".split()

_IRREGULAR = """ran fell rose went came began begun drew drawn drove driven flew flown forgot got gave given took
taken saw seen shook shaken sat stood lay lain threw thrown caught held hid hidden left made put set spun struck
swam swung rode ridden wrote written ate eaten drank drunk blew blown grew grown slid sank sunk stopped rolled
became broke broken brought built bought chose chosen fought found hung kept knew known led lit met paid sent shot
shut slept spoke spoken stuck swept taught told thought understood woke worn won""".split()

NOT_VERBS = frozenset("""thing something nothing anything everything morning evening during ceiling building
string king ring wing bed red shed sled hundred speed need seed feed""".split())


def _inflections(base: str) -> set[str]:
    forms = {base}
    if base.endswith(("s", "sh", "ch", "x", "z", "o")):
        forms.add(base + "es")
    elif base.endswith("y") and base[-2:-1] not in "aeiou":
        forms.add(base[:-1] + "ies")
    else:
        forms.add(base + "s")
    stem = base[:-1] if base.endswith("e") else base
    if base.endswith("y") and base[-2:-1] not in "aeiou":
        forms.add(base[:-1] + "ied")
    else:
        forms.add(stem + "ed")
    forms.add(stem + "ing")
    if len(base) >= 3 and base[-1] not in "aeiouwxy" and base[-2] in "aeiou" and base[-3] not in "aeiou":
        forms.update({base + base[-1] + "ed", base + base[-1] + "ing"})  # stop -> stopped, stopping
    return forms


VERBS = frozenset(f for b in _VERB_BASES for f in _inflections(b)) | frozenset(_IRREGULAR)

_NUM_WORDS = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|several|many|multiple|\d+)"
_UNIT = r"(?:seconds?|secs?|s|minutes?|mins?|frames?|ms|milliseconds?)"
TEMPORAL_CUES: dict[str, tuple[str, ...]] = {
    "time": (rf"\bat (?:about |around |roughly )?\d+(?:\.\d+)?\s*{_UNIT}\b", r"\b\d{1,2}:\d{2}\b",
             r"\btimestamps?\b", r"\bat what (?:time|second|moment|point)\b", r"\bwhen\b", r"\bwhat second\b",
             r"\bat the (?:start|end|beginning)\b", r"\bin the (?:end|beginning|middle)\b", r"\bmoment\b"),
    "order": (r"\bfirst(?:ly)?\b", r"\bsecond\b(?!s)", r"\bthird\b", r"\blast(?:ly)?\b", r"\bfinal(?:ly)?\b",
              r"\bthen\b", r"\bafter(?:wards?)?\b", r"\bbefore\b", r"\bnext\b", r"\blater\b", r"\bearlier\b",
              r"\bsubsequently\b", r"\bmeanwhile\b", r"\bwhile\b", r"\buntil\b", r"\binitially\b",
              r"\beventually\b", r"\bfollowed by\b", r"\bprecede[sd]?\b", r"\border\b", r"\bsequence\b",
              r"\bsimultaneously\b", r"\bat the same time\b", r"\b(?:begins?|starts?|stops?|ends?) (?:to|by)\b"),
    "count": (r"\bhow many times\b", rf"\b{_NUM_WORDS} times\b", r"\b(?:one|1|a single) time\b", r"\bonce\b",
              r"\btwice\b", r"\bthrice\b", r"\brepeatedly\b", r"\bagain\b", r"\bhow many\b", r"\bcount\b"),
    "duration": (rf"\bfor (?:about |around |roughly )?(?:a |an |{_NUM_WORDS}|\d+(?:\.\d+)?) ?{_UNIT}\b",
                 r"\bhow long\b", r"\bbriefly\b", r"\bmomentarily\b", r"\bfor a moment\b", r"\bduration\b",
                 r"\binstant(?:ly|aneously)?\b", r"\bquickly\b", r"\bsuddenly\b",
                 rf"\b(?:\d+(?:\.\d+)?|{_NUM_WORDS}) ?{_UNIT} (?:long|later|earlier)\b"),
}
_CUE_RE = {k: re.compile("|".join(v), re.IGNORECASE) for k, v in TEMPORAL_CUES.items()}

OFF_SCREEN: tuple[str, ...] = (
    r"\boff[- ]?screen\b", r"\boff[- ]?camera\b", r"\boutside (?:of )?the (?:frame|shot|view|picture|video|clip)\b",
    r"\bout of (?:the )?(?:frame|shot|view|sight)\b", r"\bbefore the (?:video|clip|recording|footage)\b",
    r"\bafter the (?:video|clip|recording|footage) (?:ends?|stops?)\b", r"\bnarrat(?:or|ion|ed|es)\b",
    r"\bvoice[- ]?over\b", r"\bwe (?:can ?not|can't|cannot|do not|don't) see\b",
    r"\b(?:can ?not|can't|cannot) be seen\b", r"\bnot (?:shown|visible)\b", r"\bunseen\b", r"\binvisible\b",
    r"\bbehind the camera\b", r"\bcamera ?(?:man|operator)\b",
    r"\bthe (?:viewer|audience) (?:hears?|heard)\b", r"\b(?:hear|hears|heard|hearing)\b", r"\baudio\b",
    r"\bsound(?:s)? of\b", r"\bsoundtrack\b",
)
_OFF_RE = re.compile("|".join(OFF_SCREEN), re.IGNORECASE)

_WORD = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|\d+(?:\.\d+)?")
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+")
_NUMBER = re.compile(r"^[-+]?\d+(?:\.\d+)?$")


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def is_verb(token: str) -> bool:
    t = token.lower()
    if t in AUX or t in VERBS:
        return True
    if t in NOT_VERBS or len(t) < 5:
        return False
    return t.endswith("ed") or t.endswith("ing")


def has_verb(text: str) -> bool:
    toks = _WORD.findall(text)
    return any(is_verb(t) for t in toks) or any("'" in t and t.split("'")[1] in ("s", "re") for t in toks)


def sentences(text: str) -> list[str]:
    return [s for s in _SENT_SPLIT.split(text.strip()) if s]


def temporal_cues(text: str) -> tuple[str, ...]:
    """Cue kinds (sorted subset of time/order/count/duration) present in ``text``."""
    return tuple(sorted(k for k, rx in _CUE_RE.items() if rx.search(text)))


def off_screen_refs(text: str) -> list[str]:
    return [m.group(0) for m in _OFF_RE.finditer(text)]


def _first_letter(text: str) -> str:
    m = re.search(r"[A-Za-z0-9]", text)
    return m.group(0) if m else ""


def _form(text: str, fld: str, question: bool) -> list[Rejection]:
    out: list[Rejection] = []
    if _first_letter(text).islower():
        out.append(Rejection("not_capitalized", fld, f"{fld} must start with a capital letter: {text[:60]!r}"))
    if question:
        if not text.rstrip().endswith("?"):
            out.append(Rejection("question_mark", fld, f"a question must end with '?': {text[-60:]!r}"))
        if not has_verb(text):
            out.append(Rejection("no_verb", fld, f"question has no verb: {text[:80]!r}"))
    else:
        if not re.search(r"[.!?][\"')\]]*$", text.rstrip()):
            out.append(Rejection("unterminated", fld, f"{fld} must end with '.', '!' or '?': {text[-60:]!r}"))
        for s in sentences(text):
            if not has_verb(s):
                out.append(Rejection("no_verb", fld, f"sentence without a verb: {s[:80]!r}"))
                break
    w = words(text)
    for a, b in zip(w, w[1:]):
        if a == b and not _NUMBER.match(a):
            out.append(Rejection("repeated_word", fld, f"repeated word {a!r} {b!r} in {fld}"))
            break
    return out


def _grounding(text: str, fld: str) -> list[Rejection]:
    refs = off_screen_refs(text)
    if refs:
        return [Rejection("off_screen", fld, f"{fld} refers to content that is not visible: {refs[0]!r}")]
    return []


def validate_caption(caption: str, cfg: ValidatorConfig = ValidatorConfig()) -> list[Rejection]:
    """All rejections of a caption (empty list = accepted)."""
    text = (caption or "").strip() if isinstance(caption, str) else ""
    if not text:
        return [Rejection("empty", "caption", "caption is empty")]
    out: list[Rejection] = []
    if cfg.grammar:
        out += _form(text, "caption", question=False)
    if cfg.temporal and not temporal_cues(text):
        out.append(Rejection("no_temporal_cue", "caption",
                             "caption has no time, order, count or duration cue (e.g. 'first', 'then', 'twice')"))
    if cfg.grounding:
        out += _grounding(text, "caption")
    return out


def validate_qa(
    question: str,
    answer: str,
    answer_type: str = "open",
    options: Sequence[str] = (),
    cfg: ValidatorConfig = ValidatorConfig(),
) -> list[Rejection]:
    """All rejections of a QA pair (empty list = accepted). ``options``: option texts, lettered A, B, ...

    ``answer_type`` must be one of ``ANSWER_TYPES`` (a programming error otherwise: ValueError).
    """
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"answer_type must be one of {ANSWER_TYPES}, got {answer_type!r}")
    q = question.strip() if isinstance(question, str) else ""
    a = answer.strip() if isinstance(answer, str) else ""
    if not q:
        return [Rejection("empty", "question", "question is empty")]
    out: list[Rejection] = []
    answer_text = a
    if cfg.grammar:
        out += _form(q, "question", question=True)
        if not a:
            out.append(Rejection("empty_answer", "answer", "answer is empty"))
        elif answer_type == "choice":
            letters = [chr(ord("A") + i) for i in range(len(options))]
            if len(options) < 2:
                out.append(Rejection("bad_options", "answer",
                                     f"a choice question needs >= 2 options, got {len(options)}"))
            elif a not in letters:
                out.append(Rejection("bad_answer", "answer", f"choice answer must be one of {letters}, got {a!r}"))
            else:
                answer_text = f"{a} {options[letters.index(a)]}"
        elif answer_type == "number" and not _NUMBER.match(a):
            out.append(Rejection("bad_answer", "answer", f"number answer must be a number, got {a!r}"))
        elif answer_type == "open" and not words(a):
            out.append(Rejection("bad_answer", "answer", f"open answer has no words: {a!r}"))
    elif answer_type == "choice" and a in [chr(ord("A") + i) for i in range(len(options))]:
        answer_text = options[ord(a) - ord("A")]
    if cfg.temporal and not temporal_cues(f"{q} {answer_text}"):
        out.append(Rejection("no_temporal_cue", "question",
                             "question/answer have no time, order, count or duration cue "
                             "(e.g. 'how many times', 'first', 'after', 'at 2 seconds')"))
    if cfg.grounding:
        out += _grounding(q, "question") or _grounding(a, "answer") or _grounding(" | ".join(options), "options")
    return out
