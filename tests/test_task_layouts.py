"""Layout tests for the four newer tasks (SPEC section 2): repeat-copy, associative-recall,
dynamic-ngrams and priority-sort.

The expected arrays are built independently: the random content is read back out of a sampled
batch, and the expected inputs, targets and mask are rebuilt from it with plain loops that
follow SPEC step by step. A layout mistake anywhere (a misplaced delimiter, a wrong source row,
a shifted mask) makes the rebuilt arrays disagree with the sampled ones.

Compiling a sampler costs about a second on a CPU, so samplers are jitted once per task and
shared, and only a few (batch size, size) combinations are used.
"""

import math
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffmem import tasks
from diffmem.tasks import Batch, Task

RC = tasks.get("repeat-copy")
AR = tasks.get("associative-recall")
NG = tasks.get("dynamic-ngrams")
PS = tasks.get("priority-sort")

_rc_sample = jax.jit(RC.sample, static_argnums=1, static_argnames=("length", "repeats"))
_ar_sample = jax.jit(AR.sample, static_argnums=1, static_argnames="items")
_ng_sample = jax.jit(NG.sample, static_argnums=1)

# name -> (input_size, output_size, T of a training batch)
EXPECTED = {
    "repeat-copy": (10, 9, 10 + 2 + 10 * 10 + 1),
    "associative-recall": (8, 6, 4 * 6 + 8),
    "dynamic-ngrams": (1, 1, 200),
    "priority-sort": (10, 8, 20 + 1 + 16),
}
NAMES = list(EXPECTED)


def to_np(batch):
    return Batch(*(np.asarray(x) for x in batch))


@cache
def jitted_default(name):
    """``jax.jit(lambda k: task.sample(k, 4))`` for a task, compiled once per test session."""
    task = tasks.get(name)
    return jax.jit(lambda k: task.sample(k, 4))


@cache
def training_batch(name, seed=0):
    """A batch of 4 from the training distribution, as numpy arrays."""
    return to_np(jitted_default(name)(jax.random.key(seed)))


def training_pool(name, n_keys):
    """n_keys batches of 4 from the one compiled training sampler, concatenated: cheaper than
    compiling a large batch."""
    batches = [training_batch(name, 100 + seed) for seed in range(n_keys)]
    return Batch(*(np.concatenate(xs) for xs in zip(*batches)))


# ---------------------------------------------------------------------------------------------
# every task: registry, widths, shapes, dtypes, determinism, jit, padding


@pytest.mark.parametrize("name", NAMES)
def test_registry_builds_the_task_with_its_name_and_widths(name):
    task = tasks.get(name)
    assert isinstance(task, Task)
    assert name in tasks.names()
    assert task.name == name
    assert (task.input_size, task.output_size) == EXPECTED[name][:2]


@pytest.mark.parametrize("name", NAMES)
def test_training_batch_has_spec_shapes_and_float32(name):
    c_in, c_out, T = EXPECTED[name]
    batch = jitted_default(name)(jax.random.key(0))
    assert isinstance(batch, Batch)
    assert batch.inputs.shape == (4, T, c_in)
    assert batch.targets.shape == (4, T, c_out)
    assert batch.mask.shape == (4, T)
    for x in batch:
        assert x.dtype == jnp.float32
    assert tasks.get(name).max_steps() == T


@pytest.mark.parametrize("name", NAMES)
def test_sample_is_deterministic_for_a_key_and_differs_across_keys(name):
    first, second = training_batch(name, 5), to_np(jitted_default(name)(jax.random.key(5)))
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)
    other = training_batch(name, 6)
    assert not np.array_equal(first.inputs, other.inputs)


@pytest.mark.parametrize("name", NAMES)
def test_sample_is_jit_compatible_and_agrees_with_eager_sampling(name):
    # jax.jit(lambda k: task.sample(k, 4)) traces (no Python control flow on traced values),
    # and gives the batch that eager sampling (what evaluation uses) gives for the same key.
    key = jax.random.key(11)
    jitted = to_np(jitted_default(name)(key))
    eager = to_np(tasks.get(name).sample(key, 4))
    for x, y in zip(jitted, eager):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    assert jitted.mask.sum() > 0


@pytest.mark.parametrize("name", ["repeat-copy", "associative-recall", "priority-sort"])
def test_targets_are_zero_wherever_mask_is_zero(name):
    for seed in (0, 1):
        batch = training_batch(name, seed)
        assert set(np.unique(batch.mask)) <= {0.0, 1.0}
        np.testing.assert_array_equal(batch.targets[batch.mask == 0], 0.0)
        assert batch.mask.sum() > 0


def test_dynamic_ngrams_targets_outside_the_mask_are_the_next_bit_or_zero():
    # Unlike the other tasks, SPEC puts bit t+1 at every step t < 199 (masked or not); only the
    # last step, which has no next bit, is zero.
    batch = training_batch("dynamic-ngrams")
    np.testing.assert_array_equal(batch.targets[:, 199], 0.0)
    np.testing.assert_array_equal(batch.targets[:, :199, 0], batch.inputs[:, 1:, 0])


# ---------------------------------------------------------------------------------------------
# repeat copy

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
def test_repeat_copy_fixed_sizes_follow_the_layout(L, R):
    batch = to_np(_rc_sample(jax.random.key(L * 100 + R), 4, length=L, repeats=R))
    T = L + 2 + L * R + 1
    assert batch.inputs.shape == (4, T, 10)
    assert batch.targets.shape == (4, T, 9)
    assert batch.mask.shape == (4, T)
    assert RC.max_steps(length=L, repeats=R) == T
    check_repeat_copy(batch, lengths=L, repeats=R)


def test_repeat_copy_two_by_two_matches_the_docstring_picture():
    batch = to_np(_rc_sample(jax.random.key(3), 4, length=2, repeats=2))
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


def test_repeat_copy_count_channel_keeps_its_scale_beyond_the_training_range():
    batch = to_np(_rc_sample(jax.random.key(4), 4, length=1, repeats=20))
    np.testing.assert_allclose(batch.inputs[:, 2, 9], (20 - 5.5) / COUNT_STD, rtol=1e-6)


def test_repeat_copy_training_draws_length_and_repeats_per_sequence_in_1_to_10():
    batch = training_pool("repeat-copy", 64)  # 256 sequences
    assert batch.inputs.shape == (256, 113, 10)
    found = np.array(check_repeat_copy(batch))
    assert set(found[:, 0]) == set(range(1, 11))
    assert set(found[:, 1]) == set(range(1, 11))
    # L and R are drawn independently, not tied to each other.
    assert len({tuple(x) for x in found}) > 50


def test_repeat_copy_training_batch_of_four_follows_the_layout():
    check_repeat_copy(training_batch("repeat-copy"))


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


# ---------------------------------------------------------------------------------------------
# associative recall


def expected_associative_recall(items, j, T):
    """SPEC's associative-recall layout for one sequence, built step by step.

    ``items`` (k, 3, 6): item i's three vectors; the query is item j, the answer item j + 1.
    """
    inputs = np.zeros((T, 8), np.float32)
    targets = np.zeros((T, 6), np.float32)
    mask = np.zeros(T, np.float32)
    t = 0
    for item in items:
        inputs[t, 6] = 1.0  # item delimiter
        t += 1
        for v in item:
            inputs[t, :6] = v
            t += 1
    inputs[t, 7] = 1.0  # query delimiter
    t += 1
    for v in items[j]:
        inputs[t, :6] = v
        t += 1
    inputs[t, 7] = 1.0  # query delimiter
    t += 1
    for v in items[j + 1]:  # three all-zero input steps, the answer as target
        targets[t] = v
        mask[t] = 1.0
        t += 1
    assert t == 4 * len(items) + 8
    return inputs, targets, mask


def check_associative_recall(batch, items=None):
    """Every sequence matches the hand-built layout; returns the (k, j) of each sequence."""
    B, T, _ = batch.inputs.shape
    found = []
    for b in range(B):
        x = batch.inputs[b]
        k = int(x[:, 6].sum())  # one item delimiter per item
        if items is not None:
            assert k == items
        assert 2 <= k
        item_vectors = np.stack([x[4 * i + 1 : 4 * i + 4, :6] for i in range(k)])  # (k, 3, 6)
        query = x[4 * k + 1 : 4 * k + 4, :6]
        assert set(np.unique(item_vectors)) <= {0.0, 1.0}
        # The query is a copy of some item j among the first k - 1 (take the one whose
        # successor is the target, in case two random items happen to coincide).
        answer = batch.targets[b, 4 * k + 5 : 4 * k + 8]
        candidates = [i for i in range(k - 1) if np.array_equal(item_vectors[i], query)]
        matching = [i for i in candidates if np.array_equal(item_vectors[i + 1], answer)]
        assert matching, f"sequence {b}: query is not an item 0..k-2 followed by the answer"
        j = matching[0]
        inputs, targets, mask = expected_associative_recall(item_vectors, j, T)
        np.testing.assert_array_equal(x, inputs)
        np.testing.assert_array_equal(batch.targets[b], targets)
        np.testing.assert_array_equal(batch.mask[b], mask)
        end = 4 * k + 8
        np.testing.assert_array_equal(batch.mask[b, end:], 0.0)
        np.testing.assert_array_equal(batch.inputs[b, end:], 0.0)
        np.testing.assert_array_equal(batch.targets[b, end:], 0.0)
        found.append((k, j))
    return found


@pytest.mark.parametrize("k", [2, 20])
def test_associative_recall_fixed_items_follow_the_layout(k):
    batch = to_np(_ar_sample(jax.random.key(k), 4, items=k))
    T = 4 * k + 8
    assert batch.inputs.shape == (4, T, 8)
    assert batch.targets.shape == (4, T, 6)
    assert batch.mask.shape == (4, T)
    assert AR.max_steps(items=k) == T
    found = check_associative_recall(batch, items=k)
    if k == 2:
        assert all(j == 0 for _, j in found)  # only item 0 has a successor


def test_associative_recall_with_20_items_has_88_steps():
    assert AR.max_steps(items=20) == 88


def test_associative_recall_two_items_match_the_docstring_picture():
    batch = to_np(_ar_sample(jax.random.key(2), 4, items=2))
    x = batch.inputs[0]
    x1, y1 = x[1:4, :6], x[5:8, :6]
    z = np.zeros((1, 6))
    data = np.concatenate([z, x1, z, y1, z, x1, z, z, z, z])
    np.testing.assert_array_equal(x[:, :6], data)
    np.testing.assert_array_equal(x[:, 6], [1, 0, 0, 0, 1] + [0] * 11)
    np.testing.assert_array_equal(x[:, 7], [0] * 8 + [1, 0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(batch.targets[0], np.concatenate([np.zeros((13, 6)), y1]))
    np.testing.assert_array_equal(batch.mask[0], [0] * 13 + [1, 1, 1])


def test_associative_recall_query_index_covers_all_of_0_to_k_minus_2_with_six_items():
    # The sequences with 6 items among 1024 training sequences (about 200).
    found = check_associative_recall(training_pool("associative-recall", 256))
    js = np.array([j for k, j in found if k == 6])
    assert len(js) > 150
    counts = np.bincount(js, minlength=6)
    assert counts[5] == 0  # the last item has no successor
    assert np.all(counts[:5] > len(js) / 5 / 2)  # roughly uniform over 0..4


def test_associative_recall_training_draws_2_to_6_items_padded_to_32_steps():
    batch = training_pool("associative-recall", 64)  # 256 sequences
    assert batch.inputs.shape == (256, 32, 8)
    found = check_associative_recall(batch)
    assert {k for k, _ in found} == {2, 3, 4, 5, 6}
    for k in range(2, 7):  # for every k, the query ranges over items 0..k-2
        assert {j for kk, j in found if kk == k} == set(range(k - 1))


def test_associative_recall_training_batch_of_four_follows_the_layout():
    check_associative_recall(training_batch("associative-recall"))


def test_associative_recall_parse_size_reads_a_number_of_items():
    assert AR.parse_size("12") == {"items": 12}


@pytest.mark.parametrize("text", ["1", "0", "-2", "x", "2.5"])
def test_associative_recall_parse_size_rejects_fewer_than_two_items(text):
    with pytest.raises(ValueError):
        AR.parse_size(text)


@pytest.mark.parametrize("items", [1, 0])
def test_associative_recall_sample_with_fewer_than_two_items_raises(items):
    with pytest.raises(ValueError):
        AR.sample(jax.random.key(0), 2, items=items)


# ---------------------------------------------------------------------------------------------
# dynamic N-grams: layout and the generating process


@cache
def ngrams_big():
    """A fixed, seeded batch of 1000 default sequences (200 bits each)."""
    return to_np(_ng_sample(jax.random.key(2024), 1000))


@cache
def ngrams_big_optimal():
    """NG.optimal_bits on ngrams_big(), computed once."""
    return np.asarray(NG.optimal_bits(Batch(*(jnp.asarray(x) for x in ngrams_big()))))


def test_dynamic_ngrams_layout_next_bit_targets_and_mask():
    batch = training_batch("dynamic-ngrams")
    bits = batch.inputs[:, :, 0]
    assert set(np.unique(bits)) <= {0.0, 1.0}
    for b in range(4):
        for t in range(199):
            assert batch.targets[b, t, 0] == bits[b, t + 1]
        assert batch.targets[b, 199, 0] == 0.0
        expected_mask = np.array([1.0 if 4 <= t <= 198 else 0.0 for t in range(200)])
        np.testing.assert_array_equal(batch.mask[b], expected_mask)
        assert batch.mask[b].sum() == 195


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


def test_dynamic_ngrams_bits_depend_strongly_on_their_five_bit_context():
    # With a Beta(1/2, 1/2) table most contexts have a probability near 0 or 1, so the empirical
    # frequency after a context seen >= 8 times is often extreme; fair coins rarely do that
    # (P(k <= 1 or k >= 7 of 8) = 0.07).
    bits = ngrams_big().inputs[:, :, 0].astype(np.int64)
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


def test_dynamic_ngrams_tables_are_fresh_per_sequence():
    # The same context is followed mostly by 1s in some sequences and mostly by 0s in others.
    counts = context_counts(ngrams_big().inputs[:, :, 0].astype(np.int64), 5)
    n = counts.sum(-1)
    freq = counts[..., 1] / np.maximum(n, 1)
    for c in range(32):
        seen = n[:, c] >= 5
        assert np.sum(freq[seen, c] >= 0.8) >= 20
        assert np.sum(freq[seen, c] <= 0.2) >= 20


def test_dynamic_ngrams_first_five_bits_are_fair_coins():
    first = ngrams_big().inputs[:, :5, 0]
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


def test_dynamic_ngrams_context_is_exactly_five_bits():
    # A Bayes predictor with the true context length codes the bits in the fewest bits on
    # average: shorter contexts miss the dependence, longer ones pay for extra parameters.
    seqs = ngrams_big().inputs[:200, :, 0].astype(int).tolist()
    mean = {k: np.mean([kt_bits(s, k, 6, 199) for s in seqs]) for k in (4, 5, 6)}
    assert mean[5] < mean[4] - 5
    assert mean[5] < mean[6] - 5


# ---------------------------------------------------------------------------------------------
# dynamic N-grams: the Bayes-optimal predictor


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


def test_optimal_bits_matches_a_plain_python_reference_on_default_sequences():
    big, got = ngrams_big(), ngrams_big_optimal()
    for b in range(6):
        seq = big.inputs[b, :, 0].astype(int).tolist()
        # Masked steps t = 4..198 predict bits s = t + 1 = 5..199.
        np.testing.assert_allclose(got[b], kt_bits(seq, 5, 5, 199), rtol=1e-5)


def test_optimal_bits_on_a_seeded_set_of_1000_is_near_spec_value():
    got = ngrams_big_optimal()
    assert got.shape == (1000,)
    # SPEC: the optimal predictor averages 128.3 bits per sequence (2,000 simulated sequences).
    assert 120.0 < got.mean() < 136.0
    # And it is far better than coin flipping (195 bits) on every-ish sequence.
    assert np.mean(got < 195.0) > 0.95


def test_dynamic_ngrams_parse_size_says_it_has_no_size_controls():
    with pytest.raises(ValueError, match="no size controls"):
        NG.parse_size("200")


# ---------------------------------------------------------------------------------------------
# priority sort


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


def test_priority_sort_follows_the_layout():
    batch = training_batch("priority-sort")
    assert batch.inputs.shape == (4, 37, 10)
    check_priority_sort(batch)
    np.testing.assert_array_equal(batch.mask, np.repeat([[0] * 21 + [1] * 16], 4, axis=0))


def test_priority_sort_large_batch_has_distinct_uniform_priorities_and_sorted_targets():
    batch = training_pool("priority-sort", 64)  # 256 sequences
    check_priority_sort(batch)
    priorities = batch.inputs[:, :20, 8]
    assert priorities.min() < -0.99 and priorities.max() > 0.99
    assert abs(priorities.mean()) < 0.03
    assert 0.2 < np.mean(priorities > 0.5) < 0.3  # uniform: P(p > 0.5) = 1/4


def test_priority_sort_targets_are_the_top_16_in_descending_priority():
    # A second, different check of the order: each answer step's vector has the highest
    # priority among the inputs not yet emitted.
    batch = training_batch("priority-sort", 1)
    for b in range(4):
        remaining = list(range(20))
        for i in range(16):
            best = max(remaining, key=lambda r: batch.inputs[b, r, 8])
            np.testing.assert_array_equal(batch.targets[b, 21 + i], batch.inputs[b, best, :8])
            remaining.remove(best)


def test_priority_sort_parse_size_raises():
    with pytest.raises(ValueError, match="no size controls"):
        PS.parse_size("20")


# ---------------------------------------------------------------------------------------------
# Task.target


@pytest.mark.parametrize("name,bits", [("copy", 0.05), ("repeat-copy", 0.1),
                                       ("associative-recall", 0.1), ("priority-sort", 20.0)])
def test_fixed_target_tasks_return_their_target_bits(name, bits):
    task = tasks.get(name)
    assert task.target_bits == bits
    assert task.target() == bits
    assert task.target(123.0) == bits  # an optimum does not move a fixed target


def test_dynamic_ngrams_target_is_two_bits_above_the_optimum():
    assert NG.target(128.3) == pytest.approx(130.3)
    with pytest.raises(ValueError, match="optimum"):
        NG.target()
