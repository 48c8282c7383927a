"""``ssltk reproduce TABLE --launcher submitit`` with submitit's local executor: each run is a job in its own
process; a job that reaches its time stops at a checkpoint and is requeued, resuming the run; the table is written
when every job is done (the GPU issue, item 3)."""
import pytest

from ssltk.cli import main

pytest.importorskip("submitit")

PROTOCOL = """
paper: a test paper
tables:
  jobs:
    title: digits, as cluster jobs
    source: a test table
    base: {backbone: conv4, data: digits, trainer: {epochs: 2, batch_size: 64, progress: false},
           evaluate: {linear: true, random_baseline: false, epochs: 2},
           cost: {images: 1437, views_per_s: {cpu: 1000, gpu: 10000}}}
    columns:
      two: {label: two epochs}
    rows:
      relational: {label: Relational, objective: relational, objective_args: {k: 8}}
      random: {label: Random, objective: random}
    cells:
      relational: {two: 40.0}
      random: {two: 30.0}
"""


def test_two_cells_run_as_jobs_and_the_one_that_reaches_its_time_is_requeued(tmp_path, capsys):
    proto = tmp_path / "jobs.yaml"
    proto.write_text(PROTOCOL)
    out = tmp_path / "runs"
    # 2 s a job: an epoch of relational K=8 over the 1,437 digits takes longer than half of that on any machine
    # these tests run on, so its fit stops after epoch 1 and the job is requeued once; random weights do not train
    code = main(["reproduce", "jobs", "--protocol", str(proto), "--out", str(out), "--device", "cpu",
                 "--launcher", "submitit", "--launcher-executor", "local", "--launcher-time", "2s"])
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 0, printed + captured.err
    assert printed.count("submitted ") == 2 and "requeued relational/two seed 0: stopped after epoch 1" in printed
    run = out / "jobs" / "full" / "relational" / "two" / "seed0"
    assert (run / "checkpoints" / "epoch-0002.safetensors").is_file() and (run / "results.json").is_file()
    table = (out / "jobs" / "full" / "table.md").read_text()
    assert "| Relational, two epochs |" in table and "| Random, two epochs |" in table
    assert any((out / "submitit-logs").iterdir())  # the jobs' logs
