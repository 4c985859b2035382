"""Training and evaluation as plain functions that a notebook can import.

    optim.py       the optimiser, its rate schedule and plateau rule
    step.py        the update: batch, forward, the task's loss, backward, optimiser step
    evaluation.py  fixed validation and evaluation sets, the generalisation check
    state.py       the loop's state, checkpoints, fresh and resumed runs
    recovery.py    recovery rules as plug-ins: rollback, restart, return to the best model
    loop.py        the one loop, for a single run and for a population
    population.py  a population's members and their vmapped update
    summary.py     a finished run's summary.json
    reporter.py    the progress events a display receives
    interrupt.py   Ctrl-C and SIGTERM as a clean stop
"""

from diffmem.training.evaluation import evaluate
from diffmem.training.loop import Run, train_and_evaluate
from diffmem.training.population import member_configs, train_population
from diffmem.training.reporter import Reporter

__all__ = ["Reporter", "Run", "evaluate", "member_configs", "train_and_evaluate",
           "train_population"]
