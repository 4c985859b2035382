"""The task interface: every task samples batches of (inputs, targets, mask) in SPEC's layout."""

from __future__ import annotations

import abc
import operator
from collections.abc import Hashable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from diffmem import losses, programs


class Batch(NamedTuple):
    """One batch of sequences, right-padded to a common length T.

    The loss and every metric count only the steps where ``mask == 1``.
    """

    inputs: jax.Array  # (B, T, C_in) float32
    targets: jax.Array  # (B, T, C_out) float32 bits; (B, T) int32 for a task scored by class
    mask: jax.Array  # (B, T) float32


class Task(abc.ABC):
    """An algorithmic task: a generator of batches plus the facts needed to train and judge it.

    ``sample`` is a pure function of a ``jax.random`` key and is jit-compatible: batch size and
    the size controls are static, so one compilation serves a whole run.
    """

    name: str
    input_size: int
    output_size: int
    # Bits per sequence on the training distribution below which the task counts as learned
    # (None for a task judged against its optimal predictor: see target_bits_above_optimum).
    target_bits: float | None
    # For a task with ``optimal_bits``: learned within this many bits of the optimum.
    target_bits_above_optimum: float | None = None
    # The sizes at which ``diffmem eval`` measures generalisation, by default.
    eval_sizes: tuple[Any, ...]
    # Sizes beyond the training range that every validation point also checks, each with the
    # largest fraction of wrong bits at which the model still counts as generalising there.
    # Training keeps the checkpoint that does best on them and, stopping early, trains on
    # past the target until all of them pass (diffmem.training). Empty: the task has none.
    generalisation_check: tuple[tuple[dict[str, Any], float], ...] = ()
    # One size beyond the training range, for memory figures and ``diffmem demo`` ({}: the
    # training distribution, for tasks without size controls).
    example_size: dict[str, Any] = {}

    def training_range(self) -> str:
        """What the task trains on, in words (shown beside results beyond it)."""
        return "its training distribution"

    def memory_needed(self, size: dict[str, Any] | None = None) -> int | None:
        """How many vectors a sequence at ``size`` (None: the largest of the training range)
        asks the model to store, for the warning when that exceeds the memory's rows; None
        for a task that is not about storing its input."""
        return None

    @abc.abstractmethod
    def sample(self, key: jax.Array, batch_size: int, **sizes: Any) -> Batch:
        """Draw a batch; each size control left as None is drawn from the training range."""

    def sample_compiled(self, key: jax.Array, batch_size: int, **sizes: Any) -> Batch:
        """``sample``, compiled once per batch shape: run eagerly, every operation of a sampler
        is compiled on its own for each new shape. The batches are the same."""
        names = tuple(sorted(sizes))
        sampler = programs.get(
            ("sampler", self.identity(), names),
            lambda: jax.jit(self.sample, static_argnums=1, static_argnames=names))
        return sampler(key, batch_size, **sizes)

    def identity(self) -> Hashable:
        """The task's class and settings: equal for tasks that draw the same batches, so that
        they share compiled programs (``diffmem.programs``)."""
        settings = tuple(sorted((k, v) for k, v in vars(self).items() if not k.startswith("_")))
        try:
            hash(settings)
        except TypeError:  # a setting that is not hashable: this instance alone
            return type(self), id(self)
        return type(self), settings

    def parse_size(self, text: str) -> dict[str, Any]:
        """Turn one command-line size (for example "120") into ``sample`` keyword arguments.

        Tasks with size controls override this; the others have none to parse.
        """
        raise ValueError(
            f"{self.name} has no size controls, so size {text!r} cannot be used; "
            "leave out --sizes / --size (it is judged on its training distribution)"
        )

    def describe_size(self, sizes: dict[str, Any]) -> str:
        """A short label for a size, used in tables."""
        return ", ".join(f"{k}={v}" for k, v in sizes.items()) or "training distribution"

    def optimal_bits(self, batch: Batch) -> jax.Array | None:
        """Bits per sequence (B,) of the best possible predictor, for tasks that have one."""
        return None

    def target(self, optimum: float | None = None) -> float:
        """The bits per sequence below which the task counts as learned.

        ``optimum`` is the optimal predictor's bits per sequence on the validation set, for
        tasks judged against it.
        """
        if self.target_bits_above_optimum is None:
            return self.target_bits
        if optimum is None:
            raise ValueError(f"the {self.name} target is relative to the optimum; pass it")
        return optimum + self.target_bits_above_optimum

    # How the outputs are scored. The paper's tasks, and every task that does not override
    # these: each output channel is a bit, scored by its sigmoid cross-entropy (reported in
    # bits per sequence) and by the bits that a 0.5 threshold gets wrong.

    def loss(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        """The training loss of ``outputs`` (B, T, C_out) on ``batch``: the mean over the
        batch of each sequence's loss in nats, over the steps where ``mask == 1``."""
        return losses.loss(outputs, batch.targets, batch.mask)

    def update_metrics(self, outputs: jax.Array, batch: Batch) -> dict[str, jax.Array]:
        """What every update reports (scalars, means over the batch): ``loss`` (nats),
        ``bits`` and ``bit_errors`` per sequence, and the task's own figures."""
        return losses.metrics(outputs, batch.targets, batch.mask)

    def eval_totals(self, outputs: jax.Array, batch: Batch) -> dict[str, jax.Array]:
        """Sums over the batch that ``eval_figures`` turns into a set's figures: ``nats``,
        ``sequences`` and the task's error counts."""
        return {
            "nats": jnp.sum(losses.sequence_cross_entropy(outputs, batch.targets, batch.mask)),
            "bit_errors": jnp.sum(losses.sequence_bit_errors(outputs, batch.targets, batch.mask)),
            "output_bits": jnp.sum(batch.mask) * batch.targets.shape[-1],
            "sequences": jnp.asarray(batch.mask.shape[0], jnp.float32),
        }

    def eval_figures(self, totals: dict[str, float]) -> dict[str, Any]:
        """A set's figures from its ``eval_totals`` summed over its batches: ``bits`` and
        ``bit_errors`` per sequence, ``wrong_bit_fraction`` (what the generalisation check
        bounds) and ``sequences``."""
        n = totals["sequences"]
        return {
            "bits": totals["nats"] / losses.LN2 / n,
            "bit_errors": totals["bit_errors"] / n,
            "wrong_bit_fraction": totals["bit_errors"] / max(totals["output_bits"], 1.0),
            "sequences": int(n),
        }

    def validation_set(self, count: int, seed: int) -> Sequence[Batch] | None:
        """The fixed validation set a run is judged on at every log point, in batches, or None
        (the default) for ``count`` sequences of the training distribution drawn with ``seed``.
        A task with a held-out set of its own (``ArrayTask``) returns it here."""
        return None

    def display(self, outputs: jax.Array, batch: Batch) -> tuple[jax.Array, jax.Array]:
        """The targets and the model's predictions as channels in [0, 1], both (B, T, C_out),
        for figures: the bits and each output's sigmoid (a task scored by class: the targets
        one-hot and the softmax)."""
        return batch.targets, jax.nn.sigmoid(outputs)

    def max_steps(self, **sizes: Any) -> int:
        """T of a batch sampled with these sizes (the padded sequence length)."""
        shapes = jax.eval_shape(lambda key: self.sample(key, 1, **sizes), jax.random.key(0))
        return int(shapes.inputs.shape[1])


def parse_int(text: str, minimum: int, message: str) -> int:
    """``text`` as an integer >= ``minimum``, or a ValueError with ``message``."""
    try:
        number = int(text)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise ValueError(message)
    return number


def positive_int(value: Any, what: str) -> int:
    """``value`` as a Python int (any integer type, numpy's included), or a clear ValueError."""
    try:
        number = operator.index(value)
    except TypeError:
        number = 0
    if number < 1:
        raise ValueError(f"{what}={value!r} must be a positive integer")
    return number
