"""`diffmem report`: one self-contained page with every section, rendered by a real browser."""

import base64
import contextlib
import io
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from diffmem.cli import main
from diffmem.report import SECTIONS, write_report


class _Page(HTMLParser):
    """The section ids, image sources and text of an HTML page."""

    def __init__(self):
        super().__init__()
        self.sections, self.images, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])
        assert not (tag in ("img", "script", "link") and "http" in (attrs.get("src") or "")), \
            "the page must not load anything from the network"

    def handle_data(self, data):
        self.text.append(data)


def _parse(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory):
    """`diffmem report` of the tiny run, run once for the command, content and browser tests:
    the page's path and what the command printed. Every report of the tiny run here draws its
    memory figure at length 5, so that they share compiled programs."""
    run_dir, _ = tiny_run
    out = tmp_path_factory.mktemp("report") / "r.html"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["report", str(run_dir), "--out", str(out), "--size", "5"])
    assert code == 0, printed.getvalue()
    return out, printed.getvalue()


def test_report_has_every_section_with_embedded_figures(tiny_run, report):
    run_dir, _ = tiny_run
    page = _parse(report[0])
    assert page.sections == list(SECTIONS)
    assert len(page.images) == 3  # learning curves, memory use, generalisation
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    text = " ".join(page.text)
    summary = json.loads((run_dir / "summary.json").read_text())
    for expected in ("model.memory_rows", "train.batch_size", "length 120", summary["status"],
                     "lengths 1 to 20", "One sequence at length 5",
                     f"the best validation point's (best.safetensors), at "
                     f"{summary['best']['sequences']} sequences; generalisation check"):
        assert expected in text
    assert f"{summary['validation']['bits']:.4f}" in text


def test_report_of_a_run_without_a_checkpoint_says_what_is_missing(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    for name in ("config.json", "metrics.jsonl"):
        shutil.copy(run_dir / name, tmp_path / name)
    page = _parse(write_report(tmp_path))
    assert page.sections == list(SECTIONS)
    assert len(page.images) == 1  # the learning curves need only metrics.jsonl
    text = " ".join(page.text)
    assert "has no summary.json" in text and "diffmem train --resume" in text
    assert "no checkpoint.safetensors yet" in text


def test_report_command_writes_into_the_run_directory(tiny_run, report, tmp_path, capsys):
    run_dir, _ = tiny_run
    path, printed = report
    assert path.is_file() and "r.html" in printed
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "not a diffmem run directory" in capsys.readouterr().out
    assert main(["report", str(run_dir), "--out", str(tmp_path / "no" / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().out


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Chromium (.ci/run), so there a missing browser is a failure, not a skip.
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")


def test_report_renders_in_headless_chromium(report, tmp_path):
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("CI is set but Chromium is not installed: .ci/run installs Debian's "
                        "chromium package when run as root where apt-get is available; "
                        "install it with `apt-get install chromium`")
        pytest.skip("headless Chromium is not installed (on Debian: apt-get install chromium)")
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=10000", "--dump-dom", report[0].as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    # The page's own script counts the images the browser decoded (complete, naturalWidth > 0).
    assert 'data-figures="3"' in dom
    assert 'data-figures-rendered="3"' in dom


def test_report_of_a_run_stopped_by_a_non_finite_loss_shows_dashes(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    for name in ("config.json", "checkpoint.safetensors"):
        shutil.copy(run_dir / name, tmp_path / name)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    last = {**json.loads(lines[-1]), "loss": None, "bits": None, "val_bits": None}
    (tmp_path / "metrics.jsonl").write_text(lines[0] + "\n" + json.dumps(last) + "\n")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["validation"]["bits"] = None
    summary["generalisation"][-1]["bits"] = None
    del summary["paper_parameters"]  # as in the summaries of diffmem 0.1
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    page = _parse(write_report(tmp_path, size={"length": 5}))
    assert page.sections == list(SECTIONS) and len(page.images) == 3
    assert "None" not in " ".join(page.text) and "nan" not in " ".join(page.text)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(ValueError, match="summary.json is not valid JSON"):
        write_report(tmp_path)


def test_report_of_a_dnc_run_shows_its_memory(tiny_dnc_run, tmp_path):
    run_dir, _ = tiny_dnc_run
    page = _parse(write_report(run_dir, tmp_path / "r.html", size={"length": 5}))
    assert page.sections == list(SECTIONS)
    assert len(page.images) == 3  # learning curves, memory use, generalisation
    for src in page.images:
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    text = " ".join(page.text)
    assert "dnc" in text and "One sequence at length 5" in text
