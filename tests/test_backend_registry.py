"""The backend registry: lazy, strict, "did you mean"; options checked before any model loads."""

from __future__ import annotations

import sys

import pytest

from vpbench.errors import ConfigError
from vpbench.models import loader
from vpbench.models.loader import BackendOptions, load_backend


def test_unknown_kind_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"unknown backend 'opneai' \(did you mean 'openai'\?\)"):
        load_backend("opneai:http://x", BackendOptions())
    with pytest.raises(ConfigError, match=r"unknown backend 'vlm' \(did you mean 'vllm'\?\)"):
        load_backend("vlm:/ckpt", BackendOptions())


def test_missing_dir_lists_the_kinds(tmp_path):
    with pytest.raises(ConfigError, match="not a local checkpoint directory.*dummy:.*openai:.*vllm:"):
        load_backend(str(tmp_path / "nope"), BackendOptions())


def test_builtin_kinds_resolve_and_stay_lazy(tmp_path):
    sys.modules.pop("vpbench.models.hf_qwen_vl", None)
    b = load_backend("dummy:random:3", BackendOptions())
    assert (b.name, b.fingerprint()) == ("dummy", "dummy-random-3")
    assert "vpbench.models.hf_qwen_vl" not in sys.modules  # nothing imported for kinds not used
    with pytest.raises(ConfigError, match="dummy seed must be an integer"):
        load_backend("dummy:random:x", BackendOptions())
    replay = tmp_path / "r.jsonl"
    replay.write_text('{"sample_id": "a", "response": "B"}\n')
    r = load_backend(f"replay:{replay}", BackendOptions())
    assert r.check_samples("t", []) == {}
    assert set(loader.BACKENDS) == {"hf", "vllm", "openai", "lmms", "replay", "dummy"}


def test_out_of_tree_kind_from_env(monkeypatch):
    monkeypatch.setenv("VPBENCH_BACKENDS", "mine=vpbench.models.loader:_dummy")
    assert load_backend("mine:first", BackendOptions()).fingerprint() == "dummy-first-0"
    monkeypatch.setenv("VPBENCH_BACKENDS", "broken")
    with pytest.raises(ConfigError, match="expected kind=module:function"):
        load_backend("dummy:first", BackendOptions())
    monkeypatch.setenv("VPBENCH_BACKENDS", "gone=vpbench.no_such_module:f")
    with pytest.raises(ConfigError, match="backend 'gone': cannot import"):
        load_backend("gone:x", BackendOptions())


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "--batch-size must be an integer >= 1"),
    ({"dtype": "bfloat61"}, r"did you mean 'bfloat16'"),
    ({"device": "gpu"}, "--device must be auto, cpu, cuda or cuda:N"),
    ({"device": "cuda:x"}, "--device must be"),
])
def test_backend_options_invariants(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        BackendOptions(**kwargs)


def test_stats_and_gap_options_checked_at_construction():
    from vpbench.engine.gap import GapOptions
    from vpbench.task import StatsOptions

    assert StatsOptions(n_boot=0).n_boot == 0  # no bootstrap is allowed
    with pytest.raises(ConfigError, match="stats.n_boot must be an integer >= 0"):
        StatsOptions(n_boot=-1)
    with pytest.raises(ConfigError, match=r"stats.alpha must be in \(0, 1\)"):
        StatsOptions(alpha=1.5)
    with pytest.raises(ConfigError, match=r"gap.scorer 'motion_enrgy' is unknown \(did you mean 'motion_energy'\?\)"):
        GapOptions(scorer="motion_enrgy")
    with pytest.raises(ConfigError, match="0 < max_key_ratio <= 1"):
        GapOptions(scorer="random", max_key_ratio=0)


def test_bad_options_fail_before_any_model_loads(tmp_path, motionbench_root, capsys):
    from vpbench import cli

    rc = cli.main(["run", "--model", str(tmp_path / "no-such-ckpt"), "--tasks", "motionbench", "--data-root",
                   str(motionbench_root), "--output", str(tmp_path / "o"), "--set", "stats.alpha=2"])
    assert rc == 2 and not (tmp_path / "o").exists()
    assert "stats.alpha must be in (0, 1)" in capsys.readouterr().err
