"""Populations: many runs in one compiled update, each member as its own single run would be,
alone in its early stop, its non-finite steps and its rollbacks, and resumable as a whole."""

import json
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import diffmem
from conftest import tiny
from diffmem import checkpoint, tasks
from diffmem.cli import main
from diffmem.config import ConfigError
from diffmem.models import build_model
from diffmem.training import Reporter, loop, population
from diffmem.training.optim import make_optimizer
from diffmem.training.population import member_configs, train_population
from diffmem.training.state import TrainState
from diffmem.training.step import compile_step, data_key, make_train_step
from test_resilience import _CopyWithNaNs, _first_poisoned_update, _nan_config


def _state(config):
    model = build_model(config)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = make_optimizer(config.train)
    zero = jnp.zeros((), jnp.int32)
    return graphdef, rest, TrainState(params, tx.init(params), zero, zero)


def _close(a, b):
    # Float32 rounding differs between the programs; Adam divides each gradient by its running
    # RMS, which carries a rounding difference of a near-zero gradient into the update at up
    # to the rate's scale (1e-2 here), so parameters agree to a small fraction of one step:
    # 2e-4, 2% of a step (a clean install has differed by 1.1e-4 in one of 576 weights).
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=2e-4)


def test_members_compute_what_each_computes_alone_and_a_stopped_one_stays():
    """Two members (other seeds, other rates) against single runs on three updates; then
    with the first member masked (stopped) or its loss non-finite, the second goes on as
    alone and the first does not change."""
    base = _population_config()  # whose first NaN batch is update 14
    configs = member_configs(base, [0, 1], lrs=None)
    configs[1] = configs[1].replace(train={"lr": 1e-2})
    task = tasks.get(TASK)
    singles, losses = [], []
    for c in configs:
        graphdef, rest, state = _state(c)
        step = make_train_step(graphdef, rest, task, make_optimizer(c.train), 4)
        for _ in range(3):
            state, m = step(state, data_key(c.train.seed))
            losses.append(float(m["loss"]))
        singles.append(state)

    graphdef, rest, _ = _state(base)
    states = population.stack([_state(c)[2] for c in configs])
    keys = jnp.stack([data_key(c.train.seed) for c in configs])
    lrs = jnp.asarray([c.train.lr for c in configs], jnp.float32)
    on = jnp.ones((2,), bool)
    # Compiled as train_population compiles it, so that the suite compiles it once.
    step = compile_step(population.make_population_step(graphdef, rest, task, base.train, 2),
                        states, keys, lrs, on, batch_size=4, members=2)
    member_losses = []
    for _ in range(3):
        states, metrics = step(states, keys, lrs, on)
        member_losses.append(np.asarray(metrics["loss"]))
    # The same batches: the same losses to rounding, each member its own.
    np.testing.assert_allclose(np.stack(member_losses).T.ravel(), losses, rtol=1e-5)
    for k in range(2):
        _close(population.member(states, k), singles[k])

    # Member 0 stopped: masked, it keeps its state; member 1 takes one more update.
    before = states
    after, _ = step(states, keys, lrs, jnp.asarray([False, True]))
    jax.tree.map(np.testing.assert_array_equal, population.member(after, 0),
                 population.member(before, 0))
    assert int(population.member(after, 1).step) == 4
    # Member 0's loss non-finite: its update is skipped and reported, member 1's is the same
    # as with member 0 finite.
    poisoned = before._replace(params=jax.tree.map(
        lambda p: p.at[0].set(jnp.full(p.shape[1:], jnp.nan)), before.params))
    bad, m = step(poisoned, keys, lrs, on)
    assert not bool(m["finite"][0]) and bool(m["finite"][1])
    good, _ = step(before, keys, lrs, on)
    jax.tree.map(np.testing.assert_array_equal, population.member(bad, 1),
                 population.member(good, 1))
    assert int(population.member(bad, 0).step) == 4  # counted, not applied
    jax.tree.map(np.testing.assert_array_equal, population.member(bad, 0)[:2],
                 population.member(poisoned, 0)[:2])


# The populations below train copy with a NaN in about 3% of their batches (test_resilience's
# task), so that every run also rolls back, and a final evaluation at one short length.
TASK = "copy-with-nans-population"
SEQUENCES = 400  # 100 updates per member; log points every 16
FIRST_EVENTS = {0: 14, 1: 80}  # the first poisoned update of each seed's batches


@pytest.fixture(scope="module", autouse=True)
def nan_copy():
    tasks.register(TASK, _CopyWithNaNs)
    yield
    tasks._REGISTRY.pop(TASK, None)


def _population_config():
    return _nan_config(TASK, sequences=SEQUENCES, max_rollbacks=20)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("whole")
    train_population(member_configs(_population_config(), [0, 1]), run_dir)
    return run_dir


def test_a_members_rollbacks_are_its_own(whole):
    """Each member meets the non-finite batches of its own seed's stream, is rolled back alone
    (to its own log point, onto its own next stream) and goes on to the end of its budget."""
    config = _population_config()
    for seed in (0, 1):
        assert _first_poisoned_update(config.replace(train={"seed": seed})) == FIRST_EVENTS[seed]
        summary = json.loads((whole / f"seed-{seed}" / "summary.json").read_text())
        events = summary["nonfinite_events"]
        first = FIRST_EVENTS[seed]
        assert events[0] == {"update": first, "quantity": "loss", "sequences": first * 4}
        assert summary["rollbacks"] == len(events)
        assert summary["status"] == "budget: sequences" and summary["sequences"] == SEQUENCES
        points = [p["sequences"] for p in _untimed(whole / f"seed-{seed}")]
        assert points == [*range(64, SEQUENCES, 64), SEQUENCES]  # one curve each


class _Crash(RuntimeError):
    pass


class _StopAt(Reporter):
    """Crashes (as a kill would: files as the last checkpoint left them) or sends SIGINT once
    the population has trained ``sequences`` sequences in all."""

    def __init__(self, sequences, how):
        self.at, self.how, self.seen = sequences, how, 0

    def start(self, configs, names, parameters, sequences, compile_seconds, seconds=0.0):
        self.seen = sequences

    def advance(self, sequences):
        self.seen += sequences
        if self.seen == self.at:
            if self.how == "kill":
                raise _Crash
            os.kill(os.getpid(), signal.SIGINT)


def _same(a, b):
    for name in ("seed-0", "seed-1"):
        for file in (checkpoint.FILENAME, checkpoint.BEST):
            ta, ha = checkpoint.read(a / name / file)
            tb, hb = checkpoint.read(b / name / file)
            assert ha["step"] == hb["step"] and sorted(ta) == sorted(tb)
            for key in ta:
                np.testing.assert_array_equal(ta[key], tb[key], err_msg=f"{name} {key}")
        assert _untimed(a / name) == _untimed(b / name)


def _untimed(run_dir):
    return [{k: v for k, v in json.loads(line).items() if "second" not in k}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_a_killed_or_interrupted_population_resumes_exactly(whole, tmp_path, how):
    """Stopped at update 30, between log points and after seed 0's first rollback."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(_Crash if how == "kill" else KeyboardInterrupt):
            train_population(member_configs(_population_config(), [0, 1]), tmp_path,
                             reporter=_StopAt(2 * 4 * 30, how))
    finally:
        signal.signal(signal.SIGINT, previous)
    _, header = checkpoint.read(tmp_path / "seed-1" / checkpoint.FILENAME)
    assert header["status"] == ("running" if how == "kill" else "interrupted")
    assert not (tmp_path / "seed-1" / "summary.json").exists()
    runs = train_population(population.population_configs(tmp_path), tmp_path, resume=True)
    assert [r.summary["sequences"] for r in runs] == [SEQUENCES] * 2
    _same(whole, tmp_path)


def test_a_member_that_stops_early_leaves_the_others_alone(whole, monkeypatch, tmp_path):
    """Member seed 0 meets its (forced) target at its second log point and stops there; seed 1
    trains on to its budget, in an update compiled for it alone, as it does beside seed 0."""
    stop_reason = loop.stop_reason
    monkeypatch.setattr(loop, "stop_reason", lambda t, state, out: (
        "target reached" if t.seed == 0 and state.sequences >= 128 else stop_reason(t, state, out)))
    runs = train_population(member_configs(_population_config(), [0, 1]), tmp_path)
    assert [r.summary["status"] for r in runs] == ["target reached", "budget: sequences"]
    assert [r.summary["sequences"] for r in runs] == [128, SEQUENCES]
    assert _untimed(tmp_path / "seed-0") == _untimed(whole / "seed-0")[:2]
    alone, beside = _untimed(tmp_path / "seed-1"), _untimed(whole / "seed-1")
    assert alone[:2] == beside[:2]  # the same program until seed 0 stopped
    for a, b in zip(alone[2:], beside[2:], strict=True):  # then another, the same arithmetic
        assert a["sequences"] == b["sequences"]
        assert a["val_bits"] == pytest.approx(b["val_bits"], rel=1e-3)
    assert runs[1].summary["nonfinite_events"] == json.loads(
        (whole / "seed-1" / "summary.json").read_text())["nonfinite_events"]
    # Each member's directory is a run like any other.
    model, loaded = diffmem.load(tmp_path / "seed-0")
    assert loaded.train.seed == 0 and runs[0].summary["population"]["members"] == 2
    with pytest.raises(checkpoint.CheckpointError, match="holds a population.*seed-1"):
        diffmem.load(tmp_path)
    lr = _population_config().train.lr
    assert json.loads((tmp_path / "population.json").read_text())["members"] == [
        {"dir": "seed-0", "seed": 0, "lr": lr}, {"dir": "seed-1", "seed": 1, "lr": lr}]


def test_members_differ_only_in_seed_and_rate():
    with pytest.raises(ConfigError, match="differ only in train.seed and train.lr"):
        population.check_population([tiny(), tiny().replace(train={"seed": 1,
                                                                   "batch_size": 8})])
    with pytest.raises(ConfigError, match="repeat"):
        member_configs(tiny(), [0, 0])


@pytest.mark.parametrize("argv, expected", [
    (["--seeds", "3-1"], "--seeds '3-1' must list distinct seeds"),
    (["--seeds", "0,0"], "--seeds '0,0' must list distinct seeds"),
    (["--seeds", "0-1", "--seed", "2"], "give --seed for one run or --seeds"),
    (["--set", "model.memory_rows=16,32"], "only train.lr may take several values"),
    (["--set", "train.lr=1e-3,fast"], "the rates must be numbers"),
])
def test_population_options_are_checked_before_any_work(argv, expected, capsys, tmp_path):
    assert main(["train", "copy", *argv, "--run-dir", str(tmp_path / "run")]) == 2
    assert expected in " ".join(capsys.readouterr().out.split())
    assert not (tmp_path / "run").exists()


def test_a_population_of_rates_from_the_command_line(tmp_path, capsys, monkeypatch):
    """`--seeds` with `--set train.lr=R1,R2`: every seed at every rate, each member a run
    that `diffmem eval` reads."""
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))  # restored afterwards
    like_population_config = [
        "--set", "model.controller_size=16", "--set", "model.memory_rows=16",
        "--set", "model.memory_width=6", "--batch-size", "4", "--sequences", "64",
        "--set", "train.eval_every=64", "--set", "train.val_size=8", "--set",
        "train.eval_count=4", "--set", "train.generalisation_val_size=0", "--no-tensorboard"]
    assert main(["train", TASK, "--seeds", "0", "--set", "train.lr=1e-3,3e-3",
                 *like_population_config, "--run-dir", str(tmp_path / "pop")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "a population of 2 members" in out and "lr-0.003-seed-0" in out
    summary = json.loads((tmp_path / "pop" / "lr-0.003-seed-0" / "summary.json").read_text())
    assert summary["lr"] == 3e-3 and summary["seed"] == 0
    assert main(["eval", str(tmp_path / "pop" / "lr-0.001-seed-0"), "--sizes", "5",
                 "--count", "4"]) == 0
    # The population ran with one XLA thread (set for the command, before JAX's backend).
    assert "intra_op_parallelism_threads=1" in os.environ["XLA_FLAGS"]


def test_the_benchmark_times_populations_and_counts_every_members_sequences():
    from diffmem.bench import benchmark

    config = tiny()
    rows = benchmark([1], seconds=0.2, length=3, config=config, populations=[2])
    (row,) = rows
    assert row["population"] == 2 and row["batch_size"] == 1
    assert row["sequences_per_second"] == pytest.approx(2 * row["updates_per_second"])
    assert not row["ynn_fusions"]  # off in every population on a CPU
