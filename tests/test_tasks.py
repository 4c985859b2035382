"""Tests for diffmem.tasks and diffmem.tasks.base: the registry and what every task promises
(SPEC section 2): its widths, batch shapes and dtypes, deterministic and jit-compatible
sampling, zero targets off the mask, and its target. Each task's own layout is tested in
test_task_<name>.py.

Batches come from the session's ``samples`` fixture (conftest.py): one compiled sampler per
task, shared with the per-task files.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffmem import tasks
from diffmem.tasks import Batch, Task

# name -> (input_size, output_size, T of a training batch)
EXPECTED = {
    "copy": (9, 8, 2 * 20 + 1),
    "repeat-copy": (10, 9, 10 + 2 + 10 * 10 + 1),
    "associative-recall": (8, 6, 4 * 6 + 8),
    "dynamic-ngrams": (1, 1, 200),
    "priority-sort": (10, 8, 20 + 1 + 16),
}
NAMES = list(EXPECTED)


# ---------------------------------------------------------------------------------------------
# registry


def test_names_lists_the_papers_five_tasks_in_the_papers_order():
    assert tasks.names()[:5] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_registry_builds_the_task_with_its_name_and_widths(name):
    task = tasks.get(name)
    assert isinstance(task, Task)
    assert name in tasks.names()
    assert task.name == name
    assert (task.input_size, task.output_size) == EXPECTED[name][:2]


def test_get_unknown_task_raises_value_error_listing_known_tasks():
    with pytest.raises(ValueError, match="copy") as info:
        tasks.get("nope")
    assert "nope" in str(info.value)


def test_get_passes_keyword_arguments_to_the_task():
    task = tasks.get("copy", min_length=3, max_length=4)
    assert (task.min_length, task.max_length) == (3, 4)


# ---------------------------------------------------------------------------------------------
# every task: shapes, dtypes, determinism, jit, padding


@pytest.mark.parametrize("name", NAMES)
def test_training_batch_has_spec_shapes_and_float32(name, samples):
    c_in, c_out, T = EXPECTED[name]
    batch = samples.sampler(name)(jax.random.key(0), 4)
    assert isinstance(batch, Batch)
    assert batch.inputs.shape == (4, T, c_in)
    assert batch.targets.shape == (4, T, c_out)
    assert batch.mask.shape == (4, T)
    for x in batch:
        assert x.dtype == jnp.float32
    assert tasks.get(name).max_steps() == T


@pytest.mark.parametrize("name", NAMES)
def test_sample_is_deterministic_for_a_key_and_differs_across_keys(name, samples):
    first = samples(name, 5)
    second = Batch(*map(np.asarray, samples.sampler(name)(jax.random.key(5), 4)))
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)
    other = samples(name, 6)
    assert not np.array_equal(first.inputs, other.inputs)


# (Copy's, at a fixed length, is in test_task_copy.py.)
@pytest.mark.parametrize("name", NAMES[1:])
def test_sample_is_jit_compatible_and_agrees_with_eager_sampling(name, samples):
    # jax.jit(task.sample) traces (no Python control flow on traced values), and gives the
    # batch that eager sampling (what the figures use) gives for the same key.
    jitted = samples(name, 11)
    eager = tasks.get(name).sample(jax.random.key(11), 4)
    for x, y in zip(jitted, eager):
        np.testing.assert_allclose(x, np.asarray(y), rtol=1e-6, atol=1e-7)
    assert jitted.mask.sum() > 0


@pytest.mark.parametrize("name", ["copy", "repeat-copy", "associative-recall", "priority-sort"])
def test_targets_are_zero_wherever_mask_is_zero(name, samples):
    for seed in (0, 1):
        batch = samples(name, seed)
        assert set(np.unique(batch.mask)) <= {0.0, 1.0}
        np.testing.assert_array_equal(batch.targets[batch.mask == 0], 0.0)
        assert batch.mask.sum() > 0


# ---------------------------------------------------------------------------------------------
# Task.target


@pytest.mark.parametrize("name,bits", [("copy", 0.05), ("repeat-copy", 0.1),
                                       ("associative-recall", 0.1), ("priority-sort", 20.0)])
def test_fixed_target_tasks_return_their_target_bits(name, bits):
    task = tasks.get(name)
    assert task.target_bits == bits
    assert task.target() == bits
    assert task.target(123.0) == bits  # an optimum does not move a fixed target
