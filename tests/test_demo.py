"""The pretrained models shipped in the package, and `diffmem demo`."""

import os
import shutil
import subprocess
import sys

import pytest
from flax import nnx

from diffmem import checkpoint, demo
from diffmem.cli import _parser, main
from diffmem.config import resolve
from diffmem.models import build_model, count_parameters

# (task, model kind) of each shipped model, the task's default first: the runs that reached
# their target (README results table). Add an exported model here.
SHIPPED = [("associative-recall", "ntm-ff"), ("associative-recall", "dnc"), ("copy", "ntm-lstm"),
           ("copy", "dnc"), ("dynamic-ngrams", "ntm-lstm"), ("dynamic-ngrams", "ntm-ff"),
           ("priority-sort", "dnc"), ("repeat-copy", "ntm-lstm")]


def test_a_pretrained_model_ships_for_every_task_that_reached_its_target():
    assert demo.available() == SHIPPED
    assert demo.default_model("copy") == "ntm-lstm"
    assert demo.default_model("priority-sort") == "dnc"  # no NTM reached its target


def test_pretrained_models_are_small_and_load_without_optimiser_state():
    for task, kind in SHIPPED:
        path = demo.pretrained_path(task, kind)
        assert path.stat().st_size < demo.MAX_BYTES
        tensors, header = checkpoint.read(path)
        assert not any(name.startswith("optimizer/") for name in tensors)
        model, config, info = demo.load_pretrained(task, kind)
        assert config.task == task and config.model.kind == kind and count_parameters(model) > 0
        # trained by reproduce.py, or by `diffmem train` and recorded with --from-run
        assert ("experiments/reproduce.py" in info["command"]
                or "diffmem train" in info["command"])
        assert info["validation"]["bits"] < info["target_bits"]


def test_demo_copies_a_sequence_twice_the_training_length(tmp_path, capsys):
    out = tmp_path / "copy.png"
    assert main(["demo", "copy", "--seed", "0", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "length 40, seed 0" in text and "trained on lengths 1" in text
    assert "0.00%" in text  # no wrong bit
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_demo_of_a_model_not_shipped_lists_those_that_are(capsys):
    assert main(["demo", "repeat-copy", "--model", "dnc"]) == 2
    text = " ".join(capsys.readouterr().out.split())
    assert "no pretrained dnc for 'repeat-copy'" in text
    assert "associative-recall (ntm-ff, dnc), copy (ntm-lstm" in text
    assert demo.describe_available() in text
    assert main(["demo", "sorting"]) == 2
    assert "unknown task 'sorting'" in capsys.readouterr().out


def test_demo_rejects_bad_options_before_running(tmp_path, capsys):
    assert main(["demo", "dynamic-ngrams", "--size", "5"]) == 2
    assert "no size controls" in capsys.readouterr().out
    assert main(["demo", "copy", "--length", "0"]) == 2
    assert "'0'" in capsys.readouterr().out
    assert main(["demo", "copy", "--out", str(tmp_path / "figure.svg")]) == 2
    assert "must name a .png file" in capsys.readouterr().out
    assert main(["demo", "copy", "--seed", "-2"]) == 2
    assert "--seed -2" in capsys.readouterr().out


def test_demo_parses_the_model_to_run():
    assert _parser().parse_args(["demo", "copy", "--model", "dnc"]).model == "dnc"
    assert _parser().parse_args(["demo", "copy"]).model is None  # the task's default


@pytest.fixture
def weights(tmp_path, monkeypatch):
    """A weights folder holding the shipped copy model (its default, an NTM) only."""
    folder = tmp_path / "weights"
    folder.mkdir()
    shutil.copy(demo.WEIGHTS / "copy.safetensors", folder)
    monkeypatch.setattr(demo, "WEIGHTS", folder)
    return folder


def _untrained_dnc(path):
    """A small untrained DNC for copy, saved as a shipped model would be (no training)."""
    config = resolve("copy", "dnc").replace(
        model=dict(controller_size=16, memory_rows=16, memory_width=6))
    meta = {"config": config.to_dict(), "step": 0, "counters": {},
            "pretrained": {"sequences": 0, "validation": {"bits": 1.0}}}
    checkpoint.save(path, nnx.state(build_model(config)), meta)


def test_a_missing_model_is_named_with_those_that_exist(weights, capsys):
    assert main(["demo", "copy", "--model", "dnc"]) == 2
    text = " ".join(capsys.readouterr().out.split())
    assert "there is no pretrained dnc for 'copy'" in text
    assert "pretrained models exist for: copy (ntm-lstm)" in text
    assert "`diffmem train copy --model dnc`" in text
    assert main(["demo", "copy", "--model", "ntm"]) == 2
    assert "unknown model 'ntm'" in capsys.readouterr().out


def test_a_task_ships_another_model_as_task_model_safetensors(weights, tmp_path, capsys):
    # The export names a second kind TASK-MODEL and leaves the default where it is.
    assert demo.export_path("copy", "ntm-lstm") == weights / "copy.safetensors"
    assert demo.export_path("copy", "dnc") == weights / "copy-dnc.safetensors"
    assert demo.export_path("repeat-copy", "dnc") == weights / "repeat-copy.safetensors"
    _untrained_dnc(weights / "copy-dnc.safetensors")
    assert demo.available() == [("copy", "ntm-lstm"), ("copy", "dnc")]
    assert demo.describe_available() == "copy (ntm-lstm, dnc)"
    model, config, _ = demo.load_pretrained("copy", model="dnc")
    assert config.model.kind == "dnc" and type(model).__name__ == "DNC"
    assert demo.load_pretrained("copy")[1].model.kind == "ntm-lstm"
    assert demo.pretrained_path("copy", "ntm-lstm") == weights / "copy.safetensors"
    out = tmp_path / "dnc.png"
    assert main(["demo", "copy", "--model", "dnc", "--length", "3", "--seed", "0",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "diffmem demo copy --model dnc" in text and "the pretrained dnc" in text
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_a_shipped_file_named_for_another_model_is_refused(weights):
    # Renaming a file does not change the model in it; the header says what it holds.
    shutil.copy(weights / "copy.safetensors", weights / "copy-dnc.safetensors")
    with pytest.raises(ValueError, match="kind ntm-lstm for copy: name it copy.safetensors"):
        demo.available()


def test_demo_runs_from_the_installed_package(tmp_path):
    """Outside the source tree, so that the weights come from the installed package data
    (CI installs the package from a wheel, not in editable mode, so this checks that the
    weights are packaged)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-m", "diffmem", "demo", "associative-recall", "--seed", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 items, seed 1" in result.stdout
    assert (tmp_path / "demo-associative-recall.png").stat().st_size > 10_000
