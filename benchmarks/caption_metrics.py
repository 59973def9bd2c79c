"""VRU caption metrics on 1,000 generated captions, from process start: vpbench's
``corpus_caption_scores`` (ROUGE-1/2/L P/R/F + METEOR, the official VRU-Accident recipe) against the
direct way a user would write it (rouge-score's ``RougeScorer`` + NLTK's ``meteor_score`` per pair,
macro mean). Both sides read the same offline WordNet 3.0 and produce the same 10 numbers (checked).

    .venv/bin/python benchmarks/caption_metrics.py [--repeats 5] [--n 1000]

The last line is the wall-time ratio vpbench / direct (medians of interleaved runs).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, interleave, machine, median, run_timed  # noqa: E402

WORDS = ("the a car truck cyclist pedestrian crosses turns left right suddenly brakes intersection road "
         "lane vehicle collides with stops at red light slowly quickly driver man woman bus moving "
         "parked near side street accident happens when while approaching from behind").split()

VPBENCH = """
import json, sys
from vpbench.metrics.captions import corpus_caption_scores
d = json.load(open(sys.argv[1]))
out = corpus_caption_scores(d["refs"], d["hyps"])
json.dump(out, open(sys.argv[2], "w"))
"""

# What a user would write: the libraries the official code calls, per pair, macro mean. Tokens for
# METEOR: NLTK's word_tokenize needs the punkt model from a hub; its Treebank word tokenizer is the
# part that applies to one sentence, minus punctuation tokens (as the official code drops them).
DIRECT = """
import json, string, sys
from nltk.tokenize import TreebankWordTokenizer
from nltk.translate.meteor_score import meteor_score
from rouge_score import rouge_scorer
from vpbench.metrics.wordnet import load_wordnet
d = json.load(open(sys.argv[1]))
wn = load_wordnet()
tok = TreebankWordTokenizer()
sc = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
rows = []
for ref, hyp in zip(d["refs"], d["hyps"]):
    r = sc.score(ref, hyp)
    row = {f"{k}_{a}": getattr(r[k], n) for k in r for a, n in (("p", "precision"), ("r", "recall"), ("f", "fmeasure"))}
    rt = [t for t in tok.tokenize(ref) if t not in string.punctuation]
    ht = [t for t in tok.tokenize(hyp) if t not in string.punctuation]
    row["meteor"] = meteor_score([rt], ht, wordnet=wn)
    rows.append(row)
json.dump({k: sum(x[k] for x in rows) / len(rows) for k in rows[0]}, open(sys.argv[2], "w"))
"""


def captions(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    refs, hyps = [], []
    for _ in range(n):
        ref = [rng.choice(WORDS) for _ in range(rng.randint(12, 40))]
        hyp = [w if rng.random() < 0.6 else rng.choice(WORDS) for w in ref[: rng.randint(8, len(ref))]]
        refs.append(" ".join(ref).capitalize() + ".")
        hyps.append(" ".join(hyp).capitalize() + ".")
    return refs, hyps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    env = {"PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="vpb_captions_") as tmp:
        data = Path(tmp) / "caps.json"
        refs, hyps = captions(args.n)
        data.write_text(json.dumps({"refs": refs, "hyps": hyps}))
        outs = {"vpbench": Path(tmp) / "v.json", "direct": Path(tmp) / "d.json"}
        sides = {
            "vpbench": lambda: run_timed([sys.executable, "-c", VPBENCH, str(data), str(outs["vpbench"])], env=env, cwd=ROOT),
            "direct": lambda: run_timed([sys.executable, "-c", DIRECT, str(data), str(outs["direct"])], env=env, cwd=ROOT),
        }
        res = interleave(sides, args.repeats)
        v, d = (json.loads(outs[k].read_text()) for k in ("vpbench", "direct"))
    diff = max(abs(v[k] - d[k]) for k in v)
    print(f"machine: {machine()}; {args.n} caption pairs, repeats {args.repeats}, interleaved, from process start")
    print(f"same scores on both sides: max |diff| over {len(v)} metrics = {diff:.2e}")
    print(f"{'side':<10}{'wall s':>9}{'cpu s':>9}")
    for k, ts in res.items():
        print(f"{k:<10}{median([t.wall_s for t in ts]):>9.2f}{median([t.cpu_s for t in ts]):>9.2f}")
    cpu = median([t.cpu_s for t in res["vpbench"]]) / median([t.cpu_s for t in res["direct"]])
    print(f"cpu ratio vpbench / direct: {cpu:.2f}")
    wall = median([t.wall_s for t in res["vpbench"]]) / median([t.wall_s for t in res["direct"]])
    print(f"ratio vpbench / direct (wall): {wall:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
