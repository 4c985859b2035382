import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import diffmem
import diffmem.training.loop as loop_module
from diffmem import checkpoint, rundir, tasks
from diffmem.models import build_model
from diffmem.tasks.copy import Copy
from diffmem.training import train_and_evaluate
from diffmem.training.evaluation import rank
from diffmem.training.optim import learning_rate, make_optimizer
from diffmem.training.state import TrainState
from diffmem.training.step import make_train_step


def _state(config):
    model = build_model(config)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = make_optimizer(config.train)
    return graphdef, rest, tx, TrainState(params, tx.init(params), jnp.zeros((), jnp.int32))


def test_one_train_step_updates_every_parameter(tiny_config):
    graphdef, rest, tx, state = _state(tiny_config)
    # Batch 4, as in a tiny run, so that the compiled program is shared.
    step = make_train_step(graphdef, rest, tasks.get("copy"), tx, 4)
    new, metrics = step(state, jax.random.key(0))
    assert int(new.step) == 1 and bool(metrics["finite"])
    for before, after in zip(jax.tree.leaves(state.params), jax.tree.leaves(new.params)):
        assert not np.allclose(before, after)


def test_short_training_on_short_copies_drives_the_loss_down(tiny_config):
    config = tiny_config.replace(train=dict(lr=1e-2))
    graphdef, rest, tx, state = _state(config)
    step = make_train_step(graphdef, rest, Copy(max_length=3), tx, 16)
    losses = []
    for _ in range(150):
        state, m = step(state, jax.random.key(0))
        losses.append(float(m["bits"]))
    # Chance is 1 bit per output bit (16 bits per sequence here); the run must beat it clearly.
    assert np.mean(losses[-20:]) < 0.75 * np.mean(losses[:20]), (losses[:5], losses[-5:])


def test_batches_are_a_function_of_seed_and_step(tiny_config):
    graphdef, rest, tx, state = _state(tiny_config)
    a = make_train_step(graphdef, rest, tasks.get("copy"), tx, 4)
    b = make_train_step(graphdef, rest, tasks.get("copy"), tx, 4)
    for x, y in zip(jax.tree.leaves(a(state, jax.random.key(5))),
                    jax.tree.leaves(b(state, jax.random.key(5)))):
        np.testing.assert_array_equal(x, y)
    other = a(state, jax.random.key(6))[1]["loss"]  # another seed, other batches
    assert other != a(state, jax.random.key(5))[1]["loss"]


def test_a_run_writes_config_metrics_checkpoint_summary_and_events(tiny_run, tiny_config):
    d, _ = tiny_run  # a finished train_and_evaluate(tiny_config)
    assert json.loads((d / "config.json").read_text()) == tiny_config.to_dict()
    lines = [json.loads(l) for l in (d / "metrics.jsonl").read_text().splitlines()]
    assert [l["sequences"] for l in lines] == [16, 32]
    for key in ("loss", "bits", "bit_errors", "val_bits", "sequences_per_second", "wall_seconds"):
        assert all(isinstance(l[key], float) for l in lines), key
    summary = json.loads((d / "summary.json").read_text())
    assert summary["sequences"] == 32 and summary["status"] == "budget: sequences"
    assert [g["size"]["length"] for g in summary["generalisation"]] == [10, 20, 30, 50, 80, 120]
    assert (d / checkpoint.FILENAME).exists() and (d / checkpoint.BEST).exists()
    assert not list(d.glob("*.tmp"))
    # The same validation points as TensorBoard scalars, against sequences seen.
    scalars = _tensorboard_scalars(d / "tensorboard")
    val = scalars["validation/bits_per_sequence"]
    assert [step for step, _ in val] == [16, 32]
    np.testing.assert_allclose([v for _, v in val], [l["val_bits"] for l in lines], rtol=1e-6)
    assert {"train/loss", "train/bits_per_sequence", "train/grad_norm",
            "validation/bit_errors_per_sequence", "speed/sequences_per_second"} <= set(scalars)


def test_a_run_returns_its_model_and_summary_as_loaded_from_its_directory(tmp_path,
                                                                          tiny_config):
    run = train_and_evaluate(tiny_config.replace(train=dict(sequences=16)), tmp_path)
    assert run.summary == json.loads((tmp_path / "summary.json").read_text())
    model, config = diffmem.load(tmp_path)
    assert config == tiny_config.replace(train=dict(sequences=16))
    x = tasks.get("copy").sample(jax.random.key(9), 2, length=5).inputs
    np.testing.assert_array_equal(model(x)[0], run.model(x)[0])


def test_the_best_log_point_is_kept_as_the_checkpoint_that_load_returns(tiny_run):
    d, model = tiny_run
    lines = rundir.read_metrics(d)
    summary = json.loads((d / "summary.json").read_text())
    best = summary["best"]
    labels = ["length 10", "length 30", "length 50", "length 120"]  # copy's generalisation check
    assert all(list(line["check"]) == labels for line in lines)
    assert [c["label"] for c in best["check"]] == labels
    # Untrained, no point meets the target: the best is the one with the fewest bits.
    chosen = min(lines, key=lambda line: line["val_bits"])
    assert best["sequences"] == chosen["sequences"]
    assert summary["validation"]["bits"] == pytest.approx(chosen["val_bits"])
    assert summary["last_validation"]["bits"] == pytest.approx(lines[-1]["val_bits"])
    header = checkpoint.read(d / checkpoint.BEST)[1]
    assert (header["step"], header["counters"]["sequences"]) == (best["step"], best["sequences"])


def test_resuming_writes_the_best_model_again_from_the_last_checkpoint(tiny_run, tiny_config,
                                                                       tmp_path):
    # As after a kill between the last checkpoint and the best model: the best file is lost.
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run[0], run_dir)
    before = checkpoint.read(run_dir / checkpoint.BEST)
    (run_dir / checkpoint.BEST).unlink()
    train_and_evaluate(tiny_config, run_dir, resume=True)  # finished: it trains no further
    after = checkpoint.read(run_dir / checkpoint.BEST)
    assert after[1]["best"] == before[1]["best"] and sorted(after[0]) == sorted(before[0])
    for name in before[0]:
        np.testing.assert_array_equal(after[0][name], before[0][name], err_msg=name)


def test_the_model_kept_is_the_best_points_not_the_last(tmp_path, tiny_config, monkeypatch):
    # A ranking under which every point is worse than the one before: the first is the best.
    places = iter(range(100))
    monkeypatch.setattr(loop_module, "rank", lambda *args: [float(next(places))])
    run = train_and_evaluate(tiny_config, tmp_path)
    lines = rundir.read_metrics(tmp_path)
    assert run.summary["best"]["sequences"] == lines[0]["sequences"] == 16
    assert run.summary["validation"]["bits"] == pytest.approx(lines[0]["val_bits"])
    assert run.summary["last_validation"]["bits"] == pytest.approx(lines[1]["val_bits"])
    model, _ = diffmem.load(tmp_path)
    x = tasks.get("copy").sample(jax.random.key(9), 2, length=5).inputs
    np.testing.assert_array_equal(model(x)[0], run.model(x)[0])
    # and it is not the last checkpoint's
    path = tmp_path / checkpoint.FILENAME
    last = checkpoint.restore_state(path, nnx.state(model), checkpoint.read(path)[0])
    assert any(not np.array_equal(a, b) for a, b in
               zip(jax.tree.leaves(last), jax.tree.leaves(nnx.state(model))))


def test_the_best_point_is_ranked_by_target_then_check_then_wrong_bits_then_bits():
    passed = lambda wrong: [{"passed": True, "wrong_bit_fraction": wrong}]  # noqa: E731
    failed = [{"passed": False, "wrong_bit_fraction": 0.001}]
    best_first = [rank(True, passed(0.0), 0.04), rank(True, passed(0.0), 0.045),
                  rank(True, passed(0.005), 0.01), rank(True, failed, 0.001),
                  rank(False, passed(0.0), 0.06), rank(False, failed, 0.07)]
    assert best_first == sorted(best_first)
    # Before the target, the check's figures do not count; nothing non-finite is stored.
    assert rank(False, failed, 0.5) == rank(False, passed(0.0), 0.5)
    assert all(np.isfinite(rank(True, [{"passed": False, "wrong_bit_fraction": float("nan")}],
                                float("nan"))))


@pytest.mark.parametrize("tolerance, status, points", [
    (1.0, "target reached", 1),  # the check passes at once
    (-1.0, "budget: sequences", 2),  # it never passes: train to the budget
    (None, "target reached", 1),  # no check (train.generalisation_val_size=0)
])
def test_early_stopping_waits_for_the_generalisation_check(tmp_path, tiny_config, tolerance,
                                                           status, points):
    class EasyCopy(Copy):
        target_bits = 1e9  # every validation point meets it
        generalisation_check = (({"length": 30}, tolerance or 0.0),)

    tasks.register("easy-copy-check", EasyCopy)
    try:
        config = tiny_config.replace(task="easy-copy-check", train=dict(
            patience=1, tensorboard=False, generalisation_val_size=0 if tolerance is None else 4))
        summary = train_and_evaluate(config, tmp_path).summary
    finally:
        tasks._REGISTRY.pop("easy-copy-check", None)
    assert summary["status"] == status
    assert len(rundir.read_metrics(tmp_path)) == points
    assert summary["best"]["passed"] is (tolerance != -1.0)
    assert len(summary["best"]["check"]) == (0 if tolerance is None else 1)


def test_a_second_run_in_the_same_directory_is_refused(tiny_run, tiny_config):
    run_dir, _ = tiny_run
    with pytest.raises(checkpoint.CheckpointError, match="--resume"):
        train_and_evaluate(tiny_config, run_dir)


def test_resumed_run_matches_an_uninterrupted_one(tmp_path, tiny_config):
    # With the plateau rule on, so that its state (best loss, counts, scale) is resumed too.
    tiny_config = tiny_config.replace(train=dict(lr_plateau_factor=0.5, lr_plateau_patience=1,
                                                 eval_every=8))
    whole = train_and_evaluate(tiny_config, tmp_path / "whole")
    train_and_evaluate(tiny_config.replace(train=dict(sequences=16)), tmp_path / "split")
    resumed = train_and_evaluate(tiny_config, tmp_path / "split", resume=True)
    a = nnx.state(whole.model, nnx.Param)
    b = nnx.state(resumed.model, nnx.Param)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
    def untimed(run_dir):
        return [{k: v for k, v in r.items() if "second" not in k}
                for r in rundir.read_metrics(run_dir)]

    assert untimed(tmp_path / "whole") == untimed(tmp_path / "split")
    whole_tb = _tensorboard_scalars(tmp_path / "whole" / "tensorboard")
    split_tb = _tensorboard_scalars(tmp_path / "split" / "tensorboard")
    assert whole_tb["validation/bits_per_sequence"] == split_tb["validation/bits_per_sequence"]


def test_the_rate_falls_when_the_training_loss_stops_improving(tiny_config):
    t = tiny_config.replace(train=dict(lr=1e-3, lr_min=2e-4, lr_plateau_factor=0.5,
                                       lr_plateau_patience=1, eval_every=8,
                                       batch_size=4)).train  # a stretch is 2 updates
    tx = make_optimizer(t)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    rates = []
    for loss in [5, 5, 4, 4] + [4] * 16:  # two stretches improving, then none
        _, state = tx.update({"w": jnp.ones(3)}, state, params, value=jnp.float32(loss))
        rates.append(learning_rate(t, state, 0))
    assert rates[:4] == [1e-3] * 4
    assert rates[-1] == pytest.approx(2e-4)  # halved, halved again, then held at lr_min
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert 5e-4 in [pytest.approx(r) for r in rates]


def test_a_run_logs_its_learning_rate_and_tensorboard_can_be_off(tmp_path, tiny_config):
    config = tiny_config.replace(train=dict(lr_half_life=16, lr_min=1e-4, tensorboard=False))
    train_and_evaluate(config, tmp_path)
    rates = [json.loads(l)["lr"] for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rates == pytest.approx([3e-3 / 2, 3e-3 / 4])  # after 16 and 32 sequences
    assert not (tmp_path / "tensorboard").exists()


def test_resuming_with_a_different_model_is_refused(tiny_run, tiny_config):
    run_dir, _ = tiny_run
    other = tiny_config.replace(model=dict(controller_size=8))
    with pytest.raises(checkpoint.CheckpointError, match="different configuration"):
        train_and_evaluate(other, run_dir, resume=True)


def _tensorboard_scalars(log_dir):
    """{tag: [(step, value), ...]} from the event files under ``log_dir``, in the order
    written, dropping the points a resumed run purged (as TensorBoard does)."""
    import struct

    from tensorboardX.proto.event_pb2 import Event, SessionLog

    scalars = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        data, at = path.read_bytes(), 0
        while at < len(data):  # TFRecord: length, its CRC, the record, its CRC
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = Event.FromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            if event.session_log.status == SessionLog.START:  # a resumed run's purge
                scalars = {tag: [(step, v) for step, v in points if step < event.step]
                           for tag, points in scalars.items()}
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars
