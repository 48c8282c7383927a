"""Paper protocols as data, and ``ssltk reproduce`` to run them.

A protocol file (``ssltk/protocols/*.yaml``, shipped with ssltk, or any file given with ``--protocol``) describes
tables of a paper. Each table has ``rows`` (methods), ``columns`` (settings) and ``cells``, the (row, column) pairs the
paper reports, with the paper's mean and standard deviation. A cell's run configuration is the table's ``base``,
overlaid by its column, its row and the cell's own entries, in that order (mappings merge key by key)::

    objective, objective_args, backbone, backbone_args, data, data_args, augment, augment_args, trainer, evaluate

Components are registry names only, so a protocol file, like any file ssltk reads, cannot name code to run.

A cell may train on what another cell's run produced (``from_run: {cell: ROW/COLUMN, arg: NAME}``): that cell's run of
the same seed is trained first, and its folder is passed as the objective argument ``NAME`` (label transfer: a SeLa
run's self-labels train a fresh network). A cell whose number the paper's text does not give has ``paper: null`` and a
``note`` saying why; it is measured and tabled without a difference.

``ssltk reproduce TABLE`` trains and evaluates every missing run of the table's cells, resumes unfinished ones and
skips finished ones, then writes the table side by side with the paper (Markdown and a PNG chart). Runs live in
``OUT/TABLE/ROW/COLUMN/seedS``; a changed budget (``--epochs``, ``--train_size``) gets its own folder and says so in
the table's title, so changed and full runs never mix.

The package's modules: ``protocols`` (tables as data), ``cost`` (estimates), ``runs`` (training, resuming,
skipping), ``provenance`` (commits, machine, date), ``table`` (the side-by-side table), ``keep`` (kept weights and
their re-scoring), ``report`` (REPRODUCTION.md) and ``cli`` (``ssltk reproduce``).
"""
from __future__ import annotations

from .cli import cmd_reproduce
from .cost import estimate_minutes, eval_minutes, list_tables, training_rate, views_per_image
from .protocols import CELL_KEYS, CONFIG_KEYS, Cell, Table, load_protocols, merge, parse_tables, source_cell
from .provenance import machine_description, source_revision, trained_by, utc_stamp
from .runs import (Budget, StoppedAtTimeLimit, advance_run, after_evaluations, cell_runs, check_test_split, measured,
                   reproduce, run_config, scores_test)
from .table import TOLERANCE, chart, conditions, markdown, summarise

__all__ = ["Budget", "CELL_KEYS", "CONFIG_KEYS", "Cell", "StoppedAtTimeLimit", "TOLERANCE", "Table", "advance_run",
           "after_evaluations", "cell_runs", "chart", "check_test_split", "cmd_reproduce", "conditions",
           "estimate_minutes", "eval_minutes", "list_tables", "load_protocols", "machine_description", "markdown",
           "measured", "merge", "parse_tables", "reproduce", "run_config", "scores_test", "source_cell",
           "source_revision", "summarise", "trained_by", "training_rate", "utc_stamp", "views_per_image"]
