"""The API reference (mkdocs.yml, docs/api/) covers the public names of the documented modules.

.ci/run builds the site with `mkdocs build --strict`; these checks are what that build does not
catch: mkdocstrings reads the code statically (griffe), and a name in a module's ``__all__``
that it cannot see, such as one of ``diffmem``'s lazy exports without its ``TYPE_CHECKING``
import, is left out of the page without a warning.
"""

import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["diffmem", "diffmem.tasks", "diffmem.addressing", "diffmem.dnc_addressing",
           "diffmem.sparse_memory", "diffmem.sdnc", "diffmem.training",
           "diffmem.training.population"]


def public_names(module):
    """``__all__``, or else the names the module defines (not imports) without a leading ``_``."""
    if hasattr(module, "__all__"):
        return set(module.__all__)
    return {name for name, value in vars(module).items()
            if not name.startswith("_") and not inspect.ismodule(value)
            and getattr(value, "__module__", module.__name__) == module.__name__}


def api_pages():
    """{module name: page} for every ``::: module`` directive under docs/api/."""
    pages = {}
    for page in (ROOT / "docs" / "api").glob("*.md"):
        for name in re.findall(r"^::: ([\w.]+)$", page.read_text(), re.M):
            pages[name] = page.name
    return pages


def test_every_documented_module_has_a_page_in_the_nav():
    pages = api_pages()
    nav = (ROOT / "mkdocs.yml").read_text().split("\nnav:", 1)[1]
    for name in MODULES:
        assert name in pages, f"no page in docs/api/ has '::: {name}'"
        assert f": {pages[name]}\n" in nav, f"mkdocs.yml's nav lacks {pages[name]}"


@pytest.mark.parametrize("name", MODULES)
def test_the_reference_sees_every_public_name(name):
    griffe = pytest.importorskip("griffe")
    package = griffe.load("diffmem", search_paths=[str(ROOT / "src")], resolve_aliases=True)
    static = package if name == "diffmem" else package[name.removeprefix("diffmem.")]
    seen = {member for member, obj in static.members.items()
            if obj.is_public and not obj.is_module}
    missing = public_names(importlib.import_module(name)) - seen
    assert not missing, f"{name}: the API reference cannot see {sorted(missing)}"


def test_ci_builds_the_reference_with_warnings_as_errors_and_the_readme_links_it():
    assert "mkdocs build --strict" in (ROOT / ".ci" / "run").read_text().splitlines()
    assert "docs/api/index.md" in (ROOT / "README.md").read_text()
