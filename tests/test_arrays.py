"""Tests for diffmem.tasks.arrays: training on your own arrays (``diffmem train --data``).

Two tiny files stand for a user's data: bit targets (a delayed copy of 2 bits) and class
targets (reversing up to 3 tokens of 4 classes, variable lengths, padding marked -1). Each
checks one thing: the file's reading (memory-mapped where it can be), the held-out split, the
batches (a pure function of the key, from the training part only), the scoring, and the
command line, where every kind of bad file gets one line and no run directory.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from diffmem import checkpoint, losses, tasks
from diffmem.cli import main
from diffmem.tasks import ArrayTask, arrays

TINY = ["--batch-size", "4", "--set", "model.controller_size=16", "--set",
        "model.memory_rows=16", "--set", "model.memory_width=6", "--set", "train.eval_every=16",
        "--set", "train.eval_count=4", "--set", "train.minutes=none"]


def reverse_arrays(n=20, tokens=3, classes=4, seed=0):
    """Reverse a sequence of 1..``tokens`` tokens: inputs one-hot tokens then a delimiter,
    targets the tokens reversed (-1 elsewhere), mask 1 on the answer, and the lengths. The
    first input channel of step 0 is not a token: it holds the sequence's index, so that a
    test can tell which sequences a batch holds."""
    rng = np.random.default_rng(seed)
    T = 2 * tokens + 1
    inputs = np.zeros((n, T, classes + 2), np.float32)
    targets, mask = np.full((n, T), -1), np.zeros((n, T), np.float32)
    lengths = rng.integers(1, tokens + 1, n)
    for i, L in enumerate(lengths):
        seq = rng.integers(0, classes, L)
        inputs[i, np.arange(L), 1 + seq] = 1.0
        inputs[i, L, -1] = 1.0
        targets[i, L + 1:2 * L + 1] = seq[::-1]
        mask[i, L + 1:2 * L + 1] = 1.0
    inputs[:, 0, 0] = np.arange(n)
    return dict(inputs=inputs, targets=targets, mask=mask, lengths=2 * lengths + 1,
                classes=np.array(classes))


def bits_arrays(n=12, T=5, seed=1):
    """Two random bits a step, to be given back one step later."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (n, T, 2)).astype(np.float32)
    targets = np.concatenate([np.zeros((n, 1, 2)), bits[:, :-1]], axis=1)
    mask = np.ones((n, T), np.float32)
    mask[:, 0] = 0
    return dict(inputs=bits, targets=targets, mask=mask)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    np.savez(folder / "reverse.npz", **reverse_arrays())
    np.savez_compressed(folder / "reverse-compressed.npz", **reverse_arrays())
    np.savez(folder / "reverse-more.npz", **reverse_arrays(n=7, seed=5))
    np.savez(folder / "bits.npz", **bits_arrays())
    return folder


def test_an_uncompressed_file_is_memory_mapped_and_a_compressed_one_read(files):
    mapped = arrays.ArrayFile(files / "reverse.npz")
    read = arrays.ArrayFile(files / "reverse-compressed.npz")
    assert all(isinstance(mapped.arrays[n], np.memmap)
               for n in ("inputs", "targets", "mask", "lengths"))
    assert not isinstance(read.arrays["inputs"], np.memmap)
    rows = np.array([[3, 0], [19, 3]])  # any shape of rows
    for a, b in zip(mapped.gather(rows), read.gather(rows)):
        np.testing.assert_array_equal(a, b)
    inputs, targets, mask = mapped.gather(rows)
    assert (inputs.shape, targets.shape, mask.shape) == ((2, 2, 7, 6), (2, 2, 7), (2, 2, 7))
    assert (inputs.dtype, targets.dtype, mask.dtype) == (np.float32, np.int32, np.float32)


def test_the_sizes_follow_the_arrays(files):
    task = ArrayTask(files / "reverse.npz")
    assert (task.name, task.kind, task.input_size, task.output_size) == ("reverse", "classes",
                                                                           6, 4)
    bits = ArrayTask(files / "bits.npz")
    assert (bits.kind, bits.input_size, bits.output_size) == ("bits", 2, 2)


def test_the_mask_is_the_files_mask_up_to_each_length_and_padding_targets_are_zero():
    data = reverse_arrays()
    a = {"inputs": data["inputs"], "mask": data["mask"], "lengths": np.full(20, 5)}
    m = arrays._scored(a, np.arange(20), 7)
    np.testing.assert_array_equal(m, data["mask"] * (np.arange(7) < 5))
    only_lengths = arrays._scored({"inputs": data["inputs"], "lengths": data["lengths"]},
                                  slice(0, 20), 7)
    np.testing.assert_array_equal(only_lengths, np.arange(7) < data["lengths"][:, None])


def test_the_held_out_split_is_fixed_disjoint_and_the_same_for_every_run(files):
    a, b = ArrayTask(files / "reverse.npz"), ArrayTask(files / "reverse.npz", val_fraction=0.1)
    (_, train), (_, val) = a.split("train"), a.split("val")
    assert len(val) == 2 and len(train) == 18
    assert sorted([*train, *val]) == list(range(20))
    np.testing.assert_array_equal(val, b.split("val")[1])
    assert len(ArrayTask(files / "reverse.npz", val_fraction=0.01).split("val")[1]) == 1


def test_a_held_out_file_is_held_out_whole_and_the_first_file_all_trains(files):
    task = ArrayTask(files / "reverse.npz", val_data=files / "reverse-more.npz")
    data, rows = task.split("val")
    assert data.path.name == "reverse-more.npz" and list(rows) == list(range(7))
    assert list(task.split("train")[1]) == list(range(20))


def test_batches_are_a_pure_function_of_the_key_eager_jitted_and_vmapped(files):
    task = ArrayTask(files / "reverse.npz")
    key = jax.random.key(7)
    eager = task.sample(key, 4)
    jitted = jax.jit(task.sample, static_argnums=1)(key, 4)
    keys = jnp.stack([key, jax.random.key(8)])
    vmapped = jax.vmap(lambda k: task.sample(k, 4))(keys)
    for a, b, c in zip(eager, jitted, vmapped):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c[0])
    assert not np.array_equal(vmapped.inputs[0], vmapped.inputs[1])


def test_training_batches_come_from_the_training_part_and_held_out_ones_from_the_rest(files):
    task = ArrayTask(files / "reverse.npz")
    train = jax.jit(task.sample, static_argnums=1)(jax.random.key(0), 64)
    val = jax.jit(lambda k: task.sample(k, 64, split="val"))(jax.random.key(0))
    ids = lambda b: set(np.asarray(b.inputs[:, 0, 0]).astype(int))  # noqa: E731
    assert ids(train) <= set(task.split("train")[1]) and len(ids(train)) > 10
    assert ids(val) == set(task.split("val")[1])


def test_the_validation_set_is_every_held_out_sequence_in_order(files):
    task = ArrayTask(files / "reverse.npz", val_data=files / "reverse-more.npz")
    batches = task.validation_set(count=512, seed=0)
    assert len(batches) == 1 and batches[0].inputs.shape[0] == 7
    few = arrays.Batches(*task.split("val"), size=3)
    assert [b.inputs.shape[0] for b in few] == [3, 3, 1]
    ids = np.concatenate([np.asarray(b.inputs[:, 0, 0]) for b in few])
    np.testing.assert_array_equal(ids, np.arange(7))


def test_class_targets_are_scored_by_softmax_cross_entropy_and_accuracy(files):
    task = ArrayTask(files / "reverse.npz")
    batch = task.validation_set(0, 0)[0]
    logits = 3.0 * jax.nn.one_hot(batch.targets, 4)  # right wherever scored, but unsure
    right = np.log(np.exp(3.0) + 3.0) - 3.0  # nats of each scored step
    steps = np.asarray(batch.mask).sum(axis=1)
    assert np.isclose(task.loss(logits, batch), np.mean(steps * right), rtol=1e-5)
    m = task.update_metrics(logits, batch)
    assert np.isclose(m["bits"], m["loss"] / losses.LN2) and m["bit_errors"] == 0
    wrong = logits.at[:, :, 0].add(10.0)  # says class 0 everywhere
    totals = {k: float(v) for k, v in task.eval_totals(wrong, batch).items()}
    figures = task.eval_figures(totals)
    targets, mask = np.asarray(batch.targets), np.asarray(batch.mask)
    errors = ((targets != 0) * mask).sum()
    assert totals["scored"] == mask.sum() and totals["errors"] == errors
    assert figures["accuracy"] == pytest.approx(1 - errors / mask.sum())
    assert figures["wrong_bit_fraction"] == pytest.approx(errors / mask.sum())
    assert figures["bit_errors"] == pytest.approx(errors / 2)


def test_bit_targets_are_scored_as_the_papers_tasks_are(files):
    task = ArrayTask(files / "bits.npz")
    batch = task.validation_set(0, 0)[0]
    logits = jnp.zeros(batch.targets.shape)
    expected = losses.metrics(logits, batch.targets, batch.mask)
    assert task.update_metrics(logits, batch)["bits"] == expected["bits"]
    assert "accuracy" not in task.eval_figures(
        {k: float(v) for k, v in task.eval_totals(logits, batch).items()})


def _write(folder, name, **changes):
    """The reverse arrays with ``changes`` (None drops an array), saved as ``name``."""
    data = {**reverse_arrays(n=6), **changes}
    path = folder / name
    np.savez(path, **{k: v for k, v in data.items() if v is not None})
    return path


def _nan_inputs():
    inputs = reverse_arrays(n=6)["inputs"]
    inputs[4, 2, 1] = np.nan
    return inputs


def _mask_without(i):
    mask = reverse_arrays(n=6)["mask"]
    mask[i] = 0
    return mask


BAD = [  # (name, changes, the message, in part)
    ("no-targets", dict(targets=None), "has no array 'targets' (its arrays: classes, inputs, "
                                       "lengths, mask); save it with numpy.savez("),
    ("no-inputs", dict(inputs=None), "has no array 'inputs'"),
    ("rank", dict(inputs=np.zeros((6, 7))), "inputs has shape (6, 7); expected (N, T, C)"),
    ("targets-rank", dict(targets=np.zeros((6,), int)), "targets has shape (6,); expected "
                                                         "(N, T, K) bits or (N, T) class"),
    ("n", dict(mask=np.ones((5, 7))), "inputs has 6 sequences but mask has 5"),
    ("t", dict(targets=np.zeros((6, 6), int)), "inputs has 7 steps but targets has 6"),
    ("nan", dict(inputs=_nan_inputs()), "inputs holds nan at sequence 4, step 2, channel 1; "
                                        "inputs must be finite"),
    ("inf", dict(inputs=np.full((6, 7, 6), np.inf, np.float32)), "inputs holds inf at "
                                                                  "sequence 0, step 0"),
    ("bits", dict(targets=np.full((6, 7, 2), 0.5), classes=None),
     "targets holds 0.5 at sequence 0, step"),
    ("classes", dict(classes=np.array(2)), "a scored class must be in [0, 2) (classes=2)"),
    ("negative", dict(targets=np.full((6, 7), -2)), "targets holds class -2 at sequence 0"),
    ("float-classes", dict(targets=np.zeros((6, 7))), "targets of shape (N, T) are class "
                                                      "indices and must be integers"),
    ("length-0", dict(lengths=np.array([3, 0, 3, 3, 3, 3])), "lengths holds 0 at sequence 1; "
                                                             "expected a length from 1 to T=7"),
    ("length-T", dict(lengths=np.array([3, 3, 8, 3, 3, 3])), "lengths holds 8 at sequence 2"),
    ("mask-0", dict(mask=np.zeros((6, 7))), "mask is 0 at every step, so nothing would be "
                                            "scored"),
    ("mask-0-one", dict(mask=_mask_without(3)), "sequence 3 has no scored step"),
    ("mask-half", dict(mask=np.full((6, 7), 0.5)), "mask holds 0.5 at sequence 0, step 0; "
                                                   "expected 0 (not scored) or 1"),
    ("typo", dict(lenghts=np.ones(6, int)), "has an array 'lenghts' that diffmem does not read"),
]


@pytest.mark.parametrize("name, changes, message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_file_gets_one_line_naming_it_before_any_directory_exists(
        name, changes, message, tmp_path, capsys):
    path = _write(tmp_path, f"{name}.npz", **changes)
    run_dir = tmp_path / "run"
    assert main(["train", "--data", str(path), "--run-dir", str(run_dir)]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith(f"error: {path}") and message in out, out
    assert "Traceback" not in out and not run_dir.exists()


def _truncated(path):
    np.savez_compressed(path, inputs=np.zeros((50, 7, 6)), targets=np.zeros((50, 7), int))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2] + data[-200:])  # the directory kept, a member cut


def _npy(path):
    with open(path, "wb") as f:
        np.save(f, np.zeros((2, 3, 4)))


@pytest.mark.parametrize("write, message", [
    (lambda p: p.write_text("inputs,targets\n"), "is not an .npz file (a zip of .npy arrays)"),
    (_npy, "is not an .npz file"),
    (lambda p: None, ": no such file; give an .npz file"),
    (lambda p: np.savez(p, inputs=np.array([[[None]]], dtype=object), targets=np.zeros((1, 1))),
     "inputs is not a numeric .npy array (dtype object; expected numbers)"),
    (_truncated, "is not a readable .npz file"),
], ids=["text", "npy", "missing", "objects", "damaged"])
def test_a_file_that_is_not_an_npz_of_numbers_gets_one_line(write, message, tmp_path, capsys):
    path = tmp_path / "data.npz"
    write(path)
    assert main(["train", "--data", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith(f"error: {path}") and message in out, out
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, message", [
    (["--val-fraction", "1.5"], "--val-fraction 1.5 must be between 0 and 1"),
    (["--val-fraction", "0.5", "--val-data", "x.npz"], "give --val-fraction or --val-data"),
    (["copy"], "give a task (copy) or --data"),
    (["--val-data", "SELF"], "is the training file itself, so nothing would be held out"),
])
def test_data_options_that_do_not_go_together_are_refused(argv, message, files, capsys):
    argv = [str(files / "reverse.npz") if a == "SELF" else a for a in argv]
    assert main(["train", "--data", str(files / "reverse.npz"), *argv]) == 2
    assert message in " ".join(capsys.readouterr().out.split())


def test_train_on_classes_resume_exactly_and_evaluate_a_file_from_elsewhere(
        files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(files)  # a relative path is stored absolute
    whole, halves = tmp_path / "whole", tmp_path / "halves"
    assert main(["train", "--data", "reverse.npz", "--sequences", "32", "--run-dir",
                 str(whole), *TINY]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "validation accuracy" in out and "no target: trained for its budget" in out
    assert main(["train", "--data", "reverse.npz", "--sequences", "16", "--run-dir",
                 str(halves), *TINY]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", str(halves), "--sequences", "32"]) == 0
    for name in (checkpoint.FILENAME, checkpoint.BEST):
        (a, ha), (b, hb) = checkpoint.read(whole / name), checkpoint.read(halves / name)
        assert ha["step"] == hb["step"] and sorted(a) == sorted(b)
        assert all(np.array_equal(a[k], b[k]) for k in a), name
    summary = json.loads((whole / "summary.json").read_text())
    assert summary["task"] == f"npz:{files / 'reverse.npz'}"
    assert summary["validation"]["sequences"] == 2 and "accuracy" in summary["validation"]
    capsys.readouterr()
    assert main(["eval", str(whole), "--data", str(files / "reverse-more.npz"), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["sequences"] == 7 and 0 <= row["accuracy"] <= 1
    assert main(["eval", str(whole), "--json"]) == 0  # the held-out set, all of it
    [row] = json.loads(capsys.readouterr().out)
    assert row["label"] == "held-out set" and row["bits"] == summary["validation"]["bits"]
    assert main(["eval", str(whole), "--data", str(files / "bits.npz")]) == 2
    assert "has bits targets, and the model was trained on classes" in capsys.readouterr().out


def test_train_on_bits_with_a_held_out_file_and_draw_its_memory(files, tmp_path, capsys):
    run_dir = tmp_path / "run"
    np.savez(tmp_path / "more-bits.npz", **bits_arrays(n=5, seed=3))
    assert main(["train", "--data", str(files / "bits.npz"), "--val-data",
                 str(tmp_path / "more-bits.npz"), "--sequences", "16", "--run-dir",
                 str(run_dir), *TINY]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["validation"]["sequences"] == 5 and "accuracy" not in summary["validation"]
    assert summary["generalisation"][0]["label"] == "held-out set"
    assert main(["plot", str(run_dir), "--figure", "memory"]) == 0
    assert (run_dir / "figures" / "memory.png").is_file()


def test_a_population_trains_on_a_file_and_its_members_report(files, tmp_path):
    run_dir = tmp_path / "pop"
    assert main(["train", "--data", str(files / "reverse.npz"), "--seeds", "0,1",
                 "--sequences", "16", "--run-dir", str(run_dir), *TINY]) == 0
    for member in ("seed-0", "seed-1"):
        summary = json.loads((run_dir / member / "summary.json").read_text())
        assert summary["validation"]["sequences"] == 2 and "accuracy" in summary["validation"]
    assert main(["report", str(run_dir / "seed-1")]) == 0
    assert "no target: trained for its budget" in (run_dir / "seed-1" / "report.html").read_text()


def test_the_default_run_directory_is_named_after_the_file(files):
    from diffmem import cli
    from diffmem.config import resolve

    config = resolve(arrays.spec(files / "reverse.npz"), "lstm")
    assert str(cli._default_run_dir(config)).startswith("runs/reverse-lstm-")
    assert tasks.get(config.task).name == "reverse"


def test_the_file_that_docs_your_data_writes_is_good_data(tmp_path, monkeypatch):
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "your-data.md").read_text()
    script = doc.split("```python\n")[1].split("```")[0]
    monkeypatch.chdir(tmp_path)
    exec(script, {})
    task = ArrayTask("reverse.npz")
    assert (task.kind, task.input_size, task.output_size) == ("classes", 9, 8)
    assert len(task.split("val")[1]) == 500


def test_arrays_in_memory_make_the_same_task_as_their_file(files):
    from diffmem.config import resolve

    path = files / "reverse.npz"
    in_memory = ArrayTask(dict(np.load(path)), val_fraction=0.25)
    on_disk = ArrayTask(path, val_fraction=0.25)
    assert (in_memory.input_size, in_memory.output_size) == (on_disk.input_size,
                                                             on_disk.output_size)
    key = jax.random.key(3)
    for a, b in zip(in_memory.sample(key, 5), on_disk.sample(key, 5)):
        np.testing.assert_array_equal(a, b)
    tasks.register("in-memory", lambda: in_memory)
    try:
        assert resolve("in-memory").task == "in-memory"  # usable with train_and_evaluate
    finally:
        tasks.unregister("in-memory")
