"""experiments/sweep.py, the seed-study driver: which earlier run a sweep takes up again, and
what an interrupt prints. (Its training is train_and_evaluate, tested in test_train.)"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from diffmem import checkpoint
from diffmem.config import resolve

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sweep():
    spec = importlib.util.spec_from_file_location("sweep", ROOT / "experiments" / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_run(runs: Path, name: str, config, *, checkpointed: bool, finished: bool) -> Path:
    run = runs / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    (run / "metrics.jsonl").write_text("")
    if checkpointed:
        (run / checkpoint.FILENAME).write_bytes(b"")
    if finished:
        summary = {"seed": config.train.seed, "status": "target reached", "reached_target": True,
                   "sequences": 8000, "first_below_target": {"sequences": 4000, "seconds": 9.0},
                   "validation": {"bits": 0.01}, "generalisation": [],
                   "nonfinite_events": []}
        (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_earlier_run_is_the_newest_checkpointed_run_of_that_seed_and_configuration(
        sweep, tmp_path):
    config = resolve("copy").replace(train={"seed": 1})
    name = "copy-ntm-lstm-default-seed1"
    make_run(tmp_path, f"{name}-100", config, checkpointed=True, finished=False)
    newest = make_run(tmp_path, f"{name}-200", config, checkpointed=True, finished=False)
    make_run(tmp_path, f"{name}-300", config.replace(train={"minutes": 3.0}),
             checkpointed=True, finished=False)  # another configuration
    make_run(tmp_path, f"{name}-400", config, checkpointed=False, finished=False)
    damaged = make_run(tmp_path, f"{name}-500", config, checkpointed=True, finished=False)
    (damaged / "config.json").write_text("{")
    make_run(tmp_path, "copy-ntm-lstm-default-seed10-600", config.replace(train={"seed": 10}),
             checkpointed=True, finished=False)
    assert sweep.earlier_run(tmp_path, name, config) == newest
    finished = make_run(tmp_path, f"{name}-700", config, checkpointed=True, finished=True)
    assert sweep.earlier_run(tmp_path, name, config) == finished
    assert sweep.earlier_run(tmp_path, "copy-ntm-lstm-default-seed2", config) is None
    assert sweep.earlier_run(tmp_path / "absent", name, config) is None


def test_a_seed_trained_before_an_interrupt_is_taken_from_its_run_not_retrained(
        sweep, tmp_path, monkeypatch):
    def not_again(config, run_dir, **kwargs):
        raise AssertionError("trained again")

    runs, out = tmp_path / "runs", tmp_path / "results.json"
    make_run(runs, "copy-ntm-lstm-default-seed0-100", resolve("copy").replace(train={"seed": 0}),
             checkpointed=True, finished=True)
    monkeypatch.setattr(sweep, "train_and_evaluate", not_again)
    monkeypatch.setattr(sys, "argv", ["sweep.py", "copy", "--seeds", "0", "--runs", str(runs),
                                      "--out", str(out)])
    assert sweep.main() == 0
    assert [r["seed"] for r in json.loads(out.read_text())["runs"]] == [0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "runs"]


def test_an_interrupted_sweep_says_how_to_go_on_and_exits_with_the_signal(
        sweep, tmp_path, monkeypatch, capsys):
    from diffmem.resume import StopRequested

    def interrupted(config, run_dir, **kwargs):
        raise StopRequested(15)

    monkeypatch.setattr(sweep, "train_and_evaluate", interrupted)
    monkeypatch.setattr(sys, "argv", ["sweep.py", "copy", "--seeds", "0", "--runs",
                                      str(tmp_path / "runs"), "--out", str(tmp_path / "r.json")])
    assert sweep.main() == 143
    assert "run the same command again" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
