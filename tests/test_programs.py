"""diffmem.programs: runs of equal settings share compiled programs, and only those do."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from diffmem import programs, tasks
from diffmem.config import RESUMABLE_TRAIN_FIELDS
from diffmem.training import loop, step


def test_only_the_fields_that_shape_the_update_tell_two_runs_apart(tiny_config):
    t = tiny_config.train
    same = [dict(seed=7), dict(sequences=999, minutes=3.0), dict(val_size=3, eval_count=2),
            dict(generalisation_val_size=0, tensorboard=False, on_nonfinite="stop"),
            dict(restart_after=8, restart_above=1.0), dict(collapse_above=10.0)]
    for change in same:
        assert step.update_settings(t.__class__(**{**t.__dict__, **change})) == \
            step.update_settings(t), change
    other = [dict(lr=1e-4), dict(batch_size=2), dict(optimizer="rmsprop"), dict(grad_clip=1.0),
             dict(grad_clip_mode="value"),
             dict(eval_every=8)]  # eval_every: the plateau rule's stretch
    for change in other:
        assert step.update_settings(t.__class__(**{**t.__dict__, **change})) != \
            step.update_settings(t), change
    assert set(RESUMABLE_TRAIN_FIELDS) <= set(step._NOT_IN_UPDATE)


def test_fingerprints_and_task_identities_differ_where_programs_would():
    a = {"memory": jnp.zeros((4, 3)), "key": jax.random.key(0)}
    assert programs.fingerprint(a) == programs.fingerprint(
        {"memory": jnp.zeros((4, 3)), "key": jax.random.key(0)})
    assert programs.fingerprint(a) != programs.fingerprint({**a, "memory": jnp.ones((4, 3))})
    assert programs.fingerprint(a) != programs.fingerprint({**a, "key": jax.random.key(1)})
    assert programs.fingerprint(a) != programs.fingerprint({**a, "memory": jnp.zeros((3, 4))})
    assert programs.shapes(a) == programs.shapes({**a, "memory": jnp.ones((4, 3))})
    ngrams = tasks.get("dynamic-ngrams")
    assert ngrams.identity() == tasks.get("dynamic-ngrams").identity()
    assert ngrams.identity() != tasks.get("dynamic-ngrams", length=24).identity()
    assert ngrams.identity() != tasks.get("copy").identity()


def test_the_least_recently_used_programs_go_first(monkeypatch):
    monkeypatch.setattr(programs, "_programs", programs.OrderedDict())
    monkeypatch.setattr(programs, "SIZE", 2)
    built = []
    for key in ("a", "b", "a", "c", "a", "b"):
        programs.get(key, lambda key=key: built.append(key) or key)
    assert built == ["a", "b", "c", "b"]  # "b" was the least recent when "c" came


def test_a_second_run_reuses_the_update_and_trains_as_a_fresh_one(tiny_config, tmp_path,
                                                                  monkeypatch):
    built = []
    make = loop.make_train_step
    monkeypatch.setattr(loop, "make_train_step", lambda *a, **k: built.append(1) or make(*a, **k))
    config = tiny_config.replace(train=dict(sequences=16, eval_every=16))
    loop.train_and_evaluate(config, tmp_path / "first")
    reused = loop.train_and_evaluate(config.replace(train=dict(seed=3)), tmp_path / "second")
    kept = len(built)
    assert kept <= 1  # none where an earlier test of this process trained tiny_config
    monkeypatch.setattr(programs, "_programs", programs.OrderedDict())  # nothing kept
    fresh = loop.train_and_evaluate(config.replace(train=dict(seed=3)), tmp_path / "third")
    assert len(built) == kept + 1
    for x, y in zip(jax.tree.leaves(nnx.state(reused.model, nnx.Param)),
                    jax.tree.leaves(nnx.state(fresh.model, nnx.Param))):
        np.testing.assert_array_equal(x, y)
