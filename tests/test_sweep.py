"""experiments/sweep.py, the seed-study driver: which run an interrupted sweep resumes, and
what an interrupt prints. (Its training is train_and_evaluate, tested in test_train.)"""

import importlib.util
import sys
from pathlib import Path

import pytest

from diffmem import checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sweep():
    spec = importlib.util.spec_from_file_location("sweep", ROOT / "experiments" / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_run(runs: Path, name: str, *, checkpointed: bool, finished: bool) -> Path:
    run = runs / name
    run.mkdir(parents=True)
    if checkpointed:
        (run / checkpoint.FILENAME).write_bytes(b"")
    if finished:
        (run / "summary.json").write_text("{}")
    return run


def test_unfinished_run_is_the_newest_checkpointed_run_of_that_seed_without_summary(
        sweep, tmp_path):
    make_run(tmp_path, "copy-ntm-lstm-default-seed1-100", checkpointed=True, finished=False)
    newest = make_run(tmp_path, "copy-ntm-lstm-default-seed1-200", checkpointed=True,
                      finished=False)
    make_run(tmp_path, "copy-ntm-lstm-default-seed1-300", checkpointed=True, finished=True)
    make_run(tmp_path, "copy-ntm-lstm-default-seed1-400", checkpointed=False, finished=False)
    make_run(tmp_path, "copy-ntm-lstm-default-seed10-500", checkpointed=True, finished=False)
    assert sweep.unfinished_run(tmp_path, "copy-ntm-lstm-default-seed1") == newest
    assert sweep.unfinished_run(tmp_path, "copy-ntm-lstm-default-seed2") is None
    assert sweep.unfinished_run(tmp_path / "absent", "copy-ntm-lstm-default-seed1") is None


def test_an_interrupted_sweep_says_how_to_go_on_and_exits_with_the_signal(
        sweep, tmp_path, monkeypatch, capsys):
    from diffmem.train import _StopRequested

    def interrupted(config, run_dir, **kwargs):
        raise _StopRequested(15)

    monkeypatch.setattr(sweep, "train_and_evaluate", interrupted)
    monkeypatch.setattr(sys, "argv", ["sweep.py", "copy", "--seeds", "0", "--runs",
                                      str(tmp_path / "runs"), "--out", str(tmp_path / "r.json")])
    assert sweep.main() == 143
    assert "run the same command again" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
