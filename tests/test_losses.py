"""Tests for diffmem.losses: masked cross-entropy, bits and bit errors per sequence."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffmem import losses

LN2 = math.log(2.0)


def np_bce(logits, targets):
    """Sigmoid cross-entropy in nats, written out: log(1 + e^x) - t x."""
    logits = np.asarray(logits, np.float64)
    return np.logaddexp(0.0, logits) - targets * logits


def random_batch(seed, B=3, T=4, C=2):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=3.0, size=(B, T, C)).astype(np.float32)
    targets = rng.integers(0, 2, size=(B, T, C)).astype(np.float32)
    mask = rng.integers(0, 2, size=(B, T)).astype(np.float32)
    return logits, targets, mask


# ---------------------------------------------------------------------------------------------
# sequence_cross_entropy and loss


def test_sequence_cross_entropy_has_one_value_per_sequence():
    logits, targets, mask = random_batch(0)
    assert losses.sequence_cross_entropy(logits, targets, mask).shape == (3,)


def test_zero_logits_cost_ln2_nats_per_masked_bit():
    targets = np.array([[[1, 0], [0, 0], [1, 1]], [[0, 1], [1, 0], [0, 0]]], np.float32)
    mask = np.array([[1, 1, 0], [0, 1, 1]], np.float32)
    out = losses.sequence_cross_entropy(np.zeros_like(targets), targets, mask)
    np.testing.assert_allclose(out, [4 * LN2, 4 * LN2], rtol=1e-6)


def test_sequence_cross_entropy_matches_hand_computed_values():
    logits = np.array([[[2.0, -1.0]]], np.float32)
    targets = np.array([[[1.0, 0.0]]], np.float32)
    # Target 1 at logit 2: -log sigmoid(2) = log(1 + e^-2); target 0 at logit -1: log(1 + e^-1).
    expected = math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0))
    out = losses.sequence_cross_entropy(logits, targets, np.ones((1, 1), np.float32))
    np.testing.assert_allclose(out, [expected], rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_sequence_cross_entropy_matches_numpy(seed):
    logits, targets, mask = random_batch(seed)
    expected = np.sum(np_bce(logits, targets) * mask[..., None], axis=(1, 2))
    np.testing.assert_allclose(losses.sequence_cross_entropy(logits, targets, mask), expected,
                               rtol=1e-5, atol=1e-6)


def test_loss_is_the_batch_mean_of_nats_per_sequence():
    logits, targets, mask = random_batch(0)
    per_sequence = np.asarray(losses.sequence_cross_entropy(logits, targets, mask))
    np.testing.assert_allclose(losses.loss(logits, targets, mask), per_sequence.mean(), rtol=1e-6)


def test_masked_steps_with_wildly_wrong_logits_do_not_change_the_loss():
    logits, targets, mask = random_batch(0)
    wrong = np.where(targets > 0.5, -1e4, 1e4).astype(np.float32)
    corrupted = np.where(mask[..., None] > 0, logits, wrong)  # wrong only where mask == 0
    for fn in (losses.loss, losses.bits_per_sequence, losses.bit_errors_per_sequence):
        np.testing.assert_allclose(fn(corrupted, targets, mask), fn(logits, targets, mask),
                                   rtol=1e-6)


def test_all_zero_mask_gives_zero_loss_and_zero_errors():
    logits, targets, _ = random_batch(0)
    mask = np.zeros(logits.shape[:2], np.float32)
    assert float(losses.loss(logits, targets, mask)) == 0.0
    assert float(losses.bit_errors_per_sequence(logits, targets, mask)) == 0.0


def test_loss_gradient_is_zero_at_masked_out_steps():
    logits, targets, mask = random_batch(0)
    grad = np.asarray(jax.jit(jax.grad(losses.loss))(jnp.asarray(logits), targets, mask))
    assert np.all(grad[mask == 0] == 0)
    assert np.any(grad[mask == 1] != 0)


# ---------------------------------------------------------------------------------------------
# bits_per_sequence


def test_zero_logits_give_one_bit_per_masked_output_bit():
    targets = np.ones((2, 3, 8), np.float32)
    mask = np.array([[1, 1, 1], [0, 1, 0]], np.float32)  # 24 and 8 masked bits: mean 16
    np.testing.assert_allclose(losses.bits_per_sequence(np.zeros_like(targets), targets, mask),
                               16.0, rtol=1e-6)


def test_bits_per_sequence_is_loss_in_base_two():
    logits, targets, mask = random_batch(1)
    np.testing.assert_allclose(
        losses.bits_per_sequence(logits, targets, mask),
        float(losses.loss(logits, targets, mask)) / LN2, rtol=1e-6
    )


def test_confident_correct_logits_give_almost_zero_bits():
    targets = np.array([[[1, 0, 1]]], np.float32)
    logits = np.where(targets > 0.5, 30.0, -30.0).astype(np.float32)
    assert float(losses.bits_per_sequence(logits, targets, np.ones((1, 1), np.float32))) < 1e-9


# ---------------------------------------------------------------------------------------------
# bit_errors_per_sequence


def test_bit_errors_count_thresholded_disagreements_averaged_over_sequences():
    logits = np.array([[[3.0, -2.0, 0.5]], [[-1.0, -1.0, -1.0]]], np.float32)
    targets = np.array([[[1.0, 1.0, 0.0]], [[1.0, 0.0, 1.0]]], np.float32)
    # Sequence 0 predicts (1, 0, 1): 2 wrong. Sequence 1 predicts (0, 0, 0): 2 wrong.
    mask = np.ones((2, 1), np.float32)
    np.testing.assert_allclose(losses.bit_errors_per_sequence(logits, targets, mask), 2.0)


def test_bit_errors_average_unequal_counts_over_sequences():
    targets = np.zeros((2, 2, 4), np.float32)
    logits = np.full((2, 2, 4), -1.0, np.float32)
    logits[0, 0, :3] = 1.0  # 3 wrong bits in sequence 0, none in sequence 1: mean 1.5
    mask = np.ones((2, 2), np.float32)
    np.testing.assert_allclose(losses.bit_errors_per_sequence(logits, targets, mask), 1.5)


@pytest.mark.parametrize("target,errors", [(1.0, 1.0), (0.0, 0.0)])
def test_logit_zero_predicts_zero_because_p_must_exceed_one_half(target, errors):
    out = losses.bit_errors_per_sequence(
        np.zeros((1, 1, 1), np.float32), np.full((1, 1, 1), target, np.float32),
        np.ones((1, 1), np.float32)
    )
    np.testing.assert_allclose(out, errors)


@pytest.mark.parametrize("seed", [0, 1])
def test_bit_errors_match_numpy(seed):
    logits, targets, mask = random_batch(seed)
    wrong = (logits > 0) != (targets > 0.5)
    expected = np.mean(np.sum(wrong * mask[..., None], axis=(1, 2)))
    np.testing.assert_allclose(losses.bit_errors_per_sequence(logits, targets, mask), expected,
                               rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# large logits


def test_very_large_logits_give_finite_losses_and_gradients():
    targets = np.array([[[1, 0], [0, 1]]], np.float32)
    logits = np.array([[[1e4, -1e4], [1e4, -1e4]]], np.float32)  # step 0 right, step 1 wrong
    mask = np.ones((1, 2), np.float32)
    nats = float(losses.loss(logits, targets, mask))
    assert math.isfinite(nats)
    np.testing.assert_allclose(nats, 2e4, rtol=1e-6)  # each wrong bit costs about |logit| nats
    assert np.all(np.isfinite(jax.jit(jax.grad(losses.loss))(jnp.asarray(logits), targets, mask)))


# ---------------------------------------------------------------------------------------------
# metrics


def test_metrics_agree_with_the_separate_functions():
    logits, targets, mask = random_batch(0)
    out = losses.metrics(logits, targets, mask)
    assert set(out) == {"loss", "bits", "bit_errors", "output_bits"}
    np.testing.assert_allclose(out["loss"], losses.loss(logits, targets, mask), rtol=1e-6)
    np.testing.assert_allclose(out["bits"], losses.bits_per_sequence(logits, targets, mask),
                               rtol=1e-6)
    np.testing.assert_allclose(out["bit_errors"],
                               losses.bit_errors_per_sequence(logits, targets, mask))


def test_metrics_output_bits_is_the_mean_number_of_masked_output_bits():
    targets = np.zeros((2, 3, 8), np.float32)
    mask = np.array([[1, 1, 1], [0, 1, 0]], np.float32)  # 24 and 8 masked bits
    np.testing.assert_allclose(losses.metrics(np.zeros_like(targets), targets, mask)["output_bits"],
                               16.0)


def test_metrics_work_under_jit():
    logits, targets, mask = random_batch(0)
    jitted = jax.jit(losses.metrics)(logits, targets, mask)
    eager = losses.metrics(logits, targets, mask)
    for name in eager:
        np.testing.assert_allclose(jitted[name], eager[name], rtol=1e-6)
