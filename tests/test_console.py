import io

from rich.console import Console

from diffmem.config import resolve
from diffmem.console import ConsoleReporter, percent


def _reporter(terminal=False):
    out = io.StringIO()
    return ConsoleReporter(Console(file=out, width=80, force_terminal=terminal)), out


def _record(sequences, speed=100.0, wall=30.0):
    return {"sequences": sequences, "step": sequences // 4, "loss": 1.5, "bits": 2.25,
            "bit_errors": 0.5, "val_bits": 3.125, "val_bit_errors": 0.75, "lr": 1e-3,
            "sequences_per_second": speed, "wall_seconds": wall}


def test_train_prints_the_papers_parameter_count_for_the_papers_architecture():
    reporter, out = _reporter()
    reporter.start([resolve("associative-recall", "ntm-lstm")], ["run"], 64_454, 0, 1.0)
    reporter.stop()
    assert "ntm-lstm (64,454 parameters, the paper's 70,330)" in " ".join(out.getvalue().split())
    reporter, out = _reporter()
    small = resolve("associative-recall", "ntm-lstm").replace(model=dict(controller_size=8))
    reporter.start([small], ["run"], 9, 0, 1.0)
    reporter.stop()
    assert "the paper's" not in out.getvalue()


def test_a_log_gets_one_whole_plain_line_per_log_point_not_a_cut_bar():
    reporter, out = _reporter(terminal=False)
    reporter.start([resolve("copy").replace(train=dict(minutes=None))], ["run"], 62_536, 0,
                   1.0)
    reporter.advance(4_000)
    reporter.log("run", _record(4_000, wall=45.0))
    reporter.log("run", {**_record(8_000), "loss": None})  # a non-finite value is stored as null
    reporter.stop()
    lines = out.getvalue().splitlines()[-2:]
    assert "4,000 seq  0:00:45  loss 1.500  bits 2.250  val 3.125  100 seq/s" in lines[0]
    assert "loss nan" in lines[1]
    assert "…" not in out.getvalue() and "━" not in out.getvalue()


def test_the_time_left_is_that_of_the_budget_that_binds():
    reporter, _ = _reporter()
    config = resolve("copy").replace(train=dict(sequences=500_000, minutes=10.0))
    # 3 minutes of a 10-minute budget spent: 7 minutes left, not the 500,000 sequences' 83.
    reporter.start([config], ["run"], 1, 0, 1.0, seconds=180.0)
    assert abs(reporter.time_left(100.0) - 420.0) < 5.0
    # Sequences bind when they end first: 1,000 left at 100 per second.
    reporter.start([config.replace(train=dict(sequences=1_000))], ["run"], 1, 0, 1.0,
                   seconds=180.0)
    assert abs(reporter.time_left(100.0) - 10.0) < 1e-6
    # No minutes budget and no speed yet: unknown.
    reporter.start([config.replace(train=dict(minutes=None))], ["run"], 1, 0, 1.0)
    assert reporter.time_left(None) is None


def test_a_terminal_gets_a_live_bar_with_the_time_left():
    reporter, out = _reporter(terminal=True)
    reporter.start([resolve("copy").replace(train=dict(minutes=10.0))], ["run"], 1, 0, 1.0)
    reporter.advance(32)
    reporter.log("run", _record(32))
    reporter.stop()
    assert "left" in out.getvalue() and "training" in out.getvalue()


def test_a_share_above_zero_never_prints_as_zero():
    assert percent(0.0) == "0.00%"
    assert percent(2.5e-6) == "<0.01%"  # one wrong bit in 400,000
    assert percent(2.5e-6, 3) == "<0.001%"
    assert percent(0.0033) == "0.33%"
    assert percent(0.05) == "5.00%"
    assert percent(None) == "nan%"
