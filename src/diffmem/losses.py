"""Masked cross-entropy and the paper's metrics, counted only where mask == 1: sigmoid
cross-entropy for bits (the paper's tasks), softmax cross-entropy for classes (your data)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax

LN2 = math.log(2.0)


def sequence_cross_entropy(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """Summed sigmoid cross-entropy of each sequence, in nats, over masked steps and channels.

    Args:
      logits: (B, T, C) model outputs before the sigmoid.
      targets: (B, T, C) bits in {0, 1}.
      mask: (B, T), 1 where the step counts.

    Returns:
      (B,) nats per sequence.
    """
    bce = optax.sigmoid_binary_cross_entropy(logits, targets)  # (B, T, C), stable for any logit
    return jnp.sum(bce * mask[..., None], axis=(1, 2))


def loss(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """The training loss: mean over the batch of nats per sequence."""
    return jnp.mean(sequence_cross_entropy(logits, targets, mask))


def bits_per_sequence(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """Summed cross-entropy in bits over the masked outputs, averaged over sequences."""
    return loss(logits, targets, mask) / LN2


def sequence_bit_errors(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """(B,) masked output bits whose thresholded prediction (p > 0.5) is wrong, per sequence."""
    wrong = (logits > 0) != (targets > 0.5)  # p > 0.5 exactly when the logit is > 0
    return jnp.sum(wrong * mask[..., None], axis=(1, 2))


def bit_errors_per_sequence(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """Masked output bits whose thresholded prediction is wrong, averaged over sequences."""
    return jnp.mean(sequence_bit_errors(logits, targets, mask))


def metrics(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> dict[str, jax.Array]:
    """Loss (nats), bits and bit errors per sequence, and the number of masked output bits."""
    nats = loss(logits, targets, mask)
    return {
        "loss": nats,
        "bits": nats / LN2,
        "bit_errors": bit_errors_per_sequence(logits, targets, mask),
        "output_bits": jnp.mean(jnp.sum(mask, axis=1)) * targets.shape[-1],
    }


# Class targets: one of K classes per step, a softmax over the K outputs.

def sequence_class_cross_entropy(logits: jax.Array, targets: jax.Array,
                                 mask: jax.Array) -> jax.Array:
    """Summed softmax cross-entropy of each sequence, in nats, over masked steps.

    Args:
      logits: (B, T, K) model outputs before the softmax.
      targets: (B, T) integer classes in [0, K).
      mask: (B, T), 1 where the step counts.

    Returns:
      (B,) nats per sequence.
    """
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets)  # (B, T)
    return jnp.sum(ce * mask, axis=1)


def sequence_class_errors(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
    """(B,) masked steps whose most likely class (the largest logit) is not the target."""
    wrong = jnp.argmax(logits, axis=-1) != targets  # (B, T)
    return jnp.sum(wrong * mask, axis=1)


def class_metrics(logits: jax.Array, targets: jax.Array, mask: jax.Array
                  ) -> dict[str, jax.Array]:
    """What an update reports for class targets, under the bits' names: ``loss`` (nats),
    ``bits`` (the cross-entropy in bits) and ``bit_errors`` (wrong steps) per sequence."""
    nats = jnp.mean(sequence_class_cross_entropy(logits, targets, mask))
    return {
        "loss": nats,
        "bits": nats / LN2,
        "bit_errors": jnp.mean(sequence_class_errors(logits, targets, mask)),
        "scored_steps": jnp.mean(jnp.sum(mask, axis=1)),
    }
