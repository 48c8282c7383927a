"""Run directories: one owner at a time, no silent overwrite, resumes that cannot falsify the run, clean stops."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

import ssltk
from ssltk.cli import main
from ssltk.engine.rundir import RunLock, read_metrics, resume_changes, truncate_metrics
from ssltk.engine.trainer import Trainer
from ssltk.errors import SsltkError
from helpers import FAST_FIT, wait_for_checkpoint

TINY = dict(objective_args={"k": 2}, data_args={"train_size": 64}, evaluate={"linear": False})


def tiny_fit(run_dir, **trainer):
    return ssltk.fit("relational", trainer={"epochs": 1, "batch_size": 32, "run_dir": str(run_dir),
                                            "progress": False, **trainer}, **TINY)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One small finished run (random weights, linear evaluation on) that tests copy rather than retrain."""
    run = tmp_path_factory.mktemp("finished") / "run"
    ssltk.fit("random", data_args={"train_size": 64},
              trainer={"run_dir": str(run), "progress": False, "batch_size": 32}, evaluate={"epochs": 1})
    return run


def test_a_locked_run_directory_is_refused(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(SsltkError, match=r"in use by ssltk process \d+"):
            tiny_fit(tmp_path / "run")
    assert not (tmp_path / "run" / "config.yaml").exists()
    tiny_fit(tmp_path / "run")  # released: the run proceeds


def test_a_killed_owner_does_not_keep_the_lock(tmp_path):
    code = ("import sys, time; from ssltk.engine.rundir import RunLock; lock = RunLock(sys.argv[1]).__enter__(); "
            "print('locked', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(SsltkError, match=f"in use by ssltk process {proc.pid}"):
            RunLock(tmp_path).__enter__()
    finally:
        proc.kill()
        proc.wait()
    with RunLock(tmp_path):
        pass


def test_an_existing_run_is_never_overwritten_without_the_flag(tmp_path, finished_run):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(SsltkError, match="already holds a run.*--overwrite"):
        tiny_fit(run)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    # on purpose: the old run's files go, nothing of it is left beside the new one
    ssltk.fit("relational", overwrite=True, trainer={"epochs": 1, "batch_size": 32, "run_dir": str(run),
                                                     "progress": False}, **TINY)
    assert not (run / "results.json").exists()
    assert "Relational" in yaml.safe_load((run / "config.yaml").read_text())["objective"]["class_path"]
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["epoch-0001.safetensors"]


def test_overwrite_flag_on_the_cli(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["fit", "--objective", "random", "--data", "digits", "--data.train_size", "64", "--evaluate.linear",
            "false", "--trainer.progress", "false", "--trainer.run_dir", str(run)]
    assert main(args) == 0
    assert main(args) == 2 and "--overwrite true" in capsys.readouterr().err
    assert main(args + ["--overwrite", "true"]) == 0
    assert main(["fit", "--resume", str(run), "--overwrite", "true"]) == 2


def test_resume_refuses_changes_and_writes_nothing(tmp_path):
    run = tmp_path / "run"
    tiny_fit(run)
    before = (run / "config.yaml").read_text()
    cfg = yaml.safe_load(before)
    for section, key, value in [("trainer", "lr", 0.01), ("trainer", "seed", 4), ("trainer", "batch_size", 16)]:
        with pytest.raises(SsltkError, match=f"{section}.{key}"):
            ssltk.fit(resume=run, trainer={key: value})
    changed = dict(cfg, objective={"class_path": "ssltk_baselines.simclr.SimCLRObjective", "init_args": {}})
    with pytest.raises(SsltkError, match="objective.class_path"):
        Trainer(changed, resume=True).fit()
    assert (run / "config.yaml").read_text() == before
    # what does not change the computation may change, and the record then says so
    ssltk.fit(resume=run, trainer={"epochs": 2})
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["epochs"] == 2


def test_resume_changes_rules():
    base = {"objective": {"class_path": "a.B", "init_args": {"k": 2}}, "backbone": {"class_path": "c.D"},
            "data": {"class_path": "e.F", "init_args": {"root": "x"}}, "trainer": {"epochs": 3, "lr": 1e-3,
                                                                                  "schedule": "constant"}}
    same = json.loads(json.dumps(base))
    assert resume_changes(base, same) == []
    new = json.loads(json.dumps(base))
    new["objective"]["init_args"]["extra_default"] = 1  # a newer version's new option is not a change
    new["trainer"]["epochs"] = 5
    new["trainer"]["progress"] = False
    assert resume_changes(base, new) == []
    new["data"]["init_args"]["root"] = "y"
    new["trainer"]["schedule"] = "cosine"
    assert resume_changes(base, new) == ["data.init_args.root ('x' -> 'y')",
                                         "trainer.schedule ('constant' -> 'cosine')",
                                         "trainer.epochs (3 -> 5) under the 'cosine' schedule"]


def test_metrics_are_cut_back_to_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    recs = [{"event": "step", "epoch": 1, "step": 4}, {"event": "epoch", "epoch": 1, "step": 8},
            {"event": "step", "epoch": 2, "step": 12}, {"event": "probe", "epoch": 2, "step": 16}]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"event": "st')  # torn by a kill
    assert read_metrics(tmp_path) == recs and read_metrics(tmp_path, "probe") == recs[3:]
    truncate_metrics(path, epoch=1, step=8)
    assert [json.loads(ln) for ln in path.read_text().splitlines()] == recs[:2]
    assert read_metrics(tmp_path / "none") == []
    with pytest.raises(SsltkError, match="has no metrics.jsonl"):
        read_metrics(tmp_path / "none", missing_ok=False)


@pytest.mark.parametrize("content,expect", [("", "is empty"), ("objective: [unclosed", "is not valid YAML"),
                                            ("- a list", "must hold a mapping"),
                                            ("objective: relational\nbackbone: conv4\n", "names no data")])
def test_broken_run_config_is_one_line(tmp_path, capsys, content, expect):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(content)
    for argv in (["fit", "--resume", str(run)], ["eval", "linear", "--run", str(run)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expect in err[0], err


@pytest.mark.parametrize("sig,code,word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_stops_cleanly_and_names_the_run(tmp_path, sig, code, word):
    run = tmp_path / "run"
    args = ["fit", "--objective", "relational", "--objective.k", "4", *FAST_FIT, "--trainer.epochs", "50",
            "--trainer.run_dir", str(run)]
    # A suite launched in the background by a script inherits SIGINT ignored (POSIX), and Python, like ssltk, keeps
    # an inherited SIG_IGN; the child gets the default disposition so the test checks ssltk, not how it was started.
    proc = subprocess.Popen([sys.executable, "-m", "ssltk", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for_checkpoint(proc, run)
    time.sleep(0.3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "RUN_DIR" not in err
    assert f"ssltk fit --resume {run}" in err and word in err
    assert not [p for p in run.rglob("*.tmp")]
    if sig == signal.SIGINT:
        return
    # a temporary file that a SIGKILL left behind is removed by the next owner
    (run / "checkpoints" / ".epoch-0009.safetensors.x.tmp").write_bytes(b"partial")
    code = main(["fit", "--resume", str(run), "--trainer.epochs", "2", "--trainer.progress", "false"])
    assert code == 0 and not [p for p in run.rglob("*.tmp")]


@pytest.fixture
def readonly_mount(tmp_path):
    """A tmpfs that the test fills and then remounts read-only (root ignores file modes, so only a read-only
    file system makes a directory unwritable here)."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if os.geteuid() != 0:
        yield mnt, lambda: os.chmod(mnt, 0o555)
        os.chmod(mnt, 0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs to make a read-only directory (root ignores file modes)")
    try:
        yield mnt, lambda: subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_read_only_run_directory_is_refused_before_any_work(readonly_mount, finished_run, capsys):
    import shutil

    mnt, make_readonly = readonly_mount
    run = mnt / "run"
    shutil.copytree(finished_run, run)
    (run / ".lock").unlink(missing_ok=True)
    make_readonly()
    results = (run / "results.json").read_text()
    for argv in (["fit", "--resume", str(run)], ["eval", "linear", "--run", str(run), "--epochs", "1"],
                 ["fit", "--objective", "relational", "--trainer.run_dir", str(mnt / "new")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "cannot" in err[0] and str(mnt) in err[0], err
    assert (run / "results.json").read_text() == results


def test_every_writer_into_a_run_takes_its_lock(tmp_path, finished_run):
    # a run that is training holds its lock: interpret, sela-labels and export --out RUN/... must be refused
    import shutil

    from ssltk.export import export
    from ssltk_sela.labels import export_labels
    from ssltk_structured_mi.interpret import interpret

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    writers = {"export": lambda: export(run, "hf", run / "exp"),
               "export elsewhere": lambda: export(run, "hf", tmp_path / "exp"),
               "sela-labels": lambda: export_labels(run, tmp_path / "labels.safetensors"),
               "interpret": lambda: interpret(run, out=tmp_path / "masks")}
    with RunLock(run):
        for name, write in writers.items():
            with pytest.raises(SsltkError, match="in use by ssltk process") as info:
                write()
            assert "\n" not in str(info.value), name
    assert not (run / "exp").exists() and not (tmp_path / "masks").exists()
    assert export(run, "hf", run / "exp")  # released: the export proceeds into the run's own folder


def test_a_runs_files_share_one_mode(finished_run):
    import stat

    modes = {p.relative_to(finished_run).as_posix(): stat.S_IMODE(p.stat().st_mode)
             for p in finished_run.rglob("*") if p.is_file()}
    assert {"results.json", "config.yaml", "backbone.safetensors"} <= set(modes)
    assert len(set(modes.values())) == 1, modes
