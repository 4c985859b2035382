"""The pretrained models shipped in the package, and `diffmem demo`."""

import os
import subprocess
import sys

from diffmem import checkpoint, demo
from diffmem.cli import main
from diffmem.models import count_parameters

# Tasks whose reproduction run reached its target (README results table); priority sort did not.
SHIPPED = ["associative-recall", "copy", "dynamic-ngrams", "repeat-copy"]


def test_a_pretrained_model_ships_for_every_task_that_reached_its_target():
    assert demo.available() == SHIPPED


def test_pretrained_models_are_small_and_load_without_optimiser_state():
    for task in SHIPPED:
        path = demo.pretrained_path(task)
        assert path.stat().st_size < demo.MAX_BYTES
        tensors, header = checkpoint.read(path)
        assert not any(name.startswith("optimizer/") for name in tensors)
        model, config, info = demo.load_pretrained(task)
        assert config.task == task and count_parameters(model) > 0
        assert info["command"].startswith("python experiments/reproduce.py")
        assert info["validation"]["bits"] < info["target_bits"]


def test_demo_copies_a_sequence_twice_the_training_length(tmp_path, capsys):
    out = tmp_path / "copy.png"
    assert main(["demo", "copy", "--seed", "0", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "length 40, seed 0" in text and "trained on lengths 1" in text
    assert "0.00%" in text  # no wrong bit
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_demo_of_a_task_without_a_pretrained_model_lists_those_with_one(capsys):
    assert main(["demo", "priority-sort"]) == 2
    text = " ".join(capsys.readouterr().out.split())
    assert "no pretrained model for 'priority-sort'" in text
    assert "associative-recall, copy, dynamic-ngrams, repeat-copy" in text
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
