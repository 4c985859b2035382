"""Tests for task specs, what a run's ``Config.task`` may hold besides a registered name:
``module:Attr`` (a task defined outside diffmem, trained and evaluated from the command line)
and ``npz:FILE`` (a file of arrays, built once while the file is unchanged); and for
``tasks.unregister``."""

import json
import os
import sys
import textwrap

import numpy as np
import pytest

from diffmem import tasks
from diffmem.cli import main
from diffmem.config import ConfigError, resolve
from diffmem.tasks import Copy, arrays

TINY = ["--batch-size", "4", "--sequences", "16", "--set", "model.controller_size=16",
        "--set", "model.memory_rows=16", "--set", "model.memory_width=6",
        "--set", "train.eval_every=16", "--set", "train.val_size=8",
        "--set", "train.eval_count=4", "--set", "train.minutes=none"]

# A user's module: a task of about twenty lines, a factory, and things that are not tasks.
MODULE = '''
import jax
import jax.numpy as jnp

from diffmem.tasks import Batch, Task


class Parity(Task):
    """The running parity of random bits: bit t of the target is the parity of inputs 0..t."""

    name = "parity"
    input_size = output_size = 1
    target_bits = 0.5
    eval_sizes = ({"length": 12},)

    def __init__(self, length=6):
        self.length = length

    def sample(self, key, batch_size, length=None):
        T = length or self.length
        x = jax.random.bernoulli(key, 0.5, (batch_size, T, 1)).astype(jnp.float32)
        return Batch(x, jnp.cumsum(x, axis=1) % 2, jnp.ones((batch_size, T)))

    def parse_size(self, text):
        return {"length": int(text)}

    def describe_size(self, sizes):
        return f"length {sizes.get('length', self.length)}"


def short():
    return Parity(length=4)


class NoSample(Task):
    name, input_size, output_size, target_bits, eval_sizes = "x", 1, 1, 1.0, ({},)


def not_a_task():
    return 42


def broken():
    return Parity(lenght=4)


NUMBER = 3
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """The module above as ``user_tasks_<n>.py`` in a folder of its own, the current folder;
    sys.path and sys.modules as they were afterwards."""
    name = f"user_tasks_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**6}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)


def test_a_module_task_is_a_class_or_a_factory_with_arguments(user_module):
    sys.path.append(os.getcwd())
    task = tasks.get(f"{user_module}:Parity")
    assert (task.name, task.length) == ("parity", 6)
    assert tasks.get(f"{user_module}:Parity", length=9).length == 9
    assert tasks.get(f"{user_module}:short").length == 4
    assert user_module + ":Parity" not in tasks.names()


@pytest.mark.parametrize("attr, message", [
    ("Missing", "has no Missing; name a Task class or a function returning a Task"),
    ("NUMBER", "NUMBER is a int, not a Task class or a function returning a Task"),
    ("not_a_task", "not_a_task() returned a int, not a diffmem.tasks.Task"),
    ("broken", "broken() failed: TypeError: "),
    ("jnp", "jnp is a module, not a Task class"),
    ("NoSample", "(class NoSample) cannot be used: it lacks sample (the method that draws a "
                 "batch); implement sample"),
])
def test_a_module_attribute_that_is_not_a_task_gets_one_line(attr, message, user_module):
    sys.path.append(os.getcwd())
    with pytest.raises(ValueError) as info:
        tasks.get(f"{user_module}:{attr}")
    assert str(info.value).startswith(f"task '{user_module}:{attr}'") and message in str(info.value)


def test_a_module_not_on_the_path_says_where_to_put_it():
    with pytest.raises(ValueError, match="cannot import no_such_module_here .*; run diffmem "
                                         "in the folder that holds it, or add that folder to "
                                         "PYTHONPATH"):
        tasks.get("no_such_module_here:Task")


def test_an_unknown_task_names_the_tasks_and_the_ways_to_give_your_own():
    with pytest.raises(ConfigError) as info:
        resolve("cpy")
    assert str(info.value) == (
        "unknown task 'cpy'; the tasks are: copy, repeat-copy, associative-recall, "
        "dynamic-ngrams, priority-sort; or your own: MODULE:ATTR (a Task class or function in "
        "a module on the path), or --data FILE.npz")


def test_a_module_task_trains_evaluates_and_plots_from_the_command_line(user_module, capsys):
    # No sys.path change here: the command line finds modules in the current folder.
    spec = f"{user_module}:Parity"
    assert main(["train", spec, *TINY, "--run-dir", "run"]) == 0
    summary = json.loads(open("run/summary.json").read())
    assert summary["task"] == spec and summary["generalisation"][0]["label"] == "length 12"
    config = json.loads(open("run/config.json").read())
    assert config["task"] == spec and config["model"]["kind"] == "ntm-lstm"
    capsys.readouterr()
    assert main(["eval", "run", "--sizes", "5", "--count", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] == "length 5"
    assert main(["plot", "run", "--figure", "memory"]) == 0
    assert main(["report", "run"]) == 0 and os.path.isfile("run/report.html")
    assert main(["config", spec]) == 0


def test_a_module_task_has_no_paper_preset(user_module):
    sys.path.append(os.getcwd())
    with pytest.raises(ConfigError, match="there is no paper preset for task"):
        resolve(f"{user_module}:Parity", preset="paper")


def test_an_npz_task_is_read_once_while_its_file_is_unchanged(tmp_path):
    path = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(path, inputs=rng.normal(size=(5, 3, 2)), targets=rng.integers(0, 3, (5, 3)))
    spec = arrays.spec(path)
    first = tasks.get(spec)
    assert tasks.get(spec) is first and first.output_size == 3
    np.savez(path, inputs=rng.normal(size=(5, 3, 2)), targets=rng.integers(0, 2, (5, 3, 4)))
    os.utime(path, ns=(1, 1))  # a changed file, even within the clock's resolution
    again = tasks.get(spec)
    assert again is not first and (again.kind, again.output_size) == ("bits", 4)
    assert tasks.get(spec, val_fraction=0.5) is not again  # arguments: built afresh


def test_an_npz_spec_holds_absolute_paths_and_its_options(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = arrays.spec("a.npz", val_data="sub/b.npz")
    assert spec == f"npz:{tmp_path}/a.npz?val_data={tmp_path}/sub/b.npz"
    assert arrays.parse_spec(spec) == {"path": f"{tmp_path}/a.npz",
                                       "val_data": f"{tmp_path}/sub/b.npz"}
    assert arrays.parse_spec("npz:x.npz?val_fraction=0.25") == {"path": "x.npz",
                                                               "val_fraction": 0.25}
    with pytest.raises(ValueError, match="unknown option 'shuffle'; the options are "
                                         "val_fraction and val_data"):
        tasks.get("npz:x.npz?shuffle=1")
    with pytest.raises(ValueError, match="val_fraction='half' must be a number between 0 and 1"):
        tasks.get("npz:x.npz?val_fraction=half")


def test_unregister_removes_a_task_and_refuses_an_unknown_name():
    tasks.register("short-copy-for-unregister", Copy)
    assert "short-copy-for-unregister" in tasks.names()
    tasks.unregister("short-copy-for-unregister")
    assert "short-copy-for-unregister" not in tasks.names()
    with pytest.raises(ValueError, match="no task is registered as 'nope'"):
        tasks.unregister("nope")
