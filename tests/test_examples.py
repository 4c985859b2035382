"""Every script in examples/ runs, at tiny sizes where it takes them (CI's smoke test)."""

import runpy
import sys
from pathlib import Path

import pytest

from diffmem.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY = ["--batch-size", "4", "--sequences", "16", "--no-tensorboard",
        "--set", "model.controller_size=8", "--set", "model.memory_rows=16",
        "--set", "model.memory_width=4", "--set", "train.eval_every=8",
        "--set", "train.val_size=4", "--set", "train.eval_count=2"]


def _run(script, *argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / script), *argv])
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")


def test_every_example_is_short_and_tested():
    for path in EXAMPLES.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 70, path.name
        assert path.stem in Path(__file__).read_text(), f"{path.name} has no smoke test here"


def test_ntm_in_rnn_matches_the_layer(monkeypatch, capsys):
    _run("ntm_in_rnn.py", monkeypatch=monkeypatch)
    assert "nnx.RNN matches diffmem.NTM" in capsys.readouterr().out


def test_dnc_layer_trains(monkeypatch, capsys):
    _run("dnc_layer.py", "--steps", "2", monkeypatch=monkeypatch)
    assert "step 2: loss" in capsys.readouterr().out


def test_custom_task_trains_and_evaluates_from_the_command_line(monkeypatch, tmp_path):
    monkeypatch.chdir(EXAMPLES)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    run = tmp_path / "run"
    assert main(["train", "custom_task:Reverse", *TINY, "--run-dir", str(run)]) == 0
    assert main(["eval", str(run), "--sizes", "4,12", "--count", "2", "--json"]) == 0


def test_your_data_writes_a_file_and_trains_on_it(monkeypatch, tmp_path):
    data, run = tmp_path / "reverse.npz", tmp_path / "run"
    with pytest.raises(SystemExit) as done:
        _run("your_data.py", "--out", str(data), "--count", "40", *TINY, "--run-dir",
             str(run), monkeypatch=monkeypatch)
    assert done.value.code == 0 and (run / "summary.json").is_file()
    assert main(["eval", str(run), "--data", str(data), "--json"]) == 0


@pytest.fixture(autouse=True)
def _forget_the_custom_task():
    yield
    sys.modules.pop("custom_task", None)
