"""The SeLa objective: schedule, initial labels, label steps, checkpointed labels, export and label transfer."""
import json
import subprocess
import sys

import pytest
import torch

from ssltk.testing import build_pair, contract_context, make_batch
from ssltk_sela import balanced_random_labels, label_epochs


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ssltk", *args], capture_output=True, text=True)


def test_schedule_is_quadratic_and_dense_early():
    # t_i = (i / (M - 1))^2: for 400 epochs and M = 5, 1/16, 4/16, 9/16 of training (t = 1 is past the end)
    assert label_epochs(400, 5) == [25, 100, 225]
    e = label_epochs(200, 20)
    gaps = [b - a for a, b in zip(e, e[1:])]
    assert gaps == sorted(gaps) and e[-1] < 200
    assert label_epochs(10, 1) == []


def test_initial_labels_are_balanced_and_differ_per_head():
    labels = balanced_random_labels(1000, 10, 3, seed=0)
    assert labels.shape == (3, 1000)
    for row in labels:
        assert torch.bincount(row).tolist() == [100] * 10
    assert not torch.equal(labels[0], labels[1])
    assert torch.equal(labels, balanced_random_labels(1000, 10, 3, seed=0))


def test_label_step_is_an_equipartition_per_head():
    bb, obj = build_pair("sela", objective_args={"clusters": 16, "heads": 2})
    ctx = contract_context(bb)
    feats = ctx.extract_features()
    obj.optimise_labels(feats)
    assert obj.labels.shape == (2, 256)
    for t, head in enumerate(obj.heads):
        # the transport plan Q of eq. 8 is an equipartition: every column holds 1/K of the mass (to the tolerance);
        # its argmax labels are only as balanced as Q is peaked, which an untrained head's is not
        a = 25.0 * torch.log_softmax(head(feats), 1)
        u = -torch.log(torch.tensor(256.0)) - torch.logsumexp(a + obj.scalings[t], 1)
        q = (a + u[:, None] + obj.scalings[t]).exp()
        assert (q.sum(0) * 16 - 1).abs().sum() < 1e-2
        assert torch.equal(obj.labels[t], (a + obj.scalings[t]).argmax(1))
    assert int(obj.steps_done) == 1 and obj.last_stats["sinkhorn_iters"] >= 1


def test_kmeans_label_step_variant():
    bb, obj = build_pair("sela", objective_args={"clusters": 8, "heads": 1, "label_step": "kmeans"})
    obj.optimise_labels(contract_context(bb).extract_features())
    assert obj.labels.shape == (1, 256) and int(obj.labels.max()) < 8


def test_loss_is_the_mean_of_the_heads_cross_entropies():
    bb, obj = build_pair("sela", objective_args={"clusters": 16, "heads": 3})
    batch = make_batch(obj, batch_size=6)
    with torch.no_grad():
        z = bb(batch.views)
        expected = sum(torch.nn.functional.cross_entropy(h(z), obj.labels[t, batch.index])
                       for t, h in enumerate(obj.heads)) / 3
    torch.testing.assert_close(obj(batch, bb).loss.detach(), expected)


def test_fit_resume_export_and_transfer(tmp_path):
    common = ["--data", "digits", "--data.train_size", "320", "--trainer.batch_size", "32", "--trainer.progress",
              "false", "--evaluate.linear", "false"]
    run = tmp_path / "sela"
    proc = _cli("fit", "--objective", "sela", "--objective.clusters", "20", "--objective.heads", "2",
                "--objective.label_steps", "4", *common, "--trainer.epochs", "2", "--trainer.run_dir", str(run))
    assert proc.returncode == 0, proc.stderr
    proc = _cli("fit", "--resume", str(run), "--trainer.epochs", "3")
    assert proc.returncode == 0, proc.stderr
    proc = _cli("sela-labels", "--run", str(run))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert (info["heads"], info["images"], info["clusters"]) == (2, 320, 20)
    epochs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"epoch"' in x]
    assert any(r.get("label_changes", 0) > 0 for r in epochs if r["event"] == "epoch")
    transfer = tmp_path / "transfer"
    proc = _cli("fit", "--objective", "sela-transfer", "--objective.labels", info["labels"], *common,
                "--trainer.epochs", "1", "--trainer.run_dir", str(transfer))
    assert proc.returncode == 0, proc.stderr
    bad = _cli("fit", "--objective", "sela-transfer", "--objective.labels", info["labels"], "--data", "digits",
               "--data.train_size", "100", "--trainer.progress", "false", "--trainer.epochs", "1",
               "--trainer.run_dir", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "320 images" in bad.stderr


def test_rejects_bad_configuration():
    with pytest.raises(ValueError, match="label_step"):
        build_pair("sela", objective_args={"label_step": "spectral"})


def test_the_cifar_codes_label_schedule_and_head_cycling():
    """scripts/cifar.sh: 400 label optimisations spaced linearly over 400 epochs, one head re-labelled in turn."""
    import torch

    from ssltk.testing import build_pair, contract_context
    from ssltk_sela.objective import label_epochs

    linear, quadratic = label_epochs(400, 400, "linear"), label_epochs(400, 400)
    assert len(linear) >= 397 and max(b - a for a, b in zip(linear, linear[1:])) <= 2  # about one per epoch
    assert len(quadratic) < 300 and quadratic[:20] == list(range(1, 21))  # the paper's: dense early, sparse late
    bb, obj = build_pair("sela", objective_args={"clusters": 8, "heads": 3, "label_heads": "cycle"})
    ctx = contract_context(bb)
    obj.on_fit_start(ctx)
    obj._schedule = {4}
    before = obj.labels.clone()
    obj.on_epoch_start(ctx, 4)
    changed = [(obj.labels[t] != before[t]).any().item() for t in range(3)]
    assert changed == [False, True, False]  # epoch 4 re-labels head 4 mod 3 = 1 only


def test_the_label_step_from_reused_buffers_equals_sinkhorn_on_each_heads_logits():
    from ssltk_sela.objective import SelaObjective
    from ssltk_sela.sinkhorn import sinkhorn_labels

    torch.manual_seed(0)
    obj = SelaObjective(16, clusters=8, heads=3, chunk=37)
    obj.labels = torch.zeros(3, 300, dtype=torch.long)
    feats = torch.randn(300, 16)
    obj.optimise_labels(feats)
    for t, head in enumerate(obj.heads):
        ref = sinkhorn_labels(head(feats).detach(), obj.lam, obj.max_iters, obj.tol, 37)
        assert torch.equal(obj.labels[t], ref.labels)
    half = SelaObjective(16, clusters=8, heads=3, chunk=37, label_features="fp16")
    half.heads.load_state_dict(obj.heads.state_dict())
    half.labels = torch.zeros(3, 300, dtype=torch.long)
    half.optimise_labels(feats)
    assert (half.labels == obj.labels).float().mean() > 0.95  # fp16 features move only near-ties


def test_the_imagenet_label_step_budget_fits_one_80gb_gpu():
    from ssltk_sela.budget import label_step_budget

    alex = label_step_budget(1_281_167, 3000, 10, 4096, "fp16")
    assert abs(alex["log_probs_gib"] - 1_281_167 * 3000 * 4 / 2**30) < 1e-9
    assert alex["total_gib"] == pytest.approx(sum(v for k, v in alex.items() if k != "total_gib"))
    assert 35 < alex["total_gib"] < 80e9 / 2**30
    assert label_step_budget(1_281_167, 3000, 10, 4096, "fp32")["total_gib"] > alex["total_gib"] + 9


CHAIN = """
tables:
  chain:
    title: labels of one run train another
    source: a test
    base: {backbone: conv4, data: digits, data_args: {train_size: 320},
           trainer: {epochs: 1, batch_size: 32, progress: false}, evaluate: {linear: false},
           after: [{name: knn, args: {k: 5}}], metric: knn.accuracy}
    columns:
      source: {label: SeLa, objective: sela, objective_args: {clusters: 20, heads: 2, label_steps: 2}}
      retrained: {label: retrained, objective: sela-transfer}
    rows:
      a: {label: A}
    cells:
      a:
        retrained: {paper: null, note: lost in the text, from_run: {cell: a/source, arg: labels}}
        source: 40.0
"""


def test_reproduce_trains_the_source_run_first_and_hands_its_labels_over(tmp_path, capsys):
    """Table 5 of paper 004 as a protocol: a cell trains on the self-labels of another cell's run (section 4.3)."""
    from ssltk.cli import main
    from ssltk.engine.checkpoint import read_safetensors
    from ssltk.engine.trainer import checkpoint_files
    from ssltk_sela.labels import load_label_file

    proto = tmp_path / "chain.yaml"
    proto.write_text(CHAIN)
    out = tmp_path / "runs"
    args = ["reproduce", "chain", "--protocol", str(proto), "--out", str(out), "--device", "cpu"]
    assert main(args + ["--cells", "a/retrained"]) == 0  # only the transfer asked for: its source trains first
    text = capsys.readouterr().out
    assert text.index("a/source seed 0: training") < text.index("a/retrained seed 0: training")
    assert "| A, retrained | n/a [1] |" in text and "[1] A, retrained: lost in the text" in text
    assert "A, SeLa" not in text  # the source was trained, not tabled
    runs = out / "chain" / "full" / "a"
    transfer, _ = read_safetensors(checkpoint_files(runs / "retrained" / "seed0")[-1])
    source, _ = read_safetensors(checkpoint_files(runs / "source" / "seed0")[-1])
    assert torch.equal(transfer["objective.targets"], source["objective.labels"])
    assert torch.equal(load_label_file(runs / "source" / "seed0"), source["objective.labels"])
    capsys.readouterr()
    assert main(args) == 0 and "training" not in capsys.readouterr().out  # both finished: nothing runs again


def test_the_label_step_sees_augmented_views(tmp_path):
    # paper 004, section 3.4: P is an expectation over augmentations; the authors' cifar.py labels the augmented
    # loader. Two label steps on the same weights with seed-different augmentations give different assignments,
    # where plain images would give the same.
    import copy

    import ssltk
    from ssltk.engine.trainer import Trainer

    cfg = ssltk.make_config("sela", objective_args={"clusters": 8, "heads": 1}, data_args={"train_size": 256},
                            trainer={"batch_size": 64, "run_dir": str(tmp_path), "progress": False},
                            evaluate={"linear": False})
    t = Trainer(cfg)
    t._build()
    ctx = t.context()
    t.objective.on_fit_start(ctx)

    def labels_from(features):
        obj = copy.deepcopy(t.objective)
        obj.optimise_labels(features)
        return obj.labels.clone()

    plain = labels_from(ctx.extract_features()), labels_from(ctx.extract_features())
    assert torch.equal(*plain)
    one, two = labels_from(ctx.extract_features(augment=True, seed=1)), \
        labels_from(ctx.extract_features(augment=True, seed=2))
    assert not torch.equal(one, two)
    assert torch.equal(one, labels_from(ctx.extract_features(augment=True, seed=1)))  # seeded: reproducible
    seen = []
    ctx.extract_features = lambda **kw: seen.append(kw) or torch.randn(256, t.backbone.num_features)
    t.objective.on_epoch_start(ctx, min(t.objective._schedule))
    assert seen and seen[0].get("augment") is True


def test_augmented_label_features_do_not_depend_on_how_the_pass_is_split():
    # a rank's share of the label step's pass draws the views one process would for the same images
    from ssltk.backbones.conv4 import Conv4
    from ssltk.data.recipes import ContrastiveAugment
    from ssltk.eval.features import augmented_features

    torch.manual_seed(0)
    backbone = Conv4()
    images = torch.randint(0, 256, (300, 3, 32, 32), dtype=torch.uint8)
    recipe = ContrastiveAugment(32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    whole = augmented_features(backbone, images, recipe, 7, torch.device("cpu"))
    parts = torch.cat([augmented_features(backbone, images, recipe, 7, torch.device("cpu"), 0, 130),
                       augmented_features(backbone, images, recipe, 7, torch.device("cpu"), 130, 300)])
    assert whole.shape == (300, backbone.num_features) and torch.equal(whole, parts)
    assert not torch.equal(whole, augmented_features(backbone, images, recipe, 8, torch.device("cpu")))
