import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import diffmem
from diffmem import tasks
from diffmem.cli import main

TINY = ["--set", "model.controller_size=16", "--set", "model.memory_rows=16",
        "--set", "model.memory_width=6", "--set", "train.val_size=8",
        "--set", "train.eval_count=4", "--set", "train.eval_every=16",
        "--set", "train.generalisation_val_size=4"]


def test_train_then_eval_then_load_round_trip(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "copy", "--sequences", "32", "--batch-size", "4", "--seed", "3",
                 "--run-dir", str(run_dir), *TINY]) == 0
    out = capsys.readouterr().out
    assert "Summary: copy, ntm-lstm" in out and "length 120" in out
    for name in ("config.json", "metrics.jsonl", "summary.json", "checkpoint.safetensors"):
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "config.json").read_text())["train"]["seed"] == 3

    assert main(["eval", str(run_dir), "--lengths", "5,12", "--count", "4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["size"] for r in rows] == [{"length": 5}, {"length": 12}]
    assert all(r["bits"] >= 0 and r["bit_errors"] >= 0 for r in rows)

    assert main(["eval", str(run_dir), "--lengths", "5", "--count", "4"]) == 0
    assert "length 5" in capsys.readouterr().out

    model, config = diffmem.load(run_dir)
    batch = tasks.get("copy").sample(__import__("jax").random.key(0), 3, length=7)
    logits, _ = model(np.asarray(batch.inputs))
    assert logits.shape == (3, 15, 8) and config.task == "copy"


def test_resume_continues_a_finished_run_with_a_larger_budget(tmp_path, capsys):
    run_dir = tmp_path / "run"
    main(["train", "copy", "--sequences", "16", "--batch-size", "4", "--run-dir", str(run_dir),
          *TINY])
    # A resumed run may also change what to do after a non-finite step.
    assert main(["train", "--resume", str(run_dir), "--sequences", "32",
                 "--set", "train.on_nonfinite=stop", "--set", "train.max_rollbacks=5"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["sequences"] == 32
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["sequences"] for l in lines] == [16, 32]
    train = json.loads((run_dir / "config.json").read_text())["train"]
    assert (train["on_nonfinite"], train["max_rollbacks"]) == ("stop", 5)


class _EasyCopy(tasks.get("copy").__class__):
    target_bits = 1e9  # every validation point meets it
    generalisation_check = (({"length": 30}, 1.0),)  # and so does every check


def test_resuming_a_run_that_stopped_early_or_ran_out_of_time_trains_no_further(tmp_path):
    tasks.register("easy-copy", _EasyCopy)
    try:
        early = tmp_path / "early"
        main(["train", "easy-copy", "--batch-size", "4", "--run-dir", str(early), *TINY])
        assert json.loads((early / "summary.json").read_text())["status"] == "target reached"
        out_of_time = tmp_path / "minutes"
        main(["train", "copy", "--batch-size", "4", "--minutes", "1e-6", "--run-dir",
              str(out_of_time), *TINY])
        for run_dir in (early, out_of_time):
            before = (run_dir / "metrics.jsonl").read_text()
            status = json.loads((run_dir / "summary.json").read_text())["status"]
            assert main(["train", "--resume", str(run_dir)]) == 0
            assert (run_dir / "metrics.jsonl").read_text() == before
            assert json.loads((run_dir / "summary.json").read_text())["status"] == status
        # Raising the budget goes on.
        assert main(["train", "--resume", str(early), "--set", "train.patience=3"]) == 0
        assert len((early / "metrics.jsonl").read_text().splitlines()) == 3
    finally:
        tasks._REGISTRY.pop("easy-copy", None)


def test_sigterm_exits_with_its_own_code(monkeypatch):
    import signal

    from diffmem import training
    from diffmem.training.interrupt import StopRequested

    def stopped(*args, **kwargs):
        raise StopRequested(signal.SIGTERM)

    monkeypatch.setattr(training, "train_and_evaluate", stopped)
    assert main(["train", "copy"]) == 128 + signal.SIGTERM


@pytest.mark.parametrize("argv, message", [
    (["train", "cpy"], "unknown task 'cpy'; the tasks are: copy"),
    (["train", "copy", "--model", "gru"], "the models are: ntm-lstm, ntm-ff"),
    (["train", "copy", "--batch-size", "0"], "train.batch_size=0 must be a positive integer"),
    (["train", "copy", "--minutes", "-1"], "train.minutes=-1.0 must be a positive"),
    (["train", "copy", "--set", "model.shift_radius=64"], "shift_radius=64"),
    (["train", "copy", "--set", "model.nope=1"], "not FIELD=VALUE with a known field"),
    (["train", "copy", "--set", "train.lr=fast"], "'fast' is not valid here; expected a number"),
    (["train", "copy", "--set", "train.collapse_above=high"],
     "'high' is not valid here; expected a number, or none for off"),
    (["train", "copy", "--set", "train.lr_half_life=soon"],
     "'soon' is not valid here; expected an integer, or none for off"),
    (["train"], "name a task"),
    (["eval", "/no/such/run"], "no run directory or checkpoint at /no/such/run"),
    (["bench", "--batch-sizes", "0,x"], "--batch-sizes '0,x' must be comma-separated"),
])
def test_user_mistakes_get_one_clear_line_and_exit_code_2(argv, message, capsys):
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert "error:" in out and message in " ".join(out.split()), out
    assert "Traceback" not in out


def test_eval_rejects_a_bad_length(tiny_run, capsys):
    run_dir, _ = tiny_run
    assert main(["eval", str(run_dir), "--lengths", "10,abc"]) == 2
    assert "copy length 'abc' must be a positive integer" in capsys.readouterr().out


@pytest.mark.parametrize("option", ["--version", "--help"])
def test_version_and_help_do_not_import_jax(option):
    code = (f"import sys\nfrom diffmem.cli import main\ntry:\n    main([{option!r}])\n"
            "except SystemExit as stop:\n    assert stop.code == 0\n"
            "print(sorted({'jax', 'flax', 'optax'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.splitlines()[-1] == "[]", out


def test_version_is_pyprojects():
    import pathlib
    import tomllib

    pyproject = pathlib.Path(__file__).parents[1] / "pyproject.toml"
    assert diffmem.__version__ == tomllib.loads(pyproject.read_text())["project"]["version"]


def test_the_public_names_are_there_on_first_use():
    for name in diffmem.__all__:
        assert getattr(diffmem, name) is not None, name
    assert diffmem.NTMCell.__module__ == "diffmem.ntm" and diffmem.tasks.names()
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        diffmem.nope  # noqa: B018


@pytest.mark.parametrize("command", ["train", "config", "sweep", "bench"])
def test_a_commands_help_lists_the_registered_names(command, capsys):
    from diffmem import models

    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    out = "".join(capsys.readouterr().out.split())  # argparse wraps lines at hyphens
    names = models.names() if command == "bench" else tasks.names()
    assert f"oneof:{','.join(names)}" in out


def test_module_entry_point_prints_help():
    out = subprocess.run([sys.executable, "-m", "diffmem", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for command in ("train", "eval", "bench"):
        assert command in out


def test_eval_takes_each_tasks_own_sizes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    # Without the generalisation check, whose long sizes would compile two programs more.
    assert main(["train", "repeat-copy", "--sequences", "4", "--batch-size", "2",
                 "--set", "train.eval_every=4", "--run-dir", str(run_dir), *TINY,
                 "--set", "train.generalisation_val_size=0"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "length 20, 10 repeats" in out and "the paper's" not in out  # a shrunk model
    assert main(["eval", str(run_dir), "--sizes", "3x2,4x1", "--count", "2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["size"] for r in rows] == [{"length": 3, "repeats": 2}, {"length": 4, "repeats": 1}]
    assert main(["eval", str(run_dir), "--sizes", "3"]) == 2
    assert "LENGTHxREPEATS" in capsys.readouterr().out


def test_bench_measures_the_model_it_is_given(monkeypatch, capsys):
    from diffmem import bench

    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))  # --population adds to it

    seen = []

    def fake_benchmark(sizes, seconds, config, populations=None, memory_rows=None):  # wiring
        seen.append(config.model.kind)
        members = {} if populations is None else {"population": populations[0]}
        rows = config.model.memory_rows if memory_rows is None else memory_rows[0]
        return [{"model": config.model.kind, "batch_size": sizes[0], "time_steps": 41,
                 "parameters": 1, "device": "cpu", "sequences_per_second": 1.0,
                 "updates_per_second": 1.0, "compile_seconds": 0.0, "step_ms": 0.5,
                 "peak_bytes": 2_000_000, "resident_peak_bytes": 3_000_000, "memory_rows": rows,
                 **members}]

    monkeypatch.setattr(bench, "benchmark", fake_benchmark)
    assert main(["bench", "--model", "dnc", "--batch-sizes", "1,2", "--seconds", "1"]) == 0
    assert "model dnc (DNC with an LSTM controller)" in capsys.readouterr().out
    assert main(["bench", "--batch-sizes", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["model"] == "ntm-lstm"
    assert seen == ["dnc", "dnc", "ntm-lstm"]
    assert main(["bench", "--population", "1,4", "--batch-sizes", "1", "--json"]) == 0
    assert [r["population"] for r in json.loads(capsys.readouterr().out)] == [1, 4]
    assert main(["bench", "--population", "0"]) == 2
    assert "--population '0' must be comma-separated positive integers" in " ".join(
        capsys.readouterr().out.split())
    assert main(["bench", "--model", "gru"]) == 2
    assert "unknown model 'gru'" in capsys.readouterr().out
    assert main(["bench", "--model", "dnc", "--memory-rows", "64,128", "--batch-sizes", "1,4",
                 "--json"]) == 0
    assert [(r["memory_rows"], r["batch_size"]) for r in json.loads(capsys.readouterr().out)] \
        == [(64, 1), (64, 4), (128, 1), (128, 4)]
    assert main(["bench", "--model", "dnc", "--memory-rows", "64,128", "--batch-sizes", "1"]) == 0
    table = capsys.readouterr().out
    assert "memory" in table and re.search(r"│\s+128\s+│\s+1\s+│", table)
    assert main(["bench", "--model", "dnc", "--memory-rows", "0"]) == 2
    assert "--memory-rows '0' must be comma-separated" in " ".join(capsys.readouterr().out.split())
    assert main(["bench", "--model", "lstm", "--memory-rows", "64"]) == 2
    assert "the lstm has no memory" in capsys.readouterr().out
