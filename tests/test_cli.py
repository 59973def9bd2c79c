"""The small CLI commands: `tasks`, `data check`, `model tiny`, `python -m vpbench`."""

from __future__ import annotations

import subprocess
import sys

from vpbench import cli
from vpbench.registry import task_names


def test_tasks_lists_every_task_with_data_status(tmp_path, capsys, motionbench_root):
    (tmp_path / "data").mkdir()
    motionbench_root.rename(tmp_path / "data" / "motionbench")
    assert cli.main(["tasks", "--data-dir", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == task_names()
    status = {line.split()[0]: line for line in out}
    assert "[data: ok]" in status["motionbench"]
    assert "[data: missing" in status["mvbench"]


def test_data_check_reports_counts_and_broken_videos(motionbench_with_videos, capsys):
    assert cli.main(["data", "check", "motionbench", "--data-root", str(motionbench_with_videos)]) == 0
    out = capsys.readouterr().out
    assert "5 samples, 3 videos, 1 with hidden answers" in out and "all videos present" in out
    (motionbench_with_videos / "self-collected" / "vidC.mp4").unlink()
    assert cli.main(["data", "check", "motionbench", "--data-root", str(motionbench_with_videos)]) == 2
    err = capsys.readouterr().err
    assert "2 of 5 samples" in err and "qa4" in err and "qa5" in err and "missing" in err


def test_model_tiny_builds_a_loadable_checkpoint(tmp_path):
    assert cli.main(["model", "tiny", "--output", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m" / "config.json").exists() and (tmp_path / "m" / "model.safetensors").exists()


def test_python_dash_m_entry_point_and_bad_subcommand():
    ok = subprocess.run([sys.executable, "-m", "vpbench", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "run" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "vpbench", "rnu"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
