"""The preset table, resolving a configuration, the model registry and `diffmem config`."""

import dataclasses
import itertools
import json
import re
from pathlib import Path

import pytest
from flax import nnx

from diffmem import models, plots, tasks
from diffmem.cli import main
from diffmem.config import (
    Config,
    ConfigError,
    ModelConfig,
    TrainConfig,
    capacity_warnings,
    paper_parameters,
    resolve,
)
from diffmem.presets import OTHER_TASKS, PAPER_MODELS, PRESET_NAMES, PRESETS

ROOT = Path(__file__).resolve().parent.parent
PAPER_TASKS = ("copy", "repeat-copy", "associative-recall", "dynamic-ngrams", "priority-sort")
PAPER_KINDS = ("ntm-lstm", "ntm-ff", "lstm")
KINDS = (*PAPER_KINDS, "dnc")  # the DNC has presets on every task, but no NTM-paper model
# SAM and the SDNC have one default for every task (presets.OTHER_TASKS) and no paper preset.
ALL_KINDS = (*KINDS, "sam", "sdnc")
PAIRS = list(PAPER_MODELS)


def test_the_preset_table_has_a_row_with_a_reason_for_every_task_model_and_preset():
    assert set(PRESETS) == set(itertools.product(PAPER_TASKS, KINDS, PRESET_NAMES))
    assert set(PAPER_MODELS) == set(itertools.product(PAPER_TASKS, PAPER_KINDS))
    for key, row in [*PRESETS.items(), *OTHER_TASKS.items()]:
        assert row.reason.strip().endswith("."), key


def test_rows_set_only_fields_that_differ_from_the_defaults():
    defaults = {"model": dataclasses.asdict(ModelConfig()),
                "train": dataclasses.asdict(TrainConfig())}
    for key, row in [*PRESETS.items(), *OTHER_TASKS.items()]:
        assert "kind" not in row.model, key  # the row's model is the kind
        for section, changes in (("model", row.model), ("train", row.train)):
            for name, value in changes.items():
                assert name in defaults[section], (key, name)
                assert value != defaults[section][name], (key, name)


def test_every_default_of_one_sequence_per_update_says_why_batches_did_not_do_as_well():
    for (task, model, preset), row in PRESETS.items():
        if preset == "default" and row.train.get("batch_size", 32) < 8:
            assert "batches" in row.reason.lower() and "docs/" in row.reason, (task, model)


def heading_anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown page (a repeated one gets -1, -2)."""
    anchors, text = set(), re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE):
        anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n, unique = 0, anchor
        while unique in anchors:
            n += 1
            unique = f"{anchor}-{n}"
        anchors.add(unique)
    return anchors


def test_every_reason_is_one_sentence_that_ends_with_a_link_into_the_docs():
    # The installed package has no results/: a reason points to the guide that gives the
    # evidence, and that guide names the records.
    for key, row in [*PRESETS.items(), *OTHER_TASKS.items()]:
        links = re.findall(r"\((docs/[\w.-]+\.md)(?:#([\w-]+))?\)", row.reason)
        assert len(links) == 1 and row.reason.endswith(")."), (key, row.reason)
        assert "results/" not in row.reason, key
        assert not re.search(r"[.!?]\s", row.reason[:-1]), (key, "one sentence")
        [(page, anchor)] = links
        assert (ROOT / page).is_file(), (key, page)
        assert not anchor or anchor in heading_anchors(ROOT / page), (key, page, anchor)


@pytest.mark.parametrize("task, model, preset", list(PRESETS))
def test_resolve_is_the_defaults_changed_by_the_row(task, model, preset):
    row = PRESETS[(task, model, preset)]
    expected = Config(task=task, preset=preset, model=ModelConfig(kind=model, **row.model),
                      train=TrainConfig(**row.train))
    assert resolve(task, model, preset) == expected


def test_resolve_gives_the_documented_settings_for_key_combinations():
    assert resolve("copy") == Config()  # the dataclass defaults are the copy defaults
    ar = resolve("associative-recall")
    assert ar.model.kind == "ntm-lstm" and ar.model.memory_init == "constant"
    t = ar.train
    assert (t.batch_size, t.optimizer, t.lr, t.grad_clip_mode, t.minutes) == (
        32, "adam", 1e-3, "norm", 30.0)
    ff = resolve("associative-recall", "ntm-ff")
    assert (ff.model.read_heads, ff.model.write_heads, ff.model.controller_size) == (4, 4, 256)
    t = ff.train
    assert (t.batch_size, t.optimizer, t.lr, t.grad_clip_mode, t.minutes) == (
        1, "rmsprop", 1e-4, "value", 30.0)
    copy_paper = resolve("copy", preset="paper")
    assert copy_paper.model.kind == "ntm-lstm" and copy_paper.model.memory_init == "learned"
    t = copy_paper.train
    assert (t.batch_size, t.optimizer, t.lr, t.grad_clip_mode, t.grad_clip, t.minutes) == (
        1, "rmsprop", 1e-4, "value", 10.0, 10.0)
    ps = resolve("priority-sort", "ntm-ff")
    assert (ps.train.optimizer, ps.train.batch_size, ps.train.lr) == ("adam", 32, 1e-3)
    assert resolve("dynamic-ngrams", "lstm", "paper").train.val_size == 1000


@pytest.mark.parametrize("task, model", PAIRS)
def test_paper_preset_is_the_papers_training(task, model):
    config = resolve(task, model, "paper")
    t, m = config.train, config.model
    assert (t.optimizer, t.batch_size, t.grad_clip_mode, t.grad_clip) == (
        "rmsprop", 1, "value", 10.0)
    assert t.lr == PAPER_MODELS[(task, model)]["lr"]
    assert (m.memory_rows, m.memory_width, m.shift_radius) == (128, 20, 1)
    assert (m.controller_size, m.controller_layers) == (PAPER_MODELS[(task, model)]["size"],
                                                        PAPER_MODELS[(task, model)]["layers"])
    if model != "lstm":
        assert m.memory_init == "learned"  # the paper's "learned bias values"
        assert m.read_heads == m.write_heads == PAPER_MODELS[(task, model)]["heads"]


# Defaults that depart from the paper's architecture, each for a measured reason (the preset's).
CHANGED_ARCHITECTURE = {("dynamic-ngrams", "ntm-ff"): dict(read_heads=2, memory_rows=256)}


@pytest.mark.parametrize("task, model", PAIRS)
def test_default_preset_keeps_the_papers_architecture(task, model):
    default, paper = resolve(task, model), resolve(task, model, "paper")
    changed = CHANGED_ARCHITECTURE.get((task, model), {})
    for field in ("kind", "controller_size", "controller_layers", "read_heads", "write_heads",
                  "memory_rows"):
        expected = changed.get(field, getattr(paper.model, field))
        assert getattr(default.model, field) == expected, field
    if (task, model) == ("associative-recall", "ntm-ff"):
        # It trains the paper's way by default, from a constant initial memory.
        assert default.model.memory_init == "constant"
        assert default.replace(preset="paper", model=dict(memory_init="learned"),
                               train=dict(minutes=paper.train.minutes)) == paper
    else:  # batches, of 8 for the NTMs on repeat copy, priority sort's LSTM-controller NTM
        # and dynamic N-grams' feed-forward NTM (presets.PRESETS says why)
        eights = {("repeat-copy", "ntm-lstm"), ("repeat-copy", "ntm-ff"),
                  ("priority-sort", "ntm-lstm"), ("dynamic-ngrams", "ntm-ff")}
        batch = 8 if (task, model) in eights else 32
        assert default.train.optimizer == "adam" and default.train.batch_size == batch
    expected = None if changed else PAPER_MODELS[(task, model)]["parameters"]
    assert paper_parameters(default) == expected
    assert paper_parameters(paper) == PAPER_MODELS[(task, model)]["parameters"]


def test_paper_parameters_is_none_for_a_changed_architecture():
    config = resolve("copy").replace(model=dict(controller_size=64))
    assert paper_parameters(config) is None


def test_paper_parameters_of_the_lstm_baseline_ignore_the_ntm_fields():
    config = resolve("copy", "lstm").replace(model=dict(memory_rows=64))
    assert paper_parameters(config) == 1_352_969


def test_unknown_model_lists_the_registered_models():
    with pytest.raises(ConfigError) as err:
        resolve("copy", "gru")
    assert str(err.value) == ("unknown model 'gru'; the models are: ntm-lstm, ntm-ff, lstm, "
                              "dnc, sam, sdnc")
    with pytest.raises(ConfigError, match="unknown preset 'fast'; the presets are: default"):
        resolve("copy", preset="fast")


def test_a_registered_task_without_a_paper_setting_gets_the_plain_defaults():
    from diffmem.tasks.copy import Copy

    tasks.register("short-copy", lambda: Copy(max_length=4))
    try:
        config = resolve("short-copy")
        assert config == Config(task="short-copy")
        assert paper_parameters(config) is None
        assert resolve("short-copy", "lstm").train.lr == 1e-3  # as on the paper's tasks
        with pytest.raises(ConfigError, match="no paper preset for task 'short-copy'"):
            resolve("short-copy", preset="paper")
    finally:
        tasks._REGISTRY.pop("short-copy")


class _Toy(nnx.Module):
    """A model kind for the registry tests: one linear map per step, no memory."""

    has_memory = False

    def __init__(self, input_size, output_size, *, rngs):
        self.linear = nnx.Linear(input_size, output_size, rngs=rngs)

    def __call__(self, inputs, state=None):
        return self.linear(inputs), state


def test_a_registered_model_kind_is_built_validated_and_listed():
    models.register("toy", lambda task, m, rngs: _Toy(task.input_size, task.output_size,
                                                      rngs=rngs),
                    description="toy model", has_memory=False)
    try:
        config = resolve("copy", "toy")
        assert config == Config(model=ModelConfig(kind="toy"))
        model = models.build_model(config)
        assert isinstance(model, _Toy) and models.count_parameters(model) == 9 * 8 + 8
        assert capacity_warnings(config.replace(model=dict(memory_rows=2))) == []
        assert not plots.has_memory(model)
        with pytest.raises(ConfigError,
                           match="models are: ntm-lstm, ntm-ff, lstm, dnc, sam, sdnc, toy$"):
            resolve("copy", "gru")
        with pytest.raises(ConfigError, match="no paper preset for model 'toy'"):
            resolve("copy", "toy", "paper")
    finally:
        models._REGISTRY.pop("toy")
    assert models.names() == list(ALL_KINDS)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_model_says_whether_it_has_a_memory_as_its_registry_entry_does(kind):
    model = nnx.eval_shape(lambda: models.build_model(resolve("copy", kind)))
    assert plots.has_memory(model) == models.get(kind).has_memory == (kind != "lstm")


def test_config_command_prints_the_configuration_and_parameter_counts(capsys):
    assert main(["config", "copy", "--model", "ntm-ff"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"config", "preset_reason", "parameters", "paper_parameters"}
    assert Config.from_dict(out["config"]) == resolve("copy", "ntm-ff")
    assert out["paper_parameters"] == 17_162
    assert out["parameters"] == 13_536  # 2,560 fewer: the constant memory is not trained
    assert out["preset_reason"] == PRESETS[("copy", "ntm-ff", "default")].reason


def test_config_command_applies_presets_and_overrides_and_rejects_bad_values(capsys):
    assert main(["config", "copy", "--preset", "paper", "--set", "model.memory_rows=64"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["preset"] == "paper" and out["config"]["model"]["memory_rows"] == 64
    assert out["paper_parameters"] is None  # no longer the paper's architecture
    assert main(["config", "copy", "--set", "train.lr=-1"]) == 2
    assert "error: train.lr=-1.0 must be a positive, finite number" in capsys.readouterr().out


@pytest.mark.parametrize("override, field", [
    (dict(train=dict(batch_size=0)), "batch_size"),
    (dict(train=dict(lr=float("nan"))), "lr"),
    (dict(train=dict(optimizer="sgd")), "sgd"),
    (dict(model=dict(shift_radius=64)),
     r"model.shift_radius=64 must be an integer >= 0 and smaller than memory_rows / 2 = 64"),
    (dict(train=dict(tensorboard="yes")), r"train.tensorboard='yes' must be true or false"),
    (dict(train=dict(generalisation_val_size=-1)), "generalisation_val_size"),
    (dict(model=dict(tape_bias=-1.0)),
     r"model.tape_bias=-1.0 must be >= 0 \(0: off\), and needs shift_radius >= 1"),
    (dict(model=dict(kind="lstm", tape_bias=3.0)),
     r"model.tape_bias=3.0 is a setting of the ntm-lstm, ntm-ff only; the lstm has no such"),
    (dict(model=dict(tape_bias=3.0, shift_radius=0)),
     r"model.tape_bias=3.0 must be >= 0 \(0: off\), and needs shift_radius >= 1 \(it is 0\)"),
    (dict(model=dict(tape_bias=3.0, tape_read_heads=2)),
     r"model.tape_read_heads=2 must be between 0 and read_heads=1"),
    (dict(model=dict(tape_read_heads=1)),
     r"model.tape_read_heads=1 starts read heads with tape_bias, which is 0"),
    (dict(model=dict(read_after_write="yes")), r"model.read_after_write='yes' must be true or"),
    (dict(model=dict(kind="dnc", read_after_write=True)),
     r"model.read_after_write=True is a setting of the ntm-lstm, ntm-ff only; the dnc has no"),
    (dict(model=dict(kind="ntm-ff", deallocation=True)),
     r"model.deallocation=True is a setting of the dnc, sdnc only; the ntm-ff has no such part"),
    (dict(model=dict(memory_init="zeros", kind="lstm")), r"model.memory_init='zeros' is a set"),
    (dict(model=dict(state_grad_clip=0.0)),
     r"model.state_grad_clip=0.0 must be a positive number or None \(off\)"),
    (dict(model=dict(kind="lstm", state_grad_clip=10.0)), "the lstm has none"),
])
def test_invalid_configuration_is_rejected_before_training(override, field):
    from diffmem.config import validate

    with pytest.raises(ConfigError, match=field):
        validate(resolve("copy").replace(**override))


def test_old_configurations_with_removed_fields_at_their_defaults_still_load():
    data = resolve("copy").to_dict()
    data["model"]["gate_bias"] = 0.0
    data["train"].update(lr_warmup=0, curriculum=0)
    assert Config.from_dict(data) == resolve("copy")


@pytest.mark.parametrize("section, field, value", [
    ("model", "gate_bias", -2.0), ("train", "lr_warmup", 80), ("train", "curriculum", 400)])
def test_a_removed_field_set_to_something_else_is_refused_by_name(section, field, value):
    data = resolve("copy").to_dict()
    data[section][field] = value
    with pytest.raises(ConfigError, match=rf"{section}\.{field} was removed"):
        Config.from_dict(data)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="copy"):
        resolve("cpy")
    with pytest.raises(ConfigError, match="ntm-lstm, ntm-ff, lstm, dnc"):
        resolve("copy", "gru")
    with pytest.raises(ConfigError, match="default, paper"):
        resolve("copy", preset="fast")


def test_dynamic_ngrams_validates_on_1000_sequences_by_default():
    assert resolve("dynamic-ngrams").train.val_size == 1000  # SPEC: a fixed 1,000-sequence set


def test_paper_preset_is_the_papers_setting():
    config = resolve("copy", "ntm-lstm", "paper")
    train = config.train
    assert (train.optimizer, train.lr, train.batch_size) == ("rmsprop", 1e-4, 1)
    assert (config.train.grad_clip_mode, config.train.grad_clip) == ("value", 10.0)
    assert (config.model.memory_rows, config.model.memory_width) == (128, 20)
