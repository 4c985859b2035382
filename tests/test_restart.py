"""Restarts off a plateau (train.restart_after, train.restart_above): a run still above the
level after so many sequences since its last start begins again from fresh weights, a fresh
optimiser and a fresh rate schedule, and resumes exactly across them."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from conftest import tiny
from diffmem import checkpoint
from diffmem.config import ConfigError, validate
from diffmem.models import build_model
from diffmem.training import train_and_evaluate, train_population
from diffmem.training.recovery import restart_key


def _config(**train):
    # Always above 1e-6 bits: every log point without the target restarts. The rate halves
    # every 16 sequences (4 updates), so a log point's rate tells how long ago the start was.
    return tiny().replace(train={**dict(restart_after=16, restart_above=1e-6, lr_half_life=16,
                                        lr_min=1e-5, early_stop=False, tensorboard=False,
                                        sequences=64), **train})


def _metrics(run_dir):
    return [{k: v for k, v in json.loads(line).items() if "second" not in k}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _tensors(run_dir, name=checkpoint.FILENAME):
    return checkpoint.read(run_dir / name)[0]


def _assert_fresh_start(run_dir, config, restart):
    """The run's last checkpoint holds restart ``restart``'s initial weights, untrained."""
    saved = build_model(config)
    path = run_dir / checkpoint.FILENAME
    nnx.update(saved, checkpoint.restore_state(path, nnx.state(saved), checkpoint.read(path)[0]))
    fresh = build_model(config, seed=restart_key(config.train.seed, restart))
    jax.tree.map(np.testing.assert_array_equal, nnx.state(saved, nnx.Param),
                 nnx.state(fresh, nnx.Param))


@pytest.fixture(scope="module")
def restarted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("restarted") / "run"
    return run_dir, train_and_evaluate(_config(), run_dir).summary


def test_a_run_above_the_level_starts_again_at_every_restart_after(restarted):
    run_dir, summary = restarted
    assert [r["sequences"] for r in summary["restarts"]] == [16, 32, 48, 64]
    assert [r["step"] for r in summary["restarts"]] == [4, 8, 12, 16]
    # The rate schedule starts again: every log point is 4 updates after a start, so at
    # 3e-3 halved once, where one schedule over the run would halve it 2, 3 and 4 times.
    assert [r["lr"] for r in _metrics(run_dir)] == pytest.approx([1.5e-3] * 4)
    # The last log point restarted too: the checkpoint holds the fresh start, whose Adam
    # has counted no update, for a resumed run with a raised budget to go on from.
    _assert_fresh_start(run_dir, _config(), 4)
    counts = [v for k, v in _tensors(run_dir).items() if k.startswith("optimizer/") and
              k.endswith("count")]
    assert counts and all(int(c) == 0 for c in counts)


def test_a_run_below_the_level_does_not_restart(tmp_path):
    summary = train_and_evaluate(_config(restart_above=1e9, sequences=32),
                                 tmp_path / "run").summary
    assert summary["restarts"] == []
    assert [r["lr"] for r in _metrics(tmp_path / "run")] == pytest.approx([1.5e-3, 7.5e-4])


def test_a_budget_that_ends_between_log_points_does_not_restart_there(tmp_path):
    # Log points at 16, 32 and, as the budget ends, 40: a run with a larger budget has none
    # at 40, so a restart there would not be one an uninterrupted run makes.
    summary = train_and_evaluate(_config(sequences=40), tmp_path / "run").summary
    assert [r["sequences"] for r in _metrics(tmp_path / "run")] == [16, 32, 40]
    assert [r["sequences"] for r in summary["restarts"]] == [16, 32]


def test_a_run_resumed_with_a_raised_budget_restarts_as_an_uninterrupted_one(restarted, tmp_path):
    whole, summary = restarted
    run_dir = tmp_path / "run"
    train_and_evaluate(_config(sequences=32), run_dir)
    resumed = train_and_evaluate(_config(sequences=64), run_dir, resume=True).summary
    assert resumed["restarts"] == summary["restarts"]
    assert _metrics(run_dir) == _metrics(whole)
    for name in (checkpoint.FILENAME, checkpoint.BEST):
        a, b = _tensors(whole, name), _tensors(run_dir, name)
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")


def test_each_member_of_a_population_restarts_from_weights_of_its_own_seed(tmp_path):
    configs = [_config(seed=seed, sequences=32) for seed in (0, 1)]
    runs = train_population(configs, tmp_path / "pop")
    for config, run in zip(configs, runs):
        member = tmp_path / "pop" / f"seed-{config.train.seed}"
        assert [r["sequences"] for r in run.summary["restarts"]] == [16, 32]
        assert [r["lr"] for r in _metrics(member)] == pytest.approx([1.5e-3] * 2)
        _assert_fresh_start(member, config, 2)


@pytest.mark.parametrize("above, message", [
    (0, "restart_after=16"), (-1.0, "restart_after=16"), (float("nan"), "restart_after=16"),
    ("high", "must be a number"), (True, "must be a number")])  # types are checked first
def test_restart_after_needs_a_level_above_zero(above, message):
    with pytest.raises(ConfigError, match=rf"train\.restart_above=.*{message}"):
        validate(tiny().replace(train=dict(restart_after=16, restart_above=above)))
