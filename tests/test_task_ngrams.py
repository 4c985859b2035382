"""Tests for diffmem.tasks.ngrams: the dynamic N-grams task's layout (SPEC section 2), the
process that generates its bits, and its Bayes-optimal predictor.

Batches come from the session's ``samples`` fixture (conftest.py).
"""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from diffmem import tasks
from diffmem.tasks import Batch

NG = tasks.get("dynamic-ngrams")


# ---------------------------------------------------------------------------------------------
# layout and the generating process


@pytest.fixture(scope="module")
def big(samples):
    """A fixed, seeded batch of 1000 default sequences (200 bits each)."""
    return samples("dynamic-ngrams", 2024, 1000)


@pytest.fixture(scope="module")
def big_optimal(big):
    """NG.optimal_bits on the big batch, computed once."""
    return np.asarray(NG.optimal_bits(Batch(*(jnp.asarray(x) for x in big))))


def test_dynamic_ngrams_layout_next_bit_targets_and_mask(samples):
    batch = samples("dynamic-ngrams")
    bits = batch.inputs[:, :, 0]
    assert set(np.unique(bits)) <= {0.0, 1.0}
    for b in range(4):
        for t in range(199):
            assert batch.targets[b, t, 0] == bits[b, t + 1]
        assert batch.targets[b, 199, 0] == 0.0
        expected_mask = np.array([1.0 if 4 <= t <= 198 else 0.0 for t in range(200)])
        np.testing.assert_array_equal(batch.mask[b], expected_mask)
        assert batch.mask[b].sum() == 195


def test_dynamic_ngrams_targets_outside_the_mask_are_the_next_bit_or_zero(samples):
    # Unlike the other tasks, SPEC puts bit t+1 at every step t < 199 (masked or not); only the
    # last step, which has no next bit, is zero.
    batch = samples("dynamic-ngrams")
    np.testing.assert_array_equal(batch.targets[:, 199], 0.0)
    np.testing.assert_array_equal(batch.targets[:, :199, 0], batch.inputs[:, 1:, 0])


def context_counts(bits, order):
    """counts[b, c, y]: how often bit y followed the `order`-bit context c in sequence b."""
    B, T = bits.shape
    counts = np.zeros((B, 2 ** order, 2), np.int64)
    b_idx = np.arange(B)
    for s in range(order, T):
        c = np.zeros(B, np.int64)
        for i in range(order):
            c = c * 2 + bits[:, s - order + i]
        np.add.at(counts, (b_idx, c, bits[:, s]), 1)
    return counts


def test_dynamic_ngrams_bits_depend_strongly_on_their_five_bit_context(big):
    # With a Beta(1/2, 1/2) table most contexts have a probability near 0 or 1, so the empirical
    # frequency after a context seen >= 8 times is often extreme; fair coins rarely do that
    # (P(k <= 1 or k >= 7 of 8) = 0.07).
    bits = big.inputs[:, :, 0].astype(np.int64)
    coins = np.random.default_rng(0).integers(0, 2, bits.shape)

    def extreme_fraction(x):
        counts = context_counts(x, 5)
        n = counts.sum(-1)
        freq = counts[..., 1] / np.maximum(n, 1)
        seen = n >= 8
        return np.mean(np.abs(freq[seen] - 0.5) >= 0.375)

    generated, fair = extreme_fraction(bits), extreme_fraction(coins)
    assert fair < 0.12
    assert generated > 0.3
    assert generated > 3 * fair


def test_dynamic_ngrams_tables_are_fresh_per_sequence(big):
    # The same context is followed mostly by 1s in some sequences and mostly by 0s in others.
    counts = context_counts(big.inputs[:, :, 0].astype(np.int64), 5)
    n = counts.sum(-1)
    freq = counts[..., 1] / np.maximum(n, 1)
    for c in range(32):
        seen = n[:, c] >= 5
        assert np.sum(freq[seen, c] >= 0.8) >= 20
        assert np.sum(freq[seen, c] <= 0.2) >= 20


def test_dynamic_ngrams_first_five_bits_are_fair_coins(big):
    first = big.inputs[:, :5, 0]
    assert 0.47 < first.mean() < 0.53
    for t in range(5):
        assert 0.43 < first[:, t].mean() < 0.57


def kt_bits(seq, context, first, last):
    """Plain-python reference: bits to code seq[first..last] with SPEC's Bayes-optimal predictor.

    Before predicting bit s, counts hold every earlier bit s' (context <= s' < s) by the
    `context` bits before it; P(1) = (N1 + 1/2) / (N1 + N0 + 1).
    """
    counts = {}
    total = 0.0
    for s in range(context, last + 1):
        c = tuple(int(v) for v in seq[s - context : s])
        n0, n1 = counts.get(c, (0, 0))
        if s >= first:
            p1 = (n1 + 0.5) / (n1 + n0 + 1.0)
            total -= math.log2(p1 if seq[s] == 1 else 1.0 - p1)
        counts[c] = (n0 + (seq[s] == 0), n1 + (seq[s] == 1))
    return total


def test_dynamic_ngrams_context_is_exactly_five_bits(big):
    # A Bayes predictor with the true context length codes the bits in the fewest bits on
    # average: shorter contexts miss the dependence, longer ones pay for extra parameters.
    seqs = big.inputs[:200, :, 0].astype(int).tolist()
    mean = {k: np.mean([kt_bits(s, k, 6, 199) for s in seqs]) for k in (4, 5, 6)}
    assert mean[5] < mean[4] - 5
    assert mean[5] < mean[6] - 5


# ---------------------------------------------------------------------------------------------
# the Bayes-optimal predictor


def test_optimal_probabilities_on_a_hand_worked_sequence():
    task = tasks.get("dynamic-ngrams", length=12, context=2)
    #        s:  0  1  2  3  4  5  6  7  8  9 10 11
    bits = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 0]
    # Observations (context bits s-2, s-1 -> bit s) for s = 2..11:
    #   s=2: 10->1  s=3: 01->1  s=4: 11->0  s=5: 10->1  s=6: 01->1
    #   s=7: 11->1  s=8: 11->0  s=9: 10->1  s=10: 01->0 s=11: 10->0
    # Prediction at step t: context c = (bit t-1, bit t); N0, N1 count observations s <= t
    # with that context; P(next = 1) = (N1 + 1/2) / (N1 + N0 + 1).
    #   t=0:  context incomplete                     -> 1/2
    #   t=1:  c=10, no observations yet              -> 0.5/1 = 1/2
    #   t=2:  c=01, none (s=2 was 10)                -> 1/2
    #   t=3:  c=11, none (s=2,3 were 10, 01)         -> 1/2
    #   t=4:  c=10, N1=1 (s=2), N0=0                 -> 1.5/2 = 3/4
    #   t=5:  c=01, N1=1 (s=3), N0=0                 -> 3/4
    #   t=6:  c=11, N1=0, N0=1 (s=4)                 -> 0.5/2 = 1/4
    #   t=7:  c=11, N1=1 (s=7), N0=1 (s=4)           -> 1.5/3 = 1/2
    #   t=8:  c=10, N1=2 (s=2,5), N0=0               -> 2.5/3 = 5/6
    #   t=9:  c=01, N1=2 (s=3,6), N0=0               -> 2.5/3 = 5/6
    #   t=10: c=10, N1=3 (s=2,5,9), N0=0             -> 3.5/4 = 7/8
    #   t=11: c=00, never seen                       -> 1/2
    expected = [1 / 2, 1 / 2, 1 / 2, 1 / 2, 3 / 4, 3 / 4, 1 / 4, 1 / 2, 5 / 6, 5 / 6, 7 / 8, 1 / 2]
    # The complemented sequence (second row) has N0 and N1 swapped everywhere: P -> 1 - P.
    complement = [1 - v for v in bits]
    p = np.asarray(task.optimal_probabilities(jnp.array([bits, complement], jnp.float32)))
    assert p.dtype == np.float32
    assert p.shape == (2, 12)
    np.testing.assert_allclose(p[0], expected, rtol=1e-6)
    np.testing.assert_allclose(p[1], 1 - np.array(expected), rtol=1e-6)


def test_optimal_bits_on_the_hand_worked_sequence():
    task = tasks.get("dynamic-ngrams", length=12, context=2)
    bits = np.array([1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0, 0], np.float32)
    rows = np.stack([bits, 1 - bits])  # the sequence and its complement
    targets = np.pad(rows[:, 1:], ((0, 0), (0, 1)))  # bit t + 1 at step t
    # The mask for context 2: the predictions whose context is complete, steps t = 1..10.
    mask = np.array([[0] + [1] * 10 + [0]] * 2, np.float32)
    batch = Batch(jnp.array(rows)[..., None], jnp.array(targets)[..., None], jnp.array(mask))
    # Masked steps t=1..10: next bit and P(next = 1) from the hand-worked table above.
    #   t: 1    2    3    4    5    6    7    8    9    10
    # next: 1    1    0    1    1    1    0    1    0    0
    #    P: 1/2  1/2  1/2  3/4  3/4  1/4  1/2  5/6  5/6  7/8
    likelihoods = [1 / 2, 1 / 2, 1 / 2, 3 / 4, 3 / 4, 1 / 4, 1 / 2, 5 / 6, 1 / 6, 1 / 8]
    expected = -sum(math.log2(x) for x in likelihoods)  # about 12.26 bits
    # The complement has P -> 1 - P and every next bit flipped: the same likelihoods.
    np.testing.assert_allclose(np.asarray(task.optimal_bits(batch)), [expected] * 2, rtol=1e-6)


def test_optimal_bits_matches_a_plain_python_reference_on_default_sequences(big, big_optimal):
    for b in range(6):
        seq = big.inputs[b, :, 0].astype(int).tolist()
        # Masked steps t = 4..198 predict bits s = t + 1 = 5..199.
        np.testing.assert_allclose(big_optimal[b], kt_bits(seq, 5, 5, 199), rtol=1e-5)


def test_optimal_bits_on_a_seeded_set_of_1000_is_near_spec_value(big_optimal):
    assert big_optimal.shape == (1000,)
    # SPEC: the optimal predictor averages 128.3 bits per sequence (2,000 simulated sequences).
    assert 120.0 < big_optimal.mean() < 136.0
    # And it is far better than coin flipping (195 bits) on every-ish sequence.
    assert np.mean(big_optimal < 195.0) > 0.95


def test_dynamic_ngrams_parse_size_says_it_has_no_size_controls():
    with pytest.raises(ValueError, match="no size controls"):
        NG.parse_size("200")


# ---------------------------------------------------------------------------------------------
# target


def test_dynamic_ngrams_target_is_two_bits_above_the_optimum():
    assert NG.target(128.3) == pytest.approx(130.3)
    with pytest.raises(ValueError, match="optimum"):
        NG.target()
