"""`vpbench compare | regress | baseline freeze` end to end on generated MotionBench data with
replay runs: each verdict with its exit code (PASS 0, REGRESSION 10, INCONCLUSIVE 11, INVALID 12)."""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from vpbench import cli
from vpbench.models.replay import write_replay
from vpbench.registry import get_task

POLICY = """\
min_n: 10
n_boot: 500
tasks:
  motionbench:
    metrics:
      acc: {margin: 5.0}
"""


def _wrong(sample) -> str:
    return next(o.split(".")[0] for o in sample.options if o.split(".")[0] != sample.answer)


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    """Generated MotionBench data and replay runs: good (all right), bad (all wrong), one_flip (the
    first dev question wrong), fps2 (good under another protocol), unparsed (six answers unreadable
    where the baseline `wrongish` was wrong but parsed), plus the policy file."""
    from vpbench.synth.motionbench import synth_motionbench

    root = tmp_path_factory.mktemp("gate")
    data = root / "mb"
    synth_motionbench(data, seed=0)
    samples = get_task("motionbench").load_samples(data)
    dev = [s for s in samples if s.answer is not None]
    by_video: dict[str, str] = {}
    for s in dev:
        by_video.setdefault(s.cluster, s.id)
    six = set(list(by_video.values())[:6])  # six questions, each from a different video
    answers = {
        "good": {s.id: s.answer or "A" for s in samples},
        "bad": {s.id: _wrong(s) if s.answer else "A" for s in samples},
        "one_flip": {s.id: _wrong(s) if s.id == dev[0].id else (s.answer or "A") for s in samples},
        "wrongish": {s.id: _wrong(s) if s.id in six else (s.answer or "A") for s in samples},
        "unparsed": {s.id: "" if s.id in six else (s.answer or "A") for s in samples},
    }
    runs = {}
    for name, resp in answers.items():
        write_replay(root / f"{name}.jsonl", "motionbench", resp.items())
        runs[name] = _run(root, name, data)
    runs["fps2"] = _run(root, "good", data, out="fps2", extra=["--set", "protocol.fps=2"])
    runs["limit5"] = _run(root, "good", data, out="limit5", extra=["--limit", "5"])
    (root / "policy.yaml").write_text(POLICY)
    return {"root": root, "data": data, "runs": runs, "policy": root / "policy.yaml", "dev": dev, "six": six}


def _run(root: Path, replay: str, data: Path, out: str | None = None, extra=()) -> Path:
    target = root / "runs" / (out or replay)
    code = cli.main(["run", "--model", f"replay:{root / replay}.jsonl", "--tasks", "motionbench",
                     "--data-root", str(data), "--output", str(target), "--set", "stats.n_boot=50", *extra])
    assert code == 0
    return target


def regress(g, candidate, *extra, baseline=None, policy=None):
    out = g["root"] / "out.json"
    code = cli.main(["regress", "--baseline", str(baseline or g["runs"]["good"]), "--candidate",
                     str(g["runs"][candidate] if isinstance(candidate, str) else candidate),
                     "--policy", str(policy or g["policy"]), "--json", str(out), *extra])
    return code, json.loads(out.read_text())


def test_identical_candidate_passes(gate, capsys):
    code, rep = regress(gate, "good")
    assert code == 0 and rep["verdict"] == "PASS" and rep["exit_code"] == 0
    acc = rep["tasks"]["motionbench"]["metrics"][0]
    assert acc["metric"] == "acc" and acc["comparison"]["delta"] == 0.0 and acc["comparison"]["n"] == len(gate["dev"])
    assert "regress: PASS (exit 0)" in capsys.readouterr().out


def test_degraded_candidate_is_a_regression_with_summary(gate, tmp_path, monkeypatch, capsys):
    step = tmp_path / "step_summary.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    md = tmp_path / "summary.md"
    code, rep = regress(gate, "bad", "--summary-md", str(md))
    assert code == 10 and rep["verdict"] == "REGRESSION"
    c = rep["tasks"]["motionbench"]["metrics"][0]["comparison"]
    n = len(gate["dev"])
    assert (c["baseline"], c["candidate"], c["delta"], c["ci_high"]) == (1.0, 0.0, -1.0, -1.0)
    assert (c["mcnemar"]["b"], c["mcnemar"]["c"]) == (n, 0)
    assert c["mcnemar"]["p"] == pytest.approx(2 * 0.5 ** n)
    text = md.read_text()
    assert text.startswith("## vpbench regress: **REGRESSION**") and "| acc | REGRESSION | 5 |" in text
    assert step.read_text() == "earlier step\n" + text  # appended, not overwritten
    assert "loses more than the margin" in capsys.readouterr().out


def test_tiny_sample_is_inconclusive_and_names_the_n_needed(gate):
    code, rep = regress(gate, "one_flip")
    assert code == 11 and rep["verdict"] == "INCONCLUSIVE"
    v = rep["tasks"]["motionbench"]["metrics"][0]
    c = v["comparison"]
    n = len(gate["dev"])
    assert c["delta"] == pytest.approx(-1 / n) and c["ci_low"] < -0.05 < c["ci_high"]
    # Δ below −margin: n' = n · ((hi − Δ) / (−m − Δ))²
    assert v["n_needed"] == math.ceil(n * ((c["ci_high"] - c["delta"]) / (-0.05 - c["delta"])) ** 2 - 1e-9)
    assert v["n_needed"] > n and f"n={v['n_needed']}" in v["reason"]
    # a policy floor above the sample size also holds the verdict at INCONCLUSIVE, even for Δ = 0
    strict = gate["root"] / "strict.yaml"
    strict.write_text(POLICY.replace("min_n: 10", "min_n: 200"))
    code, rep = regress(gate, "good", policy=strict)
    assert code == 11 and rep["tasks"]["motionbench"]["metrics"][0]["n_needed"] == 200


def test_protocol_mismatch_is_invalid_unless_allowed(gate, capsys):
    code, rep = regress(gate, "fps2")
    assert code == 12 and rep["verdict"] == "INVALID"
    assert "protocol differs" in rep["tasks"]["motionbench"]["reasons"][0]
    assert rep["tasks"]["motionbench"]["metrics"] == []
    code, rep = regress(gate, "fps2", "--allow-differ", "protocol")
    assert code == 0 and "protocol" in rep["tasks"]["motionbench"]["differences"]
    capsys.readouterr()
    assert cli.main(["compare", str(gate["runs"]["good"]), str(gate["runs"]["fps2"])]) == 12
    assert "REFUSED: protocol differs" in capsys.readouterr().out


def test_partial_candidate_is_invalid_by_sample_set_then_by_coverage(gate):
    code, rep = regress(gate, "limit5")
    assert code == 12 and "sample set differs" in rep["tasks"]["motionbench"]["reasons"][0]
    code, rep = regress(gate, "limit5", "--allow-differ", "sample_set")
    assert code == 12 and "below the policy's min_coverage" in rep["tasks"]["motionbench"]["reasons"][0]
    loose = gate["root"] / "loose.yaml"
    loose.write_text(POLICY + "min_coverage: 0.2\nallow_differ: [sample_set]\n")
    code, rep = regress(gate, "limit5", policy=loose)
    n5 = rep["tasks"]["motionbench"]["n"]
    assert n5 == sum(1 for s in gate["dev"][:5] if s.answer) or n5 <= 5
    assert code == 11  # n below min_n: INCONCLUSIVE, not PASS


def test_failure_rate_rise_is_a_regression_even_when_accuracy_holds(gate):
    code, rep = regress(gate, "unparsed", baseline=gate["runs"]["wrongish"])
    metrics = {m["metric"]: m for m in rep["tasks"]["motionbench"]["metrics"]}
    assert metrics["acc"]["verdict"] == "PASS" and metrics["acc"]["comparison"]["delta"] == 0.0
    fr = metrics["failure_rate"]["comparison"]
    assert fr["delta"] == pytest.approx(6 / len(gate["dev"])) and fr["ci_low"] > 0
    assert metrics["failure_rate"]["verdict"] == "REGRESSION" and code == 10
    off = gate["root"] / "nofail.yaml"
    off.write_text(POLICY + "failure_rate: {counts: false}\n")
    assert regress(gate, "unparsed", baseline=gate["runs"]["wrongish"], policy=off)[0] == 0


def test_compare_reports_flips_with_both_responses_as_table_and_json(gate, capsys):
    out = gate["root"] / "cmp.json"
    assert cli.main(["compare", str(gate["runs"]["good"]), str(gate["runs"]["one_flip"]), "--json", str(out),
                     "--n-boot", "300"]) == 0
    text = capsys.readouterr().out
    first = gate["dev"][0]
    assert "1 sample(s) flipped on acc" in text and first.id in text
    task = json.loads(out.read_text())["tasks"]["motionbench"]
    rows = {m["metric"]: m for m in task["metrics"]}
    assert set(rows) >= {"acc", "answered", "failure_rate", f"acc[question_type={first.groups['question_type']}]"}
    [flip] = rows["acc"]["flips"]
    assert flip["sample_id"] == first.id
    assert (flip["baseline_response"], flip["candidate_response"]) == (first.answer, _wrong(first))
    assert (rows["acc"]["mcnemar"]["b"], rows["acc"]["mcnemar"]["c"], rows["acc"]["mcnemar"]["p"]) == (1, 0, 1.0)
    assert rows["acc"]["mde"] is not None and rows["acc"]["ci_level"] == 0.95


def _without_baseline_responses(obj):
    if isinstance(obj, dict):
        return {k: (None if k == "baseline_response" else _without_baseline_responses(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_without_baseline_responses(v) for v in obj]
    return obj


def test_frozen_baseline_replaces_the_run_dir(gate, capsys):
    slim, full = gate["root"] / "base.json.gz", gate["root"] / "base_full.json"
    assert cli.main(["baseline", "freeze", str(gate["runs"]["good"]), "--output", str(slim)]) == 0
    assert cli.main(["baseline", "freeze", str(gate["runs"]["good"]), "--output", str(full), "--with-responses"]) == 0
    doc = json.loads(gzip.decompress(slim.read_bytes()))
    t = doc["tasks"]["motionbench"]
    assert "response" not in t["columns"] and len(t["rows"]) == len(get_task("motionbench").load_samples(gate["data"]))
    assert "response" in json.loads(full.read_text())["tasks"]["motionbench"]["columns"]
    manifest = json.loads((gate["runs"]["good"] / "manifest.json").read_text())["tasks"]["motionbench"]
    assert (t["protocol_fingerprint"], t["sample_set_hash"]) == (manifest["protocol_fingerprint"],
                                                                 manifest["sample_set_hash"])
    for cand in ("good", "bad", "one_flip", "fps2"):
        from_dir = regress(gate, cand)
        from_file = regress(gate, cand, baseline=slim)
        assert from_dir[0] == from_file[0]
        assert _without_baseline_responses(from_dir[1]["tasks"]) == from_file[1]["tasks"]
    capsys.readouterr()
    assert cli.main(["compare", str(slim), str(gate["runs"]["one_flip"])]) == 0
    assert "(not kept)" in capsys.readouterr().out  # the slim baseline keeps no responses


def test_perception_gap_is_gateable(gate, tmp_path):
    """Runs with a key-absent pass (written here in the run's own format): a candidate whose gap
    shrinks by more than the margin regresses, one that keeps it passes."""
    import shutil

    def with_gap(name: str, absent_wrong: int) -> Path:
        run = tmp_path / name
        shutil.copytree(gate["runs"]["good"], run)
        lines = (run / "motionbench" / "records.jsonl").read_text().splitlines()
        out, k = [], 0
        for line in lines:
            r = json.loads(line)
            if r["answer"] is not None and k < absent_wrong:
                r["scores"] = {**r["scores"], "acc": 0.0}
                k += 1
            r["variant"] = "key_absent"
            out.append(json.dumps(r))
        (run / "motionbench" / "records.key_absent.jsonl").write_text("\n".join(out) + "\n")
        m = json.loads((run / "manifest.json").read_text())
        m["tasks"]["motionbench"]["perception_gap"] = {"scorer": "motion_energy"}
        (run / "manifest.json").write_text(json.dumps(m))
        return run

    n = len(gate["dev"])
    base, keeps, loses = with_gap("b", n), with_gap("c1", n), with_gap("c2", 0)
    pol = tmp_path / "gap.yaml"
    pol.write_text(POLICY.replace("acc: {margin: 5.0}", "perception_gap: {margin: 2.0}"))
    code, rep = regress(gate, keeps, baseline=base, policy=pol)
    assert code == 0
    code, rep = regress(gate, loses, baseline=base, policy=pol)
    gap = rep["tasks"]["motionbench"]["metrics"][0]
    assert code == 10 and gap["metric"] == "perception_gap"
    assert (gap["comparison"]["baseline"], gap["comparison"]["candidate"]) == (1.0, 0.0)
    code, rep = regress(gate, "good", baseline=base, policy=pol)  # candidate without the gap pass
    assert code == 12 and "candidate ran without --perception-gap" in rep["tasks"]["motionbench"]["reasons"][0]


@pytest.mark.parametrize("body,needle", [
    (POLICY.replace("min_n", "min_m"), "unknown key 'min_m'"),
    (POLICY.replace("margin: 5.0", "margn: 5.0"), "did you mean 'margin'"),
    (POLICY.replace("acc:", "accuracy:"), "has no score 'accuracy'"),
    (POLICY.replace("motionbench:", "motionbnech:"), "did you mean 'motionbench'"),
    (POLICY + "ci_level: 1.5\n", "ci_level must be in"),
    (POLICY + "allow_differ: [protocl]\n", "did you mean 'protocol'"),
    (POLICY.replace("acc: {margin: 5.0}", "acc: 5.0"), "acc: {margin: 5.0}"),
])
def test_bad_policy_is_a_usage_error_naming_the_fix(gate, tmp_path, capsys, body, needle):
    pol = tmp_path / "p.yaml"
    pol.write_text(body)
    code = cli.main(["regress", "--baseline", str(gate["runs"]["good"]), "--candidate",
                     str(gate["runs"]["good"]), "--policy", str(pol)])
    assert code == 2 and needle in capsys.readouterr().err


def test_ci_policy_file_loads_and_exit_code_through_a_subprocess(gate):
    from vpbench.gate.policy import load_policy

    root = Path(__file__).resolve().parent.parent
    p = load_policy(root / "reports" / "policies" / "ci.yaml")
    assert p.tasks["motionbench"]["acc"].margin == 1.0 and p.min_n == 200 and p.failure_rate.counts
    proc = subprocess.run([sys.executable, "-m", "vpbench", "regress", "--baseline", str(gate["runs"]["good"]),
                           "--candidate", str(gate["runs"]["bad"]), "--policy", str(gate["policy"])],
                          capture_output=True, text=True, cwd=root)
    assert proc.returncode == 10, proc.stderr


def test_docs_workflow_is_valid_yaml_and_its_commands_parse():
    """The worked GitHub Actions job in docs/ci-gate.md: valid YAML, and every vpbench command in it
    (and in the baseline recipe below it) is accepted by the real argument parser."""
    import re
    import shlex

    import yaml

    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "ci-gate.md").read_text()
    blocks = re.findall(r"```(yaml|bash)\n(.*?)```", doc, re.S)
    [workflow] = [b for kind, b in blocks if kind == "yaml" and "checkpoint-gate.yml" in b]
    jobs = yaml.safe_load(workflow)["jobs"]
    scripts = [s["run"] for s in jobs["gate"]["steps"] if "run" in s]
    scripts += [b for kind, b in blocks if kind == "bash"]
    parser = cli.build_parser()
    seen = set()
    for script in scripts:
        text = re.sub(r"\$\{\{[^}]*\}\}", "X", script.replace("\\\n", " "))
        text = text.replace("[", "").replace("]", "")  # optional parts in the synopsis block
        for line in text.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0].endswith("vpbench"):
                ns = parser.parse_args(words[1:])
                seen.add(ns.command)
    assert {"run", "regress", "compare", "baseline"} <= seen


def test_transformers_major_version_difference_is_invalid_unless_allowed(gate, tmp_path):
    import shutil

    def on_stack(version: str) -> Path:
        run = tmp_path / f"tf{version}"
        shutil.copytree(gate["runs"]["good"], run)
        m = json.loads((run / "manifest.json").read_text())
        m["environment"]["packages"]["transformers"] = version
        (run / "manifest.json").write_text(json.dumps(m))
        return run

    ours = json.loads((gate["runs"]["good"] / "manifest.json").read_text())["environment"]["packages"]["transformers"]
    major = int(ours.split(".")[0])
    next_major = on_stack(f"{major + 1}.0.0")
    code, rep = regress(gate, next_major)
    assert code == 12 and "transformers major version differs" in rep["tasks"]["motionbench"]["reasons"][0]
    assert regress(gate, next_major, "--allow-differ", "stack")[0] == 0
    assert regress(gate, on_stack(f"{major}.999.0"))[0] == 0  # a minor version passes
    frozen = tmp_path / "b.json"
    assert cli.main(["baseline", "freeze", str(on_stack(f"{major + 1}.1.0")), "--output", str(frozen)]) == 0
    assert json.loads(frozen.read_text())["source"]["stack"]["transformers"] == f"{major + 1}.1.0"
    assert regress(gate, "good", baseline=frozen)[0] == 12
