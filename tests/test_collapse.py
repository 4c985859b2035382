"""Going back to the best model after a collapse (train.collapse_above): at a log point whose
validation is that far above the best, the run goes on from the best log point's parameters,
the plateau rule's rate cut at once, and resumes exactly across it.

Validation is scripted (the figures the log points see are set by the test), so that the
collapse falls where the test says and nowhere else."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

import diffmem.training.evaluation
from conftest import tiny
from diffmem import checkpoint
from diffmem.config import ConfigError, validate
from diffmem.models import build_model
from diffmem.training import train_and_evaluate, train_population

VAL_SIZE = 8  # the validation set's size, which tells its batches from the evaluation's


def _config(**train):
    # A patience no run here reaches: only a collapse cuts the rate.
    return tiny().replace(train={**dict(
        collapse_above=1.0, lr_plateau_factor=0.5, lr_plateau_patience=100, lr_min=1e-5,
        early_stop=False, tensorboard=False, generalisation_val_size=0, val_size=VAL_SIZE,
        sequences=64), **train})


@pytest.fixture
def scripted(monkeypatch):
    """``script(bits, ...)``: the validation bits of the next log points, in order."""
    figures: list[float] = []
    real = diffmem.training.evaluation.evaluate_batches

    def evaluate_batches(task, eval_step, params, batches):
        result = real(task, eval_step, params, batches)
        if figures and batches[0].inputs.shape[0] == VAL_SIZE:
            result = {**result, "bits": figures.pop(0)}
        return result

    monkeypatch.setattr(diffmem.training.evaluation, "evaluate_batches", evaluate_batches)
    return figures.extend


def _metrics(run_dir):
    return [{k: v for k, v in json.loads(line).items() if "second" not in k}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _params(run_dir, name, config):
    model = build_model(config)
    path = run_dir / name
    nnx.update(model, checkpoint.restore_state(path, nnx.state(model), checkpoint.read(path)[0]))
    return nnx.state(model, nnx.Param)


def _assert_same(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_a_collapse_goes_back_to_the_best_model_and_cuts_the_rate(scripted, tmp_path):
    scripted([5.0, 4.0, 9.0, 3.0])  # the third log point is 5 bits above the best, 4.0
    run_dir = tmp_path / "run"
    config = _config(sequences=48)
    summary = train_and_evaluate(config, run_dir).summary
    assert summary["collapses"] == [{"sequences": 48, "step": 12, "val_bits": 9.0,
                                     "to_sequences": 32, "to_val_bits": 4.0}]
    # The checkpoint a resumed run goes on from holds the best log point's parameters.
    _assert_same(_params(run_dir, checkpoint.FILENAME, config),
                 _params(run_dir, checkpoint.BEST, config))
    assert summary["best"]["sequences"] == 32
    # The rate is cut at the collapse and stays cut: the plateau rule alone never would.
    resumed = train_and_evaluate(_config(), run_dir, resume=True).summary
    assert [r["lr"] for r in _metrics(run_dir)] == pytest.approx([3e-3] * 3 + [1.5e-3])
    assert resumed["collapses"] == summary["collapses"]


def test_a_resumed_run_goes_on_across_a_collapse_as_an_uninterrupted_one(scripted, tmp_path):
    scripted([5.0, 4.0, 9.0, 3.0] * 2)
    whole = tmp_path / "whole"
    train_and_evaluate(_config(), whole)
    run_dir = tmp_path / "run"
    train_and_evaluate(_config(sequences=48), run_dir)
    train_and_evaluate(_config(), run_dir, resume=True)
    assert _metrics(run_dir) == _metrics(whole)
    for name in (checkpoint.FILENAME, checkpoint.BEST):
        a, b = checkpoint.read(whole / name)[0], checkpoint.read(run_dir / name)[0]
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")


def test_validation_within_the_margin_or_off_goes_on(scripted, tmp_path):
    scripted([5.0, 4.0, 4.9, 3.0, 5.0, 4.0, 9.0, 3.0])
    within = train_and_evaluate(_config(), tmp_path / "within").summary
    off = train_and_evaluate(_config(collapse_above=None), tmp_path / "off").summary
    assert within["collapses"] == [] and off["collapses"] == []
    assert [r["lr"] for r in _metrics(tmp_path / "off")] == pytest.approx([3e-3] * 4)


def test_the_cut_stops_at_lr_min_and_a_non_finite_validation_goes_back_too(scripted, tmp_path):
    scripted([5.0, 4.0, float("nan"), 3.0])
    summary = train_and_evaluate(_config(lr_min=2e-3), tmp_path / "run").summary
    assert summary["collapses"] == [{"sequences": 48, "step": 12, "val_bits": None,
                                     "to_sequences": 32, "to_val_bits": 4.0}]
    assert [r["lr"] for r in _metrics(tmp_path / "run")] == pytest.approx([3e-3] * 3 + [2e-3])


def test_a_restart_is_not_undone_by_going_back_to_a_best_from_before_it(scripted, tmp_path):
    # A restart at 32 (still above 4.5 bits after 32 sequences); at 48 the fresh start is 9
    # bits, far above the best, 4.8 at 32, but that best is the weights before the restart.
    scripted([5.0, 4.8, 9.0, 3.0])
    summary = train_and_evaluate(_config(restart_after=32, restart_above=4.5),
                                 tmp_path / "run").summary
    assert [r["sequences"] for r in summary["restarts"]] == [32]
    assert summary["collapses"] == []


def test_each_member_of_a_population_goes_back_to_its_own_best(scripted, tmp_path):
    # Log points of the two members alternate: only seed 0 collapses, at 48 sequences, and
    # both train on after it in one update.
    scripted([5.0, 5.0, 4.0, 4.0, 9.0, 3.0, 3.0, 2.0])
    configs = [_config(seed=seed) for seed in (0, 1)]
    runs = train_population(configs, tmp_path / "pop")
    assert [len(run.summary["collapses"]) for run in runs] == [1, 0]
    lrs = [[r["lr"] for r in _metrics(tmp_path / "pop" / f"seed-{seed}")] for seed in (0, 1)]
    assert lrs == [pytest.approx([3e-3] * 3 + [1.5e-3]), pytest.approx([3e-3] * 4)]


@pytest.mark.parametrize("above", [0, -1.0, float("nan"), "high", True])
def test_collapse_above_must_be_a_positive_number_of_bits(above):
    with pytest.raises(ConfigError, match=r"train\.collapse_above="):
        validate(_config(collapse_above=above))


def test_collapse_above_needs_the_plateau_rule_whose_rate_it_cuts():
    with pytest.raises(ConfigError, match=r"collapse_above=10.*lr_plateau_factor"):
        validate(_config(collapse_above=10.0, lr_plateau_factor=None))
