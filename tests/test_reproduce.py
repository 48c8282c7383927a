"""ssltk reproduce: paper tables as data, runs that resume and skip, the side-by-side table."""
import hashlib
import json

import pytest

from ssltk.cli import main
from ssltk.reproduce import load_protocols, measured

PROTOCOL = """
paper: a test paper
tables:
  tiny:
    title: digits in one epoch
    source: a test table
    base: {backbone: conv4, data: digits, trainer: {epochs: 1, batch_size: 64, progress: false},
           evaluate: {linear: true, random_baseline: false, epochs: 2},
           cost: {images: 1437, views_per_s: {cpu: 1000, gpu: 10000}}}
    columns:
      one: {label: one epoch}
    rows:
      supervised: {label: Supervised, objective: supervised}
      random: {label: Random, objective: random}
    cells:
      supervised: {one: [80.0, 1.0]}
      random: {one: 30.0}
"""


@pytest.fixture
def protocol(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(PROTOCOL)
    return path


def test_list_names_the_papers_tables_and_numbers(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for table in ("rr-table2", "rr-table10", "smi-table1", "sela-small", "sela-imbalanced", "rr-semi-supervised",
                  "sela-label-transfer"):
        assert table in out
    assert "58.05 ± 0.67" in out and "80.46 ± 0.39" in out  # Table 10 relational K=4, Table 2 supervised Conv-4
    assert main(["reproduce", "--list", "rr-table10", "--cells", "relational/*"]) == 0
    assert capsys.readouterr().out.count("relational/k") == 5


def test_reproduce_trains_once_then_skips_and_writes_the_table(tmp_path, protocol, capsys):
    out = tmp_path / "runs"
    args = ["reproduce", "tiny", "--protocol", str(protocol), "--out", str(out), "--device", "cpu"]
    assert main(args) == 0
    table = (out / "tiny" / "full" / "table.md").read_text()
    assert "| Supervised, one epoch | 80.00 ± 1.00 |" in table and "| Random, one epoch | 30.00 |" in table
    assert (out / "tiny" / "full" / "table.png").stat().st_size > 1000
    run = out / "tiny" / "full" / "supervised" / "one" / "seed0"
    before = (run / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert main(args) == 0  # everything finished: nothing trains again
    assert "training in" not in capsys.readouterr().out and (run / "metrics.jsonl").read_text() == before
    prov = [json.loads(line) for line in (out / "tiny" / "full" / "provenance.jsonl").read_text().splitlines()]
    assert {p["cell"] for p in prov} == {"supervised/one", "random/one"}
    # a changed budget has its own folder and says so in the title
    assert main(args + ["--epochs", "1", "--train_size", "300", "--cells", "random/*", "--record",
                        str(tmp_path / "rec.md")]) == 0
    reduced = (out / "tiny" / "reduced-e1-n300" / "table.md").read_text()
    assert "CHANGED budget (1 epochs, 300 training images)" in reduced
    assert "- command: `ssltk reproduce tiny" in (tmp_path / "rec.md").read_text()


def test_an_unfinished_run_resumes(tmp_path, protocol, capsys):
    out = tmp_path / "runs"
    args = ["reproduce", "tiny", "--protocol", str(protocol), "--out", str(out), "--device", "cpu",
            "--cells", "supervised/*"]
    assert main(args) == 0
    run = out / "tiny" / "full" / "supervised" / "one" / "seed0"
    (run / "results.json").unlink()  # as if killed during the final evaluation
    capsys.readouterr()
    assert main(args) == 0
    assert "resuming in" in capsys.readouterr().out and "linear" in json.loads((run / "results.json").read_text())


def test_bad_protocols_and_names_are_one_line(tmp_path, protocol, capsys):
    assert main(["reproduce", "rr-tabel10"]) == 2
    assert "did you mean rr-table10" in capsys.readouterr().err
    assert main(["reproduce", "tiny", "--protocol", str(protocol), "--cells", "nothing/*"]) == 2
    assert "no cell of tiny matches" in capsys.readouterr().err
    evil = tmp_path / "evil.yaml"
    evil.write_text(PROTOCOL.replace("objective: random", "objective: subprocess.Popen").replace("tiny:", "evil:"))
    assert main(["reproduce", "evil", "--protocol", str(evil), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "subprocess.Popen" in err and "--trust" in err and not (tmp_path / "x").exists()
    broken = tmp_path / "broken.yaml"
    broken.write_text("tables: {a: [1, 2}\n")
    assert main(["reproduce", "--list", "--protocol", str(broken)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_from_run_and_missing_paper_numbers_are_checked(tmp_path, capsys):
    def table(cells):
        path = tmp_path / "t.yaml"
        path.write_text(PROTOCOL.replace("""      supervised: {one: [80.0, 1.0]}
      random: {one: 30.0}""", cells))
        return ["reproduce", "--list", "--protocol", str(path)]

    assert main(table("      supervised: {one: null}\n      random: {one: 30.0}")) == 2
    assert "needs a note" in capsys.readouterr().err
    assert main(table("      supervised: {one: {paper: null, note: lost}}\n      random: {one: 30.0}")) == 0
    assert "paper    n/a" in capsys.readouterr().out
    assert main(table("      supervised: {one: {paper: 1, from_run: {cell: x/one, arg: labels}}}")) == 2
    assert "names cell 'x/one', which the table lacks" in capsys.readouterr().err
    assert main(table("      supervised: {one: {paper: 1, from_run: {cell: random/one}}}\n"
                      "      random: {one: 30.0}")) == 2
    assert "from_run must be {cell: ROW/COLUMN, arg: NAME}" in capsys.readouterr().err
    assert main(table("      supervised: {one: {paper: 1, from_run: {cell: random/one, arg: a}}}\n"
                      "      random: {one: {paper: 1, from_run: {cell: supervised/one, arg: a}}}")) == 2
    assert "trains on another run itself" in capsys.readouterr().err


def test_a_table_reads_finished_runs_from_several_folders(tmp_path, protocol, capsys):
    first, second, rec = tmp_path / "a", tmp_path / "b", tmp_path / "rec.md"
    args = ["reproduce", "tiny", "--protocol", str(protocol), "--device", "cpu"]
    assert main(args + ["--out", str(first), "--cells", "supervised/*"]) == 0
    assert main(args + ["--out", str(second), "--cells", "random/*"]) == 0
    with open(first / "tiny" / "full" / "provenance.jsonl", "a") as fh:  # a run of another seed, not tabled
        fh.write(json.dumps({"cell": "supervised/one", "seed": 7, "commit": "not-this-one"}) + "\n")
    assert main(args + ["--out", str(second), "--runs-from", str(first)]) == 2
    assert "--table-only" in capsys.readouterr().err
    capsys.readouterr()
    assert main(args + ["--out", str(second), "--runs-from", str(first), "--table-only", "--record", str(rec)]) == 0
    table = (second / "tiny" / "full" / "table.md").read_text()
    assert "not run yet" not in table and "(n=1)" in table and "± 0.00 (n=1)" not in table
    text = rec.read_text()
    assert f"- runs read from {second / 'tiny' / 'full'}: random/one seed 0" in text
    assert f"- runs read from {first / 'tiny' / 'full'}: supervised/one seed 0" in text
    assert "runs trained by" in text and "not-this-one" not in text and "unrecorded code" not in text
    digest = hashlib.sha256((first / "tiny" / "full" / "supervised" / "one" / "seed0" / "backbone.safetensors")
                            .read_bytes()).hexdigest()[:16]
    scored = measured(first / "tiny" / "full" / "supervised" / "one" / "seed0", load_protocols([str(protocol)])["tiny"]
                      .cells[0].metric)
    assert f"supervised/one seed 0 {scored:.2f} {digest}" in text


def test_a_table_that_scores_the_test_set_refuses_data_without_one_unless_a_validation_split_is_named(tmp_path,
                                                                                                        capsys):
    proto = tmp_path / "test-split.yaml"
    proto.write_text(PROTOCOL.replace("evaluate: {linear: true, random_baseline: false, epochs: 2}",
                                      "evaluate: {linear: true, random_baseline: false, epochs: 2, split: test}"))
    out = tmp_path / "runs"
    args = ["reproduce", "tiny", "--protocol", str(proto), "--out", str(out), "--device", "cpu", "--cells", "random/*"]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "scores the official test set" in err[0] and "--val-split N" in err[0], err
    assert not out.exists() or not any(out.rglob("config.yaml"))  # refused before anything trained
    assert main(args + ["--val-split", "300"]) == 0
    table = (out / "tiny" / "reduced-val300" / "table.md").read_text()
    assert "300 held-out training images scored instead of the test set" in table
    run = out / "tiny" / "reduced-val300" / "random" / "one" / "seed0"
    assert json.loads((run / "results.json").read_text())["linear"]["split"] == "val"
