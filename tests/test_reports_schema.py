"""docs/results-schema.md matches the files a run writes: required fields present, nothing
undocumented (except in objects marked open), and the tidy frame's columns as documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vpbench import cli
from vpbench.reports.tidy import TIDY_COLUMNS
from vpbench.results import SCHEMA_VERSION

DOC = Path(__file__).resolve().parent.parent / "docs" / "results-schema.md"
TYPES = {"str": (str, type(None)), "int": (int, type(None)), "float": (float, int, type(None)),
         "bool": (bool,), "list": (list, type(None)), "object": (dict, type(None))}


def sections() -> dict[str, tuple[dict[str, tuple[str, bool]], bool]]:
    """'## title' → ({field: (type, required)}, open)."""
    out, title, body = {}, None, []
    for line in DOC.read_text().splitlines() + ["## end"]:
        if line.startswith("## "):
            if title is not None:
                rows = [re.split(r"(?<!\\)\|", r.strip().strip("|")) for r in body if r.startswith("| ") and "---" not in r]
                fields = {c[0].strip(): (c[1].strip(), c[2].strip() == "yes") for c in rows[1:]}
                out[title] = (fields, any("*open*" in b for b in body))
            title, body = line[3:].strip(), []
        else:
            body.append(line)
    return out


def check(obj: dict, title: str, docs) -> None:
    fields, is_open = docs[title]
    missing = [f for f, (_, req) in fields.items() if req and f not in obj]
    assert not missing, f"{title}: required fields {missing} absent"
    extra = [k for k in obj if k not in fields]
    assert is_open or not extra, f"{title}: fields {extra} are not documented in {DOC.name}"
    for k, v in obj.items():
        if k in fields:
            assert isinstance(v, TYPES[fields[k][0]]), f"{title}.{k}: {type(v).__name__} is not {fields[k][0]}"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schema")
    data = tmp / "data"
    assert cli.main(["synth", "videommmu", "--output", str(data / "videommmu")]) == 0
    out = tmp / "run"
    assert cli.main(["run", "--model", "dummy:first", "--tasks", "videommmu,videommmu_adaptation_qonly",
                     "--data-root", str(data), "--output", str(out), "--set", "stats.n_boot=50"]) == 0
    return out


def test_doc_version_is_the_code_version():
    assert f"**Schema version: {SCHEMA_VERSION}**" in DOC.read_text()


def test_run_files_match_the_documented_schema(run_dir):
    docs = sections()
    results = json.loads((run_dir / "results.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    check(results, "results.json", docs)
    assert results["manifest"] == manifest
    check(manifest, "manifest.json", docs)
    check(manifest["model"], "manifest.json model", docs)
    check(manifest["environment"], "environment", docs)
    for task, info in manifest["tasks"].items():
        check(info, "manifest.json tasks.TASK", docs)
        check(info["provenance"], "manifest.json tasks.TASK.provenance", docs)
        check(info["provenance"]["environment"], "environment", docs)
        result = json.loads((run_dir / task / "result.json").read_text())
        check(result, "<task>/result.json", docs)
        for m in result["metrics"] + [m for ms in result["by_group"].values() for m in ms]:
            check(m, "metric", docs)
        for line in (run_dir / task / "records.jsonl").read_text().splitlines():
            check(json.loads(line), "<task>/records.jsonl", docs)
    assert set(manifest["derived"]) == set(results["derived"]) == {"videommmu/Δknowledge"}
    for name, info in manifest["derived"].items():
        check(info, "manifest.json derived.NAME", docs)
        check(results["derived"][name], "metric", docs)


def test_reproduce_marker_and_tidy_columns_documented():
    docs = sections()
    assert list(docs["Tidy frame (`vpbench.reports.tidy.load_metrics`)"][0]) == list(TIDY_COLUMNS)
    from vpbench.reports.plan import Step

    marker = {"fingerprint": "f", "step": "s", "argv": ["vpbench"], "finished_utc": "t",
              **Step("s", "eval", ("vpbench",), Path("x"), "f", meta={"table": "t", "row": "r", "seed": 0,
                                                                         "ablation_id": "a"}).meta}
    check(marker, "reproduce.json", docs)
