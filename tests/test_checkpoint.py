import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from safetensors import safe_open
from safetensors.numpy import save_file

import diffmem
from diffmem import checkpoint


def _model(width=3):
    return nnx.Linear(width, 2, rngs=nnx.Rngs(0))


def jax_leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _save(path, model, **meta):
    params = nnx.state(model, nnx.Param)
    opt_state = optax.adam(1e-3).init(params)
    header = {"config": {"task": "copy"}, "step": 7, "counters": {"sequences": 28}, **meta}
    checkpoint.save(path, nnx.state(model), header, opt_state,
                    extra={"rollback": (params, opt_state)})
    return params, opt_state


def test_a_checkpoint_round_trips_its_tensors_and_json_header(tmp_path):
    path = tmp_path / checkpoint.FILENAME
    model = _model()
    params, opt_state = _save(path, model)
    tensors, header = checkpoint.read(path)
    assert (header["format"], header["version"], header["step"]) == (
        checkpoint.FORMAT, checkpoint.VERSION, 7)
    assert checkpoint.read_header(path) == header  # the header alone, the tensors unread
    # Settings are JSON in the safetensors header: nothing is unpickled or executed.
    with safe_open(path, framework="numpy") as f:
        assert json.loads(f.metadata()["diffmem"])["counters"] == {"sequences": 28}
    assert {name.split("/")[0] for name in tensors} == {"model", "optimizer", "rollback"}
    restored = checkpoint.restore_state(path, nnx.state(_model()), tensors)
    for a, b in zip(jax_leaves(restored), jax_leaves(nnx.state(model))):
        np.testing.assert_array_equal(a, b)
    template = optax.adam(1e-3).init(nnx.state(_model(), nnx.Param))
    for a, b in zip(jax_leaves(checkpoint.restore_tree(path, template, tensors, "optimizer")),
                    jax_leaves(opt_state)):
        np.testing.assert_array_equal(a, b)
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint.FILENAME]  # no temporary file


def test_a_checkpoint_of_another_model_names_the_tensor_that_does_not_fit(tmp_path):
    path = tmp_path / checkpoint.FILENAME
    _save(path, _model(width=3))
    tensors, _ = checkpoint.read(path)
    with pytest.raises(checkpoint.CheckpointError, match=r"'model/kernel' is float32\[3, 2\], "
                                                          r"the model expects float32\[5, 2\]"):
        checkpoint.restore_state(path, nnx.state(_model(width=5)), tensors)


def test_a_crash_while_saving_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / checkpoint.FILENAME
    _save(path, _model())
    before = path.read_bytes()
    monkeypatch.setattr(os, "replace", lambda *args: (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(OSError, match="killed"):
        _save(path, _model(), step=8)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint.FILENAME]


def test_files_that_are_not_diffmem_checkpoints_of_this_version_are_refused(tmp_path):
    other = tmp_path / "other.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, str(other))
    for read in (checkpoint.read, checkpoint.read_header):
        with pytest.raises(checkpoint.CheckpointError, match="not a diffmem checkpoint"):
            read(other)
    future = tmp_path / "future.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, str(future), metadata={"diffmem": json.dumps(
        {"format": checkpoint.FORMAT, "version": 99, "config": {}, "step": 0, "counters": {}})})
    for read in (checkpoint.read, checkpoint.read_header):
        with pytest.raises(checkpoint.CheckpointError, match="format version 99.*reads version 1"):
            read(future)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing"])
def test_a_damaged_checkpoint_gives_an_error_naming_the_file(tmp_path, tiny_run, damage):
    path = tmp_path / checkpoint.FILENAME
    shutil.copy(tiny_run[0] / checkpoint.FILENAME, path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    else:
        path.unlink()
    with pytest.raises(checkpoint.CheckpointError, match=str(path)):
        diffmem.load(tmp_path)


def test_zero_size_arrays_and_scalars_survive_a_round_trip(tmp_path):
    path = tmp_path / checkpoint.FILENAME
    tree = {"count": jnp.asarray(3, jnp.int32), "empty": jnp.zeros((0, 4))}
    checkpoint.save(path, nnx.state(_model()), {"config": {}, "step": 0, "counters": {}},
                    extra={"misc": tree})
    tensors, _ = checkpoint.read(path)
    back = checkpoint.restore_tree(path, tree, tensors, "misc")
    assert int(back["count"]) == 3 and back["empty"].shape == (0, 4)
