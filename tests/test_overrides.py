import dataclasses

import pytest

from diffmem.config import ConfigError, ModelConfig, TrainConfig, resolve
from diffmem.overrides import apply_sets, parse_value


@pytest.mark.parametrize("item, field, value", [
    ("model.memory_rows=64", "memory_rows", 64),
    ("train.lr=3", "lr", 3.0),  # a float field reads an integer as a float
    ("train.lr=1e-3", "lr", 1e-3),
    ("train.lr_half_life=none", "lr_half_life", None),
    ("train.lr_half_life=1000", "lr_half_life", 1000),
    ("model.state_grad_clip=2", "state_grad_clip", 2.0),  # off by default, a float when set
    ("train.minutes=NULL", "minutes", None),
    ("train.early_stop=0", "early_stop", False),
    ("train.tensorboard=TRUE", "tensorboard", True),
    ("train.optimizer= rmsprop ", "optimizer", "rmsprop"),
])
def test_a_value_is_read_as_its_fields_declared_type(item, field, value):
    config = apply_sets(resolve("copy"), [item])
    got = getattr(config.model if item.startswith("model.") else config.train, field)
    assert got == value and type(got) is type(value)


def test_the_declared_type_wins_over_the_current_value():
    config = resolve("copy").replace(train={"lr": 3})  # an int in a float field
    assert apply_sets(config, ["train.lr=0.5"]).train.lr == 0.5


@pytest.mark.parametrize("item, message", [
    ("train.batch_size=1.5", "'1.5' is not valid here; expected an integer"),
    ("train.batch_size=none", "'none' is not valid here; expected an integer"),
    ("train.early_stop=yes", "'yes' is not valid here; expected true or false"),
    ("train.lr=fast", "'fast' is not valid here; expected a number"),
    ("train.collapse_above=high", "'high' is not valid here; expected a number, or none for off"),
    ("train.lr_half_life=1.5", "expected an integer, or none for off"),
    ("model.nope=1", "is not FIELD=VALUE with a known field; the fields are: model.kind"),
    ("train.lr", "is not FIELD=VALUE with a known field"),
    ("lr=1", "is not FIELD=VALUE with a known field"),
    ("train.batch_size=0", "train.batch_size=0 must be a positive integer"),  # validated
])
def test_a_bad_value_gets_one_clear_message(item, message):
    with pytest.raises(ConfigError) as err:
        apply_sets(resolve("copy"), [item])
    assert message in str(err.value)
    assert ("none for off" in str(err.value)) == ("none for off" in message)


def test_every_field_can_be_set_to_its_default():
    """Each field's type is one the parser reads (a new field of another type fails here)."""
    config = resolve("copy")
    for section, cls in (("model", ModelConfig), ("train", TrainConfig)):
        for field in dataclasses.fields(cls):
            value = getattr(getattr(config, section), field.name)
            assert apply_sets(config, [f"{section}.{field.name}={value}"]) == config, field.name


def test_a_type_the_command_line_cannot_write_is_refused():
    with pytest.raises(ConfigError, match="cannot be set from the command line"):
        parse_value("model.sizes=1,2", "1,2", list[int])
