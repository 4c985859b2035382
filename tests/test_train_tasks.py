"""Training on every task and with every kind of model: each task's batches train an NTM,
the LSTM baseline runs and reports like an NTM, and N-grams runs are judged against the
optimal predictor. Apart from test_train.py so that pytest-xdist can run them beside it."""

import jax
import numpy as np
import pytest

import diffmem
from diffmem import tasks
from diffmem.config import resolve
from diffmem.report import write_report
from diffmem.training import train_and_evaluate
from diffmem.training.step import make_train_step
from test_train import _state

TASK_SIZES = {
    "copy": dict(length=5),
    "repeat-copy": dict(length=3, repeats=2),
    "associative-recall": dict(items=3),
    "dynamic-ngrams": dict(),
    "priority-sort": dict(),
}


class _OneBatch(tasks.Task):
    """A task that always returns the same batch (drawn once from ``task``): a model that can
    learn at all must drive its loss down on it."""

    def __init__(self, task, batch_size, **sizes):
        self.input_size, self.output_size = task.input_size, task.output_size
        self.batch = task.sample(jax.random.key(0), batch_size, **sizes)

    def sample(self, key, batch_size, **sizes):
        return self.batch

    def parse_size(self, text):
        raise ValueError(text)


@pytest.mark.parametrize("task_name", list(TASK_SIZES))
def test_every_task_trains_with_an_ntm(task_name):
    """A smoke run per task: the training step compiles with the task's batches, its steps are
    finite, and the loss on one repeated batch falls steadily below its starting value."""
    config = resolve(task_name).replace(
        model=dict(controller_size=16, memory_rows=16, memory_width=6, read_heads=1,
                   write_heads=1, controller_layers=1),
        train=dict(optimizer="adam", lr=1e-2, grad_clip_mode="norm"),
    )
    graphdef, rest, tx, state = _state(config)
    task = tasks.get(task_name)
    if task_name == "dynamic-ngrams":
        task = type(task)(length=24)  # shorter sequences keep the test fast
    step = make_train_step(graphdef, rest, _OneBatch(task, 4, **TASK_SIZES[task_name]), tx, 4)
    bits = []
    for _ in range(40):
        state, m = step(state, jax.random.key(0))
        bits.append(float(m["bits"]))
    assert np.all(np.isfinite(bits))
    # Measured ratios of the last five to the first: 0.64 (copy) to 0.91 (N-grams).
    assert np.mean(bits[-5:]) < 0.95 * bits[0], (bits[:3], bits[-3:])


def test_lstm_baseline_trains_and_evaluates_like_an_ntm(tmp_path):
    config = resolve("copy", "lstm").replace(
        model=dict(controller_size=16, controller_layers=2),
        train=dict(batch_size=4, sequences=16, minutes=None, eval_every=16, val_size=8,
                   eval_count=4, generalisation_val_size=0),
    )
    run = train_and_evaluate(config, tmp_path / "run")
    assert run.summary["model"] == "lstm" and run.summary["paper_parameters"] is None
    assert len(run.summary["generalisation"]) == 6
    model, loaded = diffmem.load(tmp_path / "run")
    assert loaded == config
    x = tasks.get("copy").sample(jax.random.key(1), 2, length=4).inputs
    np.testing.assert_array_equal(model(x)[0], run.model(x)[0])
    # Its report has every section, and says that there is no memory to show.
    page = write_report(tmp_path / "run").read_text()
    assert page.count("data:image/png;base64,") == 2  # learning curves, generalisation
    assert "The LSTM baseline has no external memory to show." in page


def test_ngrams_runs_report_the_optimal_predictor_and_a_relative_target(tmp_path):
    config = resolve("dynamic-ngrams").replace(
        model=dict(controller_size=8, memory_rows=8, memory_width=4),
        train=dict(batch_size=2, sequences=2, minutes=None, eval_every=2, val_size=4,
                   eval_count=2),
    )
    summary = train_and_evaluate(config, tmp_path / "run").summary
    optimum = summary["validation"]["optimal_bits"]
    assert 50 < optimum < 200
    assert summary["target_bits"] == pytest.approx(optimum + 2.0)
    assert "optimal_bits" in summary["generalisation"][0]
