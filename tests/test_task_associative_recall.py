"""Tests for diffmem.tasks.associative_recall: the associative-recall task's layout (SPEC
section 2), its training distribution and its command-line sizes.

The expected arrays are rebuilt from the items read back out of a sampled batch with plain
loops that follow SPEC step by step (see test_task_repeat_copy.py). Batches come from the
session's ``samples`` fixture (conftest.py).
"""

import jax
import numpy as np
import pytest

from diffmem import tasks

AR = tasks.get("associative-recall")


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
def test_associative_recall_fixed_items_follow_the_layout(k, samples):
    batch = samples("associative-recall", k, 4, items=k)
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


def test_associative_recall_two_items_match_the_docstring_picture(samples):
    batch = samples("associative-recall", 2, 4, items=2)
    x = batch.inputs[0]
    x1, y1 = x[1:4, :6], x[5:8, :6]
    z = np.zeros((1, 6))
    data = np.concatenate([z, x1, z, y1, z, x1, z, z, z, z])
    np.testing.assert_array_equal(x[:, :6], data)
    np.testing.assert_array_equal(x[:, 6], [1, 0, 0, 0, 1] + [0] * 11)
    np.testing.assert_array_equal(x[:, 7], [0] * 8 + [1, 0, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(batch.targets[0], np.concatenate([np.zeros((13, 6)), y1]))
    np.testing.assert_array_equal(batch.mask[0], [0] * 13 + [1, 1, 1])


def test_associative_recall_query_index_covers_all_of_0_to_k_minus_2_with_six_items(samples):
    # The sequences with 6 items among 1024 training sequences (about 200).
    found = check_associative_recall(samples.pool("associative-recall", 256))
    js = np.array([j for k, j in found if k == 6])
    assert len(js) > 150
    counts = np.bincount(js, minlength=6)
    assert counts[5] == 0  # the last item has no successor
    assert np.all(counts[:5] > len(js) / 5 / 2)  # roughly uniform over 0..4


def test_associative_recall_training_draws_2_to_6_items_padded_to_32_steps(samples):
    batch = samples.pool("associative-recall", 64)  # 256 sequences
    assert batch.inputs.shape == (256, 32, 8)
    found = check_associative_recall(batch)
    assert {k for k, _ in found} == {2, 3, 4, 5, 6}
    for k in range(2, 7):  # for every k, the query ranges over items 0..k-2
        assert {j for kk, j in found if kk == k} == set(range(k - 1))


def test_associative_recall_training_batch_of_four_follows_the_layout(samples):
    check_associative_recall(samples("associative-recall"))


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
