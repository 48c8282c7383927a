"""DeepCluster: clustering of whitened features, uniform sampling over clusters, the re-initialised head."""
import torch

from ssltk.testing import build_pair


def test_deepcluster_clusters_whitened_features_and_samples_uniformly_over_clusters():
    from ssltk.testing import contract_context

    for backend in ("sklearn", "torch"):
        bb, obj = build_pair("deepcluster", objective_args={"k": 8, "backend": backend})
        ctx = contract_context(bb)
        top_before = obj.top.weight.detach().clone()
        obj.on_epoch_start(ctx, 0)
        assert obj.pseudo.shape == (256,) and int(obj.pseudo.max()) < 8
        assert not torch.equal(top_before, obj.top.weight)  # the last layer is re-initialised
        w = obj.sampling_weights()
        sizes = torch.bincount(obj.pseudo, minlength=8).float()
        # each non-empty cluster carries the same total weight: uniform sampling over clusters
        per_cluster = torch.zeros(8).index_add_(0, obj.pseudo, w.float())
        torch.testing.assert_close(per_cluster[sizes > 0], torch.ones(int((sizes > 0).sum())))
    assert build_pair("deepcluster")[1].k == 40  # 10 x the contract data's 4 classes


def test_pca_whitening_gives_unit_variance():
    from ssltk_baselines.deepcluster import pca_whiten

    x = torch.randn(500, 6, generator=torch.Generator().manual_seed(0)) @ torch.randn(6, 6)
    w = pca_whiten(x, 4)
    assert w.shape == (500, 4)
    torch.testing.assert_close(torch.cov(w.T), torch.eye(4), atol=1e-3, rtol=0)


def test_weighted_sampling_through_the_trainer(tmp_path):
    import ssltk

    res = ssltk.fit("deepcluster", data_args={"train_size": 256}, objective_args={"k": 10},
                    trainer={"epochs": 1, "batch_size": 32, "run_dir": str(tmp_path), "progress": False},
                    evaluate={"linear": False})
    assert res.objective.sampling_weights() is not None


def test_the_reinitialised_classifier_starts_with_fresh_optimizer_state():
    import ssltk
    from ssltk.engine.trainer import Trainer

    trainer = Trainer(ssltk.api.make_config("deepcluster", data_args={"train_size": 128}, objective_args={"k": 10},
                                            trainer={"batch_size": 32, "device": "cpu", "progress": False}))
    trainer._build()
    params = [p for p in trainer.step_module.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.ones_like(p)
    trainer.optimizer.step()  # every parameter now carries Adam moments
    obj = trainer.objective
    ctx = trainer.context()
    obj.on_fit_start(ctx)
    obj.on_epoch_start(ctx, 0)
    top = {id(p) for p in obj.top.parameters()}
    state = trainer.optimizer.state
    assert all(p not in state for p in obj.top.parameters())
    kept = [p for p in params if id(p) not in top]
    assert kept and all(int(state[p]["step"]) == 1 for p in kept)  # the backbone and the MLP body keep theirs
