"""Tests for diffmem.tasks.repeat_copy: the repeat-copy task's layout (SPEC section 2), its
training distribution and its command-line sizes.

The expected arrays are built independently: the random content is read back out of a sampled
batch, and the expected inputs, targets and mask are rebuilt from it with plain loops that
follow SPEC step by step. A layout mistake anywhere (a misplaced delimiter, a wrong count, a
shifted mask) makes the rebuilt arrays disagree with the sampled ones. Batches come from the
session's ``samples`` fixture (conftest.py).
"""

import math

import jax
import numpy as np
import pytest

from diffmem import tasks

RC = tasks.get("repeat-copy")
COUNT_STD = math.sqrt(8.25)


def expected_repeat_copy(vectors, R, T):
    """SPEC's repeat-copy layout for one sequence, built step by step."""
    L = len(vectors)
    inputs = np.zeros((T, 10), np.float32)
    targets = np.zeros((T, 9), np.float32)
    mask = np.zeros(T, np.float32)
    t = 0
    for v in vectors:  # L data steps
        inputs[t, :8] = v
        t += 1
    inputs[t, 8] = 1.0  # the delimiter step
    t += 1
    inputs[t, 9] = (R - 5.5) / COUNT_STD  # the count step
    t += 1
    for _ in range(R):  # L*R all-zero input steps with the copies as targets
        for v in vectors:
            targets[t, :8] = v
            mask[t] = 1.0
            t += 1
    targets[t, 8] = 1.0  # the end-marker step
    mask[t] = 1.0
    t += 1
    assert t == L + 2 + L * R + 1
    return inputs, targets, mask  # steps t..T-1 stay zero: padding


def recover_repeat_copy(inputs):
    """Read L, R and the data vectors back out of one sequence's inputs."""
    L = int(np.argmax(inputs[:, 8]))  # the delimiter step is step L
    count = float(inputs[L + 1, 9])
    R = int(round(count * COUNT_STD + 5.5))
    return L, R, count, inputs[:L, :8]


def check_repeat_copy(batch, lengths=None, repeats=None):
    """Every sequence of the batch matches the hand-built layout; returns the (L, R) found."""
    B, T, _ = batch.inputs.shape
    found = []
    for b in range(B):
        L, R, count, vectors = recover_repeat_copy(batch.inputs[b])
        assert batch.inputs[b, :, 8].sum() == 1.0  # exactly one delimiter
        np.testing.assert_allclose(count, (R - 5.5) / COUNT_STD, rtol=1e-6)
        assert set(np.unique(vectors)) <= {0.0, 1.0}
        if lengths is not None:
            assert L == lengths
        if repeats is not None:
            assert R == repeats
        inputs, targets, mask = expected_repeat_copy(vectors, R, T)
        np.testing.assert_allclose(batch.inputs[b], inputs, rtol=1e-6, atol=0)
        np.testing.assert_array_equal(batch.targets[b], targets)
        np.testing.assert_array_equal(batch.mask[b], mask)
        # Mask exactly on the last L*R + 1 steps of the (unpadded) sequence.
        end = L + 2 + L * R + 1
        assert batch.mask[b].sum() == L * R + 1
        np.testing.assert_array_equal(batch.mask[b, end - (L * R + 1) : end], 1.0)
        # Padding: mask 0, all-zero inputs and targets.
        np.testing.assert_array_equal(batch.mask[b, end:], 0.0)
        np.testing.assert_array_equal(batch.inputs[b, end:], 0.0)
        np.testing.assert_array_equal(batch.targets[b, end:], 0.0)
        found.append((L, R))
    return found


@pytest.mark.parametrize("L,R", [(2, 2), (20, 10), (1, 20)])
def test_repeat_copy_fixed_sizes_follow_the_layout(L, R, samples):
    batch = samples("repeat-copy", L * 100 + R, 4, length=L, repeats=R)
    T = L + 2 + L * R + 1
    assert batch.inputs.shape == (4, T, 10)
    assert batch.targets.shape == (4, T, 9)
    assert batch.mask.shape == (4, T)
    assert RC.max_steps(length=L, repeats=R) == T
    check_repeat_copy(batch, lengths=L, repeats=R)


def test_repeat_copy_two_by_two_matches_the_docstring_picture(samples):
    batch = samples("repeat-copy", 3, 4, length=2, repeats=2)
    a, b = batch.inputs[0, 0, :8], batch.inputs[0, 1, :8]
    n = (2 - 5.5) / COUNT_STD
    z8 = np.zeros(8)
    np.testing.assert_allclose(batch.inputs[0], [
        [*a, 0, 0], [*b, 0, 0], [*z8, 1, 0], [*z8, 0, n],
        [0] * 10, [0] * 10, [0] * 10, [0] * 10, [0] * 10,
    ], rtol=1e-6)
    np.testing.assert_array_equal(batch.targets[0], [
        [0] * 9, [0] * 9, [0] * 9, [0] * 9, [*a, 0], [*b, 0], [*a, 0], [*b, 0], [*z8, 1],
    ])
    np.testing.assert_array_equal(batch.mask[0], [0, 0, 0, 0, 1, 1, 1, 1, 1])


def test_repeat_copy_count_channel_keeps_its_scale_beyond_the_training_range(samples):
    batch = samples("repeat-copy", 4, 4, length=1, repeats=20)
    np.testing.assert_allclose(batch.inputs[:, 2, 9], (20 - 5.5) / COUNT_STD, rtol=1e-6)


def test_repeat_copy_training_draws_length_and_repeats_per_sequence_in_1_to_10(samples):
    batch = samples.pool("repeat-copy", 64)  # 256 sequences
    assert batch.inputs.shape == (256, 113, 10)
    found = np.array(check_repeat_copy(batch))
    assert set(found[:, 0]) == set(range(1, 11))
    assert set(found[:, 1]) == set(range(1, 11))
    # L and R are drawn independently, not tied to each other.
    assert len({tuple(x) for x in found}) > 50


def test_repeat_copy_training_batch_of_four_follows_the_layout(samples):
    check_repeat_copy(samples("repeat-copy"))


def test_repeat_copy_parse_size_reads_length_x_repeats():
    assert RC.parse_size("20x10") == {"length": 20, "repeats": 10}
    assert RC.parse_size("10x20") == {"length": 10, "repeats": 20}


@pytest.mark.parametrize("text", ["20", "0x3", "3x0", "ax2", "2x", "1x2x3", ""])
def test_repeat_copy_parse_size_rejects_bad_text(text):
    with pytest.raises(ValueError):
        RC.parse_size(text)


@pytest.mark.parametrize("sizes", [{"length": 0, "repeats": 2}, {"length": 2, "repeats": 0},
                                   {"length": 0}])
def test_repeat_copy_sample_with_non_positive_size_raises(sizes):
    with pytest.raises(ValueError):
        RC.sample(jax.random.key(0), 2, **sizes)
