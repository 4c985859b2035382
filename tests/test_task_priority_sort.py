"""Tests for diffmem.tasks.priority_sort: the priority-sort task's layout (SPEC section 2) and
the order of its targets.

The expected arrays are rebuilt from the vectors and priorities read back out of a sampled
batch with plain loops that follow SPEC (see test_task_repeat_copy.py). Batches come from the
session's ``samples`` fixture (conftest.py).
"""

import numpy as np
import pytest

from diffmem import tasks

PS = tasks.get("priority-sort")


def expected_priority_sort(vectors, priorities):
    """SPEC's priority-sort layout for one sequence, built step by step."""
    T = 20 + 1 + 16
    inputs = np.zeros((T, 10), np.float32)
    targets = np.zeros((T, 8), np.float32)
    mask = np.zeros(T, np.float32)
    for t in range(20):
        inputs[t, :8] = vectors[t]
        inputs[t, 8] = priorities[t]
    inputs[20, 9] = 1.0
    order = np.argsort(-priorities, kind="stable")  # highest priority first
    for i in range(16):
        targets[21 + i] = vectors[order[i]]
        mask[21 + i] = 1.0
    return inputs, targets, mask


def check_priority_sort(batch):
    for b in range(batch.inputs.shape[0]):
        x = batch.inputs[b]
        vectors, priorities = x[:20, :8], x[:20, 8]
        assert set(np.unique(vectors)) <= {0.0, 1.0}
        assert np.all((-1.0 <= priorities) & (priorities <= 1.0))
        assert len(set(priorities.tolist())) == 20  # distinct: the order is well defined
        inputs, targets, mask = expected_priority_sort(vectors, priorities)
        np.testing.assert_array_equal(x, inputs)
        np.testing.assert_array_equal(batch.targets[b], targets)
        np.testing.assert_array_equal(batch.mask[b], mask)


def test_priority_sort_follows_the_layout(samples):
    batch = samples("priority-sort")
    assert batch.inputs.shape == (4, 37, 10)
    check_priority_sort(batch)
    np.testing.assert_array_equal(batch.mask, np.repeat([[0] * 21 + [1] * 16], 4, axis=0))


def test_priority_sort_large_batch_has_distinct_uniform_priorities_and_sorted_targets(samples):
    batch = samples.pool("priority-sort", 64)  # 256 sequences
    check_priority_sort(batch)
    priorities = batch.inputs[:, :20, 8]
    assert priorities.min() < -0.99 and priorities.max() > 0.99
    assert abs(priorities.mean()) < 0.03
    assert 0.2 < np.mean(priorities > 0.5) < 0.3  # uniform: P(p > 0.5) = 1/4


def test_priority_sort_targets_are_the_top_16_in_descending_priority(samples):
    # A second, different check of the order: each answer step's vector has the highest
    # priority among the inputs not yet emitted.
    batch = samples("priority-sort", 1)
    for b in range(4):
        remaining = list(range(20))
        for i in range(16):
            best = max(remaining, key=lambda r: batch.inputs[b, r, 8])
            np.testing.assert_array_equal(batch.targets[b, 21 + i], batch.inputs[b, best, :8])
            remaining.remove(best)


def test_priority_sort_parse_size_raises():
    with pytest.raises(ValueError, match="no size controls"):
        PS.parse_size("20")
