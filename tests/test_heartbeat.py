"""Progress off a terminal: every long phase speaks at least every few seconds (issue: a first hour that goes right)."""
import io
import re
import time

import pytest

from rich.console import Console

import ssltk
from ssltk.engine.heartbeat import Heartbeat, heartbeat, say
from ssltk.engine.progress import TrainProgress


def _console():
    buf = io.StringIO()
    return buf, Console(file=buf, force_terminal=False, width=200)


def test_a_phase_prints_a_line_every_interval_with_where_it_is(monkeypatch):
    monkeypatch.setenv("SSLTK_HEARTBEAT_SECONDS", "0.05")
    buf, console = _console()
    with Heartbeat("loading data", console=console):
        say("batch 1/3")
        time.sleep(0.3)
        with heartbeat("extracting"):  # a phase inside another speaks through the outer one
            say("features of 10/20 images")
            time.sleep(0.2)
    lines = buf.getvalue().splitlines()
    assert len(lines) >= 4 and lines[0].startswith("loading data")
    assert any("loading data: batch 1/3" in line for line in lines)
    assert any("loading data: extracting: features of 10/20 images" in line for line in lines)
    time.sleep(0.15)
    assert len(buf.getvalue().splitlines()) == len(lines)  # the phase has ended: silence


@pytest.mark.parametrize("seconds", ["5", "0"], ids=["a short phase says nothing, so bad input stays one line",
                                                     "zero turns the lines off"])
def test_a_phase_below_the_interval_or_with_lines_off_is_silent(monkeypatch, seconds):
    monkeypatch.setenv("SSLTK_HEARTBEAT_SECONDS", seconds)
    buf, console = _console()
    with Heartbeat("loading data", console=console):
        time.sleep(0.05)
    assert buf.getvalue() == ""


def test_training_off_a_terminal_reports_steps_when_due(monkeypatch):
    monkeypatch.setenv("SSLTK_HEARTBEAT_SECONDS", "0.05")
    prog = TrainProgress(total_steps=10, completed=0, epochs=2)
    buf, prog.console = _console()
    assert not prog.live and not prog.due(0.0)
    time.sleep(0.06)
    assert prog.due(0.0)
    prog.update(0, 1.25, 300.0, advance=3)
    assert "epoch 1/2  step 3/10  loss 1.2500  300 views/s" in buf.getvalue()
    assert not prog.due(0.0)  # just printed
    assert prog.position(0, 5) == 3


def test_a_piped_fit_speaks_in_every_phase(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SSLTK_HEARTBEAT_SECONDS", "0.01")
    ssltk.fit("relational", "conv4", "digits", objective_args={"k": 2}, data_args={"train_size": 256},
              trainer={"epochs": 1, "batch_size": 64, "run_dir": str(tmp_path / "run")},
              evaluate={"epochs": 2, "random_baseline": True})
    err = capsys.readouterr().err
    assert re.search(r"^loading digits.*\(\d+s\)$", err, flags=re.M)
    assert re.search(r"epoch 1/1  step \d+/\d+  loss", err)
    assert "linear evaluation (linear)" in err and "linear evaluation (linear_random)" in err
    assert "classifier epoch" in err or "features of" in err
