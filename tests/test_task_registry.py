"""Tests for diffmem.tasks.register and get: a task that lacks a required attribute is refused
when it is registered (or, for what its constructor sets, when it is built), with a message
naming what it lacks; every built-in task, and a subclass of one, is accepted."""

import pytest

from diffmem import tasks
from diffmem.tasks import Copy, Task

BUILT_IN = ["copy", "repeat-copy", "associative-recall", "dynamic-ngrams", "priority-sort"]


@pytest.fixture(autouse=True)
def registry(monkeypatch):
    """A registry of this test's own, so that what it registers goes with it."""
    monkeypatch.setattr(tasks, "_REGISTRY", dict(tasks._REGISTRY))


def _toy(without=(), **attrs):
    """A complete task class, less the attributes (or ``sample``) named in ``without``."""

    def __init__(self):
        for attr, size in (("input_size", 3), ("output_size", 2)):  # as the built-ins do
            if attr not in without:
                setattr(self, attr, size)

    namespace = dict(name="toy", eval_sizes=({},), target_bits=1.0, __init__=__init__,
                     sample=lambda self, key, batch_size: None)
    namespace.update(attrs)
    return type("Toy", (Task,), {k: v for k, v in namespace.items() if k not in without})


def test_a_complete_task_is_registered_and_built():
    tasks.register("toy", _toy())
    task = tasks.get("toy")
    assert (task.name, task.input_size, task.output_size) == ("toy", 3, 2)
    assert "toy" in tasks.names()


def test_the_refusal_names_the_class_the_attribute_what_it_is_for_and_what_to_do():
    with pytest.raises(ValueError) as info:
        tasks.register("toy", _toy(without=["eval_sizes"]))
    assert str(info.value) == (
        "task class Toy cannot be registered as 'toy': it lacks eval_sizes (the sizes "
        "`diffmem eval` measures by default); define it as a class attribute")


@pytest.mark.parametrize("attr", ["name", "eval_sizes", "target_bits", "sample"])
def test_a_task_class_lacking_a_required_attribute_is_refused_when_registered(attr):
    with pytest.raises(ValueError, match=f"cannot be registered as 'toy': it lacks {attr} \\("):
        tasks.register("toy", _toy(without=[attr]))
    assert "toy" not in tasks.names()


@pytest.mark.parametrize("attr", ["input_size", "output_size"])
def test_a_task_lacking_a_size_its_constructor_should_set_is_refused_when_built(attr):
    tasks.register("toy", _toy(without=[attr]))
    with pytest.raises(ValueError) as info:
        tasks.get("toy")
    assert str(info.value).startswith(f"task 'toy' (class Toy) cannot be used: it lacks {attr} (")
    assert str(info.value).endswith("; set it in its class or its __init__")


def test_a_task_built_by_a_function_is_checked_when_built():
    tasks.register("toy", lambda: _toy(without=["input_size"])())
    with pytest.raises(ValueError, match="it lacks input_size"):
        tasks.get("toy")


def test_every_thing_lacking_is_named_at_once():
    with pytest.raises(ValueError) as info:
        tasks.register("toy", _toy(without=["name", "eval_sizes", "sample"]))
    message = str(info.value)
    assert "it lacks name (" in message and "), eval_sizes (" in message
    assert ") and sample (" in message
    assert message.endswith("; define them as class attributes, implement sample")


def test_a_target_relative_to_the_optimum_needs_optimal_bits():
    relative = dict(target_bits=None, target_bits_above_optimum=2.0)
    with pytest.raises(ValueError, match="it lacks optimal_bits .*; implement optimal_bits$"):
        tasks.register("toy", _toy(**relative))
    tasks.register("toy", _toy(**relative, optimal_bits=lambda self, batch: None))
    assert tasks.get("toy").target(optimum=1.0) == 3.0


@pytest.mark.parametrize("name", BUILT_IN)
def test_the_built_in_task_classes_are_accepted(name):
    cls = type(tasks.get(name))
    tasks.register(f"{name}-again", cls)
    assert type(tasks.get(f"{name}-again")) is cls


def test_a_subclass_of_a_built_in_task_is_accepted():
    class EasyCopy(Copy):
        target_bits = 1e9

    tasks.register("easy-copy", EasyCopy)
    assert tasks.get("easy-copy", max_length=4).max_length == 4
