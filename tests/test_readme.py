import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_quickstart_is_exactly_two_commands_one_training_one_testing():
    commands = quickstart_commands()
    assert len(commands) == 2, commands
    assert commands[0].rstrip().endswith("diffmem train copy")
    assert "pytest" in commands[1]


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    assert quickstart_commands()[1] in ci.splitlines()


def test_readmes_python_example_runs(tmp_path, tiny_config):
    from diffmem.train import train_and_evaluate

    train_and_evaluate(tiny_config.replace(train=dict(sequences=4)), tmp_path / "run")
    text = (ROOT / "README.md").read_text()
    section = text.split("## Using it from Python", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "runs/my-copy-run" in code
    namespace = {}
    exec(code.replace("runs/my-copy-run", str(tmp_path / "run")), namespace)
    assert namespace["logits"].shape == (4, 61, 8)
    assert namespace["trace"].write_weights.shape[:3] == (4, 61, 1)


def test_readmes_results_and_parameter_tables_are_built_from_the_records():
    """The README's tables are `python experiments/results_table.py`'s output, not hand-typed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "results_table", ROOT / "experiments" / "results_table.py")
    results_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results_table)
    text = (ROOT / "README.md").read_text()
    expected = {"results": results_table.table(ROOT / "results"),
                "parameters": results_table.parameters_table()}
    for name, block in expected.items():
        start, end = results_table.MARKERS[name]
        assert f"{start}\n{block}\n{end}" in text, (
            f"the README's {name} table is out of date: run "
            "`python experiments/results_table.py --readme README.md`")
