"""The progress events of training, for a display: one protocol for a single run and for a
population, whose members each count as a run named by its directory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffmem.config import Config


class Reporter:
    """Receives progress events from the training loop; this base class is silent.

    The CLI passes ``diffmem.console.ConsoleReporter`` for a run and
    ``PopulationConsoleReporter`` for a population (a live progress bar on a terminal, a plain
    line per log point otherwise); a notebook may pass its own subclass.
    """

    def start(self, configs: list[Config], names: list[str], parameters: int, sequences: int,
              compile_seconds: float, seconds: float = 0.0) -> None:
        """Training of the runs ``names`` (their directories' names) with ``configs`` starts
        at ``sequences`` sequences over all of them and ``seconds`` of wall time (both 0
        unless resumed; the time counts toward ``config.train.minutes``)."""

    def advance(self, sequences: int) -> None:
        """One update trained the running runs on ``sequences`` more sequences in all."""

    def log(self, name: str, record: dict[str, Any]) -> None:
        """Run ``name``'s log point, as written to its metrics.jsonl."""

    def message(self, text: str) -> None:
        """A line for the user (may hold rich markup such as ``[red]``)."""

    def rewind(self, sequences: int) -> None:
        """A run went back by ``sequences`` sequences (a rollback after a non-finite step)."""

    def finished(self, name: str, summary: dict[str, Any]) -> None:
        """Run ``name`` stopped; its summary.json."""

    def stop(self) -> None:
        """Training stopped; may be called more than once."""

    def summary(self, summaries: list[dict[str, Any]]) -> None:
        """Every run's summary, in the order of ``start``'s names."""
