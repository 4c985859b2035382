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
    assert commands[1].index("ruff check") < commands[1].index("pytest")  # lint first


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    assert quickstart_commands()[1] in ci.splitlines()


def test_readmes_python_example_runs(tmp_path, tiny_config):
    from diffmem.training import train_and_evaluate

    train_and_evaluate(tiny_config.replace(train=dict(sequences=4)), tmp_path / "run")
    text = (ROOT / "README.md").read_text()
    section = text.split("## Using it from Python", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "runs/my-copy-run" in code
    namespace = {}
    exec(code.replace("runs/my-copy-run", str(tmp_path / "run")), namespace)
    assert namespace["logits"].shape == (4, 61, 8)
    assert namespace["trace"].write_weights.shape[:3] == (4, 61, 1)


def load_results_table():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "results_table", ROOT / "experiments" / "results_table.py")
    results_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results_table)
    return results_table


def test_every_generated_table_is_built_from_the_records_wherever_it_lives():
    """The tables of README.md and docs/ are `python experiments/results_table.py`'s output
    (results, parameter counts, seed studies), not hand-typed; the README keeps the results."""
    results_table = load_results_table()
    texts = {p.relative_to(ROOT).as_posix(): p.read_text() for p in results_table.documents()}
    assert results_table.MARKERS["results-brief"][0] in texts["README.md"]
    for name, block in results_table.blocks(ROOT / "results").items():
        start, end = results_table.MARKERS[name]
        holders = [path for path, text in texts.items() if start in text]
        assert holders, f"no file of README.md and docs/ holds the {name} table"
        for path in holders:
            assert f"{start}\n{block}\n{end}" in texts[path], (
                f"the {name} table in {path} is out of date: run "
                "`python experiments/results_table.py --write`")


def test_every_relative_link_in_the_readme_and_docs_points_to_an_existing_file():
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "results").rglob("README.md"))]
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)  # code is not a link
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a web address or a heading of the same page
            if not (page.parent / target.split("#", 1)[0]).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken
