"""Nothing lost, nothing silent: a training process killed or interrupted at any point resumes
to the same parameters and metrics, non-finite steps are caught and named, and every user
mistake gets a one-line error."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffmem import checkpoint, tasks
from diffmem.cli import main
from diffmem.config import resolve
from diffmem.tasks.copy import Copy
from diffmem.training import Reporter, train_and_evaluate

# A tiny copy run with 25 log points (a checkpoint every 4 updates), so that a signal sent
# after the first few log points lands mid-run, between log points.
TINY = ["--batch-size", "4", "--sequences", "400", "--no-early-stop",
        "--set", "model.controller_size=16", "--set", "model.memory_rows=16",
        "--set", "model.memory_width=6", "--set", "train.minutes=none",
        "--set", "train.eval_every=16", "--set", "train.val_size=8",
        "--set", "train.eval_count=4", "--set", "train.generalisation_val_size=4"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    assert main(["train", "copy", *TINY, "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.fixture(autouse=True)
def ctrl_c_acts():
    """Ctrl-C (SIGINT) handled as usual while each test runs, also when the suite itself was
    started with SIGINT ignored (as a shell does for a background job), which diffmem
    respects, and which a subprocess would inherit."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _start(run_dir):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "diffmem", "train", "copy", *TINY,
                             "--run-dir", str(run_dir)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _wait_for_log_points(process, run_dir, count, timeout=300):
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= count:
            return
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.02)
    raise AssertionError(f"no {count} log points in {timeout} s")


def _assert_same_run(a, b):
    """Same final parameters and optimiser state, bit for bit, and the same metrics."""
    ta, ha = checkpoint.read(a / checkpoint.FILENAME)
    tb, hb = checkpoint.read(b / checkpoint.FILENAME)
    assert ha["step"] == hb["step"] and sorted(ta) == sorted(tb)
    for name in ta:
        np.testing.assert_array_equal(ta[name], tb[name], err_msg=name)
    untimed = lambda d: [{k: v for k, v in json.loads(line).items() if "second" not in k}  # noqa: E731
                         for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert untimed(a) == untimed(b)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert sa["validation"] == sb["validation"] and sa["generalisation"] == sb["generalisation"]
    assert sa["last_validation"] == sb["last_validation"]
    # The same best point and model.
    untimed_best = lambda s: {k: v for k, v in s["best"].items() if k != "seconds"}  # noqa: E731
    assert untimed_best(sa) == untimed_best(sb)
    ba, bb = checkpoint.read(a / checkpoint.BEST), checkpoint.read(b / checkpoint.BEST)
    assert ba[1]["step"] == bb[1]["step"] == sa["best"]["step"] and sorted(ba[0]) == sorted(bb[0])
    for name in ba[0]:
        np.testing.assert_array_equal(ba[0][name], bb[0][name], err_msg=name)


def test_a_killed_training_process_resumes_to_the_same_run(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    process = _start(run_dir)
    _wait_for_log_points(process, run_dir, 3)
    process.kill()  # SIGKILL: no chance to save anything
    process.wait()
    assert not (run_dir / "summary.json").exists()
    assert main(["train", "--resume", str(run_dir)]) == 0
    _assert_same_run(uninterrupted, run_dir)


def test_ctrl_c_saves_says_how_to_resume_and_resumes_exactly(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    process = _start(run_dir)
    _wait_for_log_points(process, run_dir, 3)
    time.sleep(0.05)  # land between log points
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 130, output
    assert "Continue with: diffmem train --resume" in " ".join(output.split())
    assert "Traceback" not in output
    _, header = checkpoint.read(run_dir / checkpoint.FILENAME)
    assert header["status"] == "interrupted"
    assert main(["train", "--resume", str(run_dir)]) == 0
    _assert_same_run(uninterrupted, run_dir)


class _CopyWithNaNs(Copy):
    """Copy whose training batches (of 4; validation uses 8) hold a NaN with probability
    ``rate``, decided by the batch key."""

    rate = 0.03
    eval_sizes = ({"length": 5},)  # a short final evaluation keeps the test quick

    def sample(self, key, batch_size, length=None):
        batch = super().sample(key, batch_size, length)
        if batch_size != 4:
            return batch
        poisoned = jax.random.uniform(jax.random.fold_in(key, 7)) < self.rate
        return batch._replace(inputs=jnp.where(poisoned, jnp.nan, batch.inputs))


@pytest.fixture
def nan_task():
    tasks.register("copy-with-nans", _CopyWithNaNs)
    yield "copy-with-nans"
    tasks._REGISTRY.pop("copy-with-nans", None)


def _nan_config(task, **train):
    return resolve(task).replace(
        model=dict(controller_size=16, memory_rows=16, memory_width=6),
        train={**dict(batch_size=4, sequences=800, minutes=None, eval_every=64, val_size=8,
                      eval_count=4, generalisation_val_size=0, early_stop=False,
                      tensorboard=False), **train})


def _first_poisoned_update(config, stream=0, start=0):
    """The first update (counted from 1) after ``start`` updates whose batch holds a NaN,
    found by replaying the batch keys as the training step draws them."""
    data_key = jax.random.fold_in(jax.random.key(config.train.seed), 1)
    task = tasks.get(config.task)
    for step in range(start, 10_000):
        key = jax.random.fold_in(data_key, step)
        if stream:
            key = jax.random.fold_in(key, stream)
        if not np.isfinite(np.asarray(task.sample(key, config.train.batch_size).inputs)).all():
            return step + 1
    raise AssertionError("no poisoned batch")


def _strict_json(line):
    def reject(constant):
        raise AssertionError(f"metrics.jsonl holds {constant}")
    return json.loads(line, parse_constant=reject)


def test_a_non_finite_loss_stops_training_naming_the_update(nan_task, tmp_path):
    config = _nan_config(nan_task, on_nonfinite="stop")
    first = _first_poisoned_update(config)
    run = train_and_evaluate(config, tmp_path)
    assert run.summary["status"] == f"stopped: non-finite loss at update {first}"
    assert run.summary["nonfinite_events"] == [
        {"update": first, "quantity": "loss", "sequences": first * 4}]
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        assert _strict_json(line)["sequences"] < first * 4
    for leaf in jax.tree.leaves(jax.tree.map(np.asarray, checkpoint.read(
            tmp_path / checkpoint.FILENAME)[0])):
        assert np.isfinite(leaf).all()
    assert math.isfinite(run.summary["validation"]["bits"])


def test_a_non_finite_loss_rolls_back_to_the_last_checkpoint_and_goes_on(nan_task, tmp_path):
    config = _nan_config(nan_task, max_rollbacks=20)
    first = _first_poisoned_update(config)
    run = train_and_evaluate(config, tmp_path)
    events = run.summary["nonfinite_events"]
    assert events[0] == {"update": first, "quantity": "loss", "sequences": first * 4}
    assert run.summary["rollbacks"] == len(events) >= 1
    # After the rollback the batches come from stream 1, from the last log point before
    # ``first`` on (16 updates per log point), so the next event is that stream's first
    # poisoned batch, if it falls within the budget of 200 updates.
    second = _first_poisoned_update(config, stream=1, start=(first - 1) // 16 * 16)
    assert [e["update"] for e in events[1:2]] == ([second] if second <= 200 else [])
    assert run.summary["status"] == "budget: sequences" and run.summary["sequences"] == 800
    points = [_strict_json(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [p["sequences"] for p in points] == [*range(64, 800, 64), 800]  # one curve
    assert all(math.isfinite(p["loss"]) for p in points)


class _InterruptAfter(Reporter):
    """Sends this process a SIGINT once training has seen ``sequences`` sequences."""

    def __init__(self, sequences):
        self.at, self.seen = sequences, 0

    def start(self, configs, names, parameters, sequences, compile_seconds, seconds=0.0):
        self.seen = sequences

    def advance(self, sequences):
        self.seen += sequences
        if self.seen == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def test_an_interrupt_just_after_a_non_finite_update_resumes_exactly(nan_task, tmp_path):
    config = _nan_config(nan_task, sequences=400)
    first = _first_poisoned_update(config)
    assert first % 16, "the interrupt must fall between log points"
    whole = train_and_evaluate(config, tmp_path / "whole")
    assert whole.summary["rollbacks"] >= 1
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(config, tmp_path / "split", reporter=_InterruptAfter(first * 4))
    _, header = checkpoint.read(tmp_path / "split" / checkpoint.FILENAME)
    assert header["status"] == "interrupted" and header["step"] == first
    assert header["counters"]["rollback"]["step"] == (first - 1) // 16 * 16
    train_and_evaluate(config, tmp_path / "split", resume=True)
    a, _ = checkpoint.read(tmp_path / "whole" / checkpoint.FILENAME)
    b, _ = checkpoint.read(tmp_path / "split" / checkpoint.FILENAME)
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    untimed = lambda d: [{k: v for k, v in json.loads(line).items() if "second" not in k}  # noqa: E731
                         for line in (d / "metrics.jsonl").read_text().splitlines()]
    assert untimed(tmp_path / "whole") == untimed(tmp_path / "split")


def test_rollbacks_are_limited(nan_task, tmp_path):
    run = train_and_evaluate(_nan_config(nan_task, max_rollbacks=1), tmp_path)
    assert run.summary["rollbacks"] == 1
    assert run.summary["status"].startswith("stopped: non-finite loss at update")
    assert len(run.summary["nonfinite_events"]) == 2


@pytest.mark.parametrize("argv, expected", [
    (["train", "sorting"], "unknown task 'sorting'; the tasks are: copy, repeat-copy"),
    (["train", "copy", "--model", "gru"], "unknown model 'gru'; the models are: ntm-lstm"),
    (["train", "copy", "--preset", "fast"], "unknown preset 'fast'; the presets are: default"),
    (["train", "copy", "--batch-size", "0"], "train.batch_size=0 must be a positive integer"),
    (["train", "copy", "--sequences", "-5"], "train.sequences=-5 must be a positive integer"),
    (["train", "copy", "--minutes", "0"], "train.minutes=0.0 must be a positive"),
    (["train", "copy", "--lr", "-1"], "train.lr=-1.0 must be a positive"),
    (["train", "copy", "--seed", "-1"], "train.seed=-1 must be a non-negative integer"),
    (["train", "copy", "--optimizer", "sgd"], "unknown optimizer 'sgd'; choose one of: adam"),
    (["train", "copy", "--memory-init", "zeros"], "unknown memory_init 'zeros'"),
    (["train", "copy", "--set", "model.shift_radius=64"],
     "smaller than memory_rows / 2 = 64"),
    (["train", "copy", "--set", "model.memory_rows=0"], "model.memory_rows=0 must be a positive"),
    (["train", "copy", "--set", "model.heads=2"], "not FIELD=VALUE with a known field"),
    (["train", "copy", "--set", "train.lr=fast"], "'fast' is not valid here; expected a number"),
    (["train", "copy", "--set", "train.on_nonfinite=ignore"], "unknown on_nonfinite 'ignore'"),
    (["train", "copy", "--set", "train.lr_plateau_factor=2"],
     "train.lr_plateau_factor=2.0 must be a number between 0 and 1"),
    (["train"], "name a task to train"),
    (["train", "--resume", "nowhere"], "no checkpoint at nowhere"),
    (["train", "--resume", "nowhere", "--set", "train.lr=0.1"],
     "--set train.lr=0.1 cannot change a resumed run"),
    (["eval", "nowhere"], "no run directory or checkpoint at nowhere"),
    (["bench", "--seconds", "0"], "--seconds 0.0 must be a positive"),
    (["bench", "--batch-sizes", "1,x"], "--batch-sizes '1,x' must be comma-separated"),
    (["plot", "nowhere"], "nowhere is not a diffmem run directory"),
    (["demo", "copy", "--length", "-3"], "copy length '-3' must be a positive integer"),
])
def test_a_users_mistake_gets_one_clear_line_and_exit_code_2(argv, expected, capsys, tmp_path,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written anywhere else
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert expected in " ".join(out.split())
    assert "Traceback" not in out and out.startswith("error:")
    assert not list(tmp_path.iterdir())  # no run directory was started


def test_sequences_beyond_the_memory_get_a_warning(tiny_run, capsys):
    run_dir, _ = tiny_run  # an NTM with 16 memory rows
    assert main(["eval", str(run_dir), "--sizes", "12,20", "--count", "2"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "warning: length 20: the model must store 20 vectors, more than its memory's 16" in out
    assert "length 12:" not in out


def test_a_model_called_with_the_wrong_input_width_says_what_it_expected(tiny_run):
    _, model = tiny_run
    with pytest.raises(ValueError, match="Expected inputs with 9 channels .* got 7"):
        model(jnp.zeros((2, 5, 7)))


def test_a_sigint_the_caller_ignores_stays_ignored():
    from diffmem.training.interrupt import GracefulStop

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # restored by ctrl_c_acts
    stop = GracefulStop()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) == stop._handle
    stop.restore()
    assert signal.getsignal(signal.SIGTERM) is not stop._handle


def test_a_second_trainer_of_a_busy_run_directory_is_refused_and_the_first_goes_on(
        uninterrupted, tmp_path, capsys):
    run_dir = tmp_path / "run"
    process = _start(run_dir)
    _wait_for_log_points(process, run_dir, 3)
    for argv in (["train", "--resume", str(run_dir)],
                 ["train", "copy", *TINY, "--run-dir", str(run_dir)]):
        assert main(argv) == 2
        out = " ".join(capsys.readouterr().out.split())
        assert "error:" in out and "Traceback" not in out
        assert f"{run_dir} is being trained by process {process.pid}" in out
    assert process.wait(timeout=300) == 0, process.stdout.read()
    _assert_same_run(uninterrupted, run_dir)  # the first run, unharmed
    assert main(["train", "--resume", str(run_dir)]) == 0  # free again once it ended
