"""Tests for diffmem.tasks.copy: the copy task's exact layout (SPEC section 2), its lengths and
its command-line sizes.

Batches come from the session's ``samples`` fixture (conftest.py), which compiles the copy
sampler once per shape: batches of 4 at lengths 1 and 2, and of 16 from the training range.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffmem import tasks
from diffmem.tasks import Batch


@pytest.fixture
def copy():
    return tasks.get("copy")


def check_copy_sequence(inputs, targets, mask, L):
    """Assert SPEC's copy layout for one sequence of length L, padded to inputs.shape[0] steps."""
    T = inputs.shape[0]
    bits = inputs[:L, :8]
    # L data steps: the bits in channels 0-7, binary; delimiter channel 8 off.
    assert set(np.unique(bits)) <= {0.0, 1.0}
    np.testing.assert_array_equal(inputs[:L, 8], 0.0)
    # The delimiter step: channel 8 on, bits off.
    np.testing.assert_array_equal(inputs[L], [0.0] * 8 + [1.0])
    # Everything after the delimiter, padding included, is an all-zero input.
    np.testing.assert_array_equal(inputs[L + 1 :], 0.0)
    # Targets: the input vectors in order during steps L+1..2L, zero elsewhere.
    np.testing.assert_array_equal(targets[L + 1 : 2 * L + 1], bits)
    np.testing.assert_array_equal(targets[: L + 1], 0.0)
    np.testing.assert_array_equal(targets[2 * L + 1 :], 0.0)
    # The mask is 1 exactly at steps L+1..2L.
    expected_mask = np.zeros(T, np.float32)
    expected_mask[L + 1 : 2 * L + 1] = 1.0
    np.testing.assert_array_equal(mask, expected_mask)


@pytest.mark.parametrize("min_length,max_length", [(0, 5), (6, 5)])
def test_copy_with_invalid_length_range_raises_value_error(min_length, max_length):
    with pytest.raises(ValueError, match="min_length"):
        tasks.get("copy", min_length=min_length, max_length=max_length)


# ---------------------------------------------------------------------------------------------
# copy with a fixed length


@pytest.mark.parametrize("L", [1, 2])
def test_copy_sample_has_shapes_and_dtype_of_the_spec(L, samples):
    batch = samples.sampler("copy")(jax.random.key(0), 4, length=L)
    assert isinstance(batch, Batch)
    assert batch.inputs.shape == (4, 2 * L + 1, 9)
    assert batch.targets.shape == (4, 2 * L + 1, 8)
    assert batch.mask.shape == (4, 2 * L + 1)
    for x in batch:
        assert x.dtype == jnp.float32


@pytest.mark.parametrize("L", [1, 2])
def test_copy_sample_follows_the_exact_layout(L, samples):
    batch = samples("copy", 1, 4, length=L)
    for b in range(4):
        check_copy_sequence(batch.inputs[b], batch.targets[b], batch.mask[b], L)


def test_copy_layout_for_length_two_matches_a_hand_written_example(samples):
    batch = samples("copy", 2, 4, length=2)
    a, b = batch.inputs[0, 0, :8], batch.inputs[0, 1, :8]
    z8, z9 = np.zeros(8), np.zeros(9)
    np.testing.assert_array_equal(
        batch.inputs[0], [np.append(a, 0), np.append(b, 0), np.append(z8, 1), z9, z9]
    )
    np.testing.assert_array_equal(batch.targets[0], [z8, z8, z8, a, b])
    np.testing.assert_array_equal(batch.mask[0], [0, 0, 0, 1, 1])


def test_copy_data_bits_are_random_not_constant(samples):
    batch = samples("copy", 0, 16)
    bits = batch.inputs[:, :, :8][batch.inputs[:, :, :8].sum(-1) > 0]  # (steps with data, 8)
    assert 0.3 < bits.mean() < 0.7
    assert len({tuple(v) for v in bits}) > 10


@pytest.mark.parametrize("length", [0, -3])
def test_copy_sample_with_non_positive_length_raises_value_error(copy, length):
    with pytest.raises(ValueError, match="length"):
        copy.sample(jax.random.key(0), 2, length=length)


def test_copy_max_steps_without_length_is_41(copy):
    assert copy.max_steps() == 41


# ---------------------------------------------------------------------------------------------
# copy with length=None: lengths drawn per sequence, padded to the longest


def test_copy_sample_without_length_pads_to_41_steps(samples):
    batch = samples.sampler("copy")(jax.random.key(0), 16, length=None)
    assert batch.inputs.shape == (16, 41, 9)
    assert batch.targets.shape == (16, 41, 8)
    assert batch.mask.shape == (16, 41)
    for x in batch:
        assert x.dtype == jnp.float32


def test_copy_sample_without_length_lays_out_each_sequence_with_its_own_length(samples):
    batch = samples("copy", 3, 16)
    for b in range(16):
        L = int(np.argmax(batch.inputs[b, :, 8]))  # the delimiter step is step L
        assert 1 <= L <= 20
        assert batch.mask[b].sum() == L
        check_copy_sequence(batch.inputs[b], batch.targets[b], batch.mask[b], L)


def test_copy_padding_has_mask_zero_and_zero_inputs_and_targets(samples):
    batch = samples("copy", 4, 16)
    for b in range(16):
        L = int(batch.mask[b].sum())
        assert np.all(batch.mask[b, 2 * L + 1 :] == 0)
        assert np.all(batch.inputs[b, 2 * L + 1 :] == 0)
        assert np.all(batch.targets[b, 2 * L + 1 :] == 0)


def test_copy_training_lengths_cover_1_to_20(samples):
    # 64 batches of 16 from one compiled sampler: cheaper than compiling a batch of 1024.
    lengths = samples.pool("copy", 64, batch_size=16).mask.sum(1).astype(int)
    assert set(lengths) == set(range(1, 21))


# ---------------------------------------------------------------------------------------------
# determinism and jit


def test_copy_sample_with_the_same_key_gives_the_same_batch(samples):
    first = samples("copy", 7, 16)
    second = samples.sampler("copy")(jax.random.key(7), 16)
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)


def test_copy_sample_with_a_different_key_gives_a_different_batch(samples):
    first, second = samples("copy", 7, 16), samples("copy", 8, 16)
    assert not np.array_equal(first.inputs, second.inputs)


def test_copy_sample_under_jit_matches_eager_sampling(copy, samples):
    key = jax.random.key(9)
    jitted, eager = samples.sampler("copy")(key, 4, length=2), copy.sample(key, 4, length=2)
    for x, y in zip(jitted, eager):
        np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------------------------------------
# command-line sizes


def test_copy_parse_size_reads_a_length(copy):
    assert copy.parse_size("120") == {"length": 120}


@pytest.mark.parametrize("text", ["x", "0", "-3", "1.5"])
def test_copy_parse_size_rejects_non_positive_or_non_integer_text(copy, text):
    with pytest.raises(ValueError, match="copy length"):
        copy.parse_size(text)


def test_copy_eval_sizes_are_the_paper_generalisation_lengths(copy):
    assert [s["length"] for s in copy.eval_sizes] == [10, 20, 30, 50, 80, 120]


def test_copy_describe_size_names_the_length(copy):
    assert "120" in copy.describe_size({"length": 120})
