"""How much of the context a dynamic N-grams predictor must see: the counting (Bayes-optimal)
predictor of eq. 10 restricted to the last k bits, on the task's validation set.

    python experiments/ngram_contexts.py [--sequences 1000]

The sequences are those every training run validates on (the same seed and count), so the
figures compare directly with a run's validation bits: a model that scores near the k-bit line
predicts about as well as exact counting over k-bit contexts. Prints one line per k.
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp

from diffmem.tasks.ngrams import DynamicNGrams
from diffmem.train import VALIDATION_SEED, fixed_batches


def context_bits(task: DynamicNGrams, batches, k: int) -> float:
    """Bits per sequence of counting over the last k bits (k = 0: over the whole sequence)."""
    total, count = 0.0, 0
    for batch in batches:
        if k == 0:  # one count for every step: (N1 + 1/2) / (N + 1) of the bits before
            bits = batch.inputs[..., 0]
            p = (jnp.cumsum(bits, axis=-1) + 0.5) / (jnp.arange(1, bits.shape[-1] + 1) + 1.0)
            y = batch.targets[..., 0]
            loss = -jnp.log2(jnp.where(y > 0.5, p, 1.0 - p)) * batch.mask
        else:  # the task's own optimal predictor over k bits, scored on this batch's mask
            loss = DynamicNGrams(task.length, context=k).optimal_bits(batch)
        total += float(loss.sum())
        count += batch.inputs.shape[0]
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=1000,
                        help="validation sequences (a run's train.val_size; 1000 by default)")
    args = parser.parse_args()
    if args.sequences < 1:
        parser.error(f"--sequences {args.sequences}: expected at least 1 validation sequence "
                     "(a run validates on 1000)")
    task = DynamicNGrams()
    batches = fixed_batches(task, args.sequences, VALIDATION_SEED)
    print(f"counting predictor on {args.sequences} validation sequences, bits per sequence:")
    for k in range(task.context, -1, -1):
        label = ("the whole context" if k == task.context else "no context" if k == 0
                 else "the last bit" if k == 1 else f"the last {k} bits")
        print(f"  k={k} ({label}): {context_bits(task, batches, k):.2f}")


if __name__ == "__main__":
    main()
