"""``--trainer.max_time`` and ``ssltk reproduce --max-time``: a fit stops at an epoch boundary before its limit,
with a checkpoint, exit status 3 and the resume command, and the resumed run equals an uninterrupted one bit for bit.

The clock is the time limit's own (``ssltk.engine.time_limit._clock``), replaced here by one that advances 10 s per
reading, so the tests are exact and fast: with a limit of 25 s a fit stops after its second epoch (20 s passed, and
the next epoch would take 10 s more plus a tenth).
"""
import itertools

import pytest
import torch

import ssltk
from ssltk.cli import main
from ssltk.engine import time_limit
from ssltk.errors import SsltkError

KW = dict(objective_args={"k": 2}, data_args={"train_size": 96}, evaluate={"linear": False})
TRAINER = {"epochs": 4, "batch_size": 32, "progress": False}


@pytest.fixture
def ten_seconds_per_epoch(monkeypatch):
    def install():
        ticks = itertools.count(0, 10.0)
        monkeypatch.setattr(time_limit, "_clock", lambda: next(ticks))
    install()
    return install


def test_a_fit_stops_before_its_limit_and_resumes_bit_for_bit(tmp_path, ten_seconds_per_epoch):
    whole = ssltk.fit("relational", trainer={**TRAINER, "run_dir": str(tmp_path / "whole")}, **KW)
    ten_seconds_per_epoch()
    part = ssltk.fit("relational", trainer={**TRAINER, "run_dir": str(tmp_path / "part"), "max_time": "25s"}, **KW)
    assert part.stopped_at_epoch == 2
    assert (tmp_path / "part" / "checkpoints" / "epoch-0002.safetensors").is_file()
    assert not (tmp_path / "part" / "backbone.safetensors").exists()  # not finished: no final weights yet
    ten_seconds_per_epoch()
    resumed = ssltk.fit(resume=tmp_path / "part", trainer={"epochs": 4})
    assert resumed.stopped_at_epoch is None
    for (name, a), b in zip(whole.backbone.state_dict().items(), resumed.backbone.state_dict().values()):
        assert torch.equal(a, b), name


def test_the_cli_exits_3_and_prints_the_resume_command(tmp_path, capsys, ten_seconds_per_epoch):
    run = tmp_path / "run"
    code = main(["fit", "--objective", "relational", "--objective.k", "2", "--data.train_size", "96",
                 "--trainer.epochs", "4", "--trainer.batch_size", "32", "--trainer.progress", "false",
                 "--trainer.max_time", "25s", "--trainer.run_dir", str(run), "--evaluate.linear", "false"])
    out = capsys.readouterr().out
    assert code == 3 and "after epoch 2 of 4" in out and f"ssltk fit --resume {run}" in out, out


def test_a_bad_duration_is_one_line(tmp_path):
    with pytest.raises(SsltkError, match="max_time must be a positive duration"):
        ssltk.fit("relational", trainer={**TRAINER, "run_dir": str(tmp_path), "max_time": "soon"}, **KW)


def test_reproduce_advances_a_table_within_its_time_and_continues(tmp_path, capsys, monkeypatch,
                                                                   ten_seconds_per_epoch):
    from test_reproduce import PROTOCOL

    proto = tmp_path / "tiny.yaml"
    proto.write_text(PROTOCOL.replace("epochs: 1,", "epochs: 4,"))
    monkeypatch.setattr("time.monotonic", lambda: 0.0)  # the table's own deadline: only the trainer's clock moves
    args = ["reproduce", "tiny", "--protocol", str(proto), "--out", str(tmp_path / "runs"), "--device", "cpu",
            "--cells", "supervised/*", "--max-time", "25s"]
    assert main(args) == 3
    out = capsys.readouterr().out
    run = tmp_path / "runs" / "tiny" / "full" / "supervised" / "one" / "seed0"
    assert "stopped after epoch 2" in out and "run the same command again" in out
    assert (run / "checkpoints" / "epoch-0002.safetensors").is_file()
    ten_seconds_per_epoch()
    assert main(args[:-2]) == 0  # the same table without a limit finishes the run
    assert "resuming in" in capsys.readouterr().out and (run / "results.json").is_file()
