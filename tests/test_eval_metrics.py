"""Metric code of the evaluation suite against hand-computed cases and scikit-learn."""
import numpy as np
import pytest
import torch

from ssltk.eval.clustering import clustering_scores, kmeans
from ssltk.errors import SsltkError
from ssltk.eval.knn import knn_predict, pca_project
from ssltk.eval.retrieval import retrieval_accuracy, retrieval_confusion, retrieve, sample_queries
from ssltk.eval.summary import format_mean_std, mean_std


def test_knn_votes_are_weighted_by_exp_similarity():
    # query along x; two class-1 neighbours at moderate similarity outvote one class-0 neighbour closer to it
    train = torch.tensor([[1.0, 0.1], [1.0, 0.5], [1.0, -0.5], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 0])
    q = torch.tensor([[1.0, 0.0]])
    sims = torch.nn.functional.normalize(train, dim=1) @ torch.nn.functional.normalize(q, dim=1).T
    # by hand: k=3 keeps rows 0, 1, 2; class 0 gets exp(s0/sigma), class 1 exp(s1/sigma) + exp(s2/sigma)
    for sigma in (0.1, 1.0):
        w = (sims.flatten()[:3] / sigma).exp()
        expected = 0 if w[0] > w[1] + w[2] else 1
        assert knn_predict(train, labels, q, 2, k=3, sigma=sigma).item() == expected
    # sigma 0.01 makes the nearest neighbour dominate, sigma 1 lets the two class-1 votes win
    assert knn_predict(train, labels, q, 2, k=3, sigma=0.01).item() == 0
    assert knn_predict(train, labels, q, 2, k=3, sigma=1.0).item() == 1
    assert knn_predict(train, labels, q, 2, k=1).item() == 0


def test_knn_is_independent_of_the_chunk_size():
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(300, 16, generator=g), torch.randn(77, 16, generator=g)
    labels = torch.randint(0, 5, (300,), generator=g)
    a = knn_predict(train, labels, test, 5, k=20, chunk=7)
    b = knn_predict(train, labels, test, 5, k=20, chunk=1000)
    assert torch.equal(a, b)


def test_pca_projection_matches_scikit_learn_up_to_sign():
    from sklearn.decomposition import PCA

    g = torch.Generator().manual_seed(1)
    train = torch.randn(200, 12, generator=g, dtype=torch.float64) @ torch.randn(12, 12, generator=g, dtype=torch.float64)
    test = torch.randn(30, 12, generator=g, dtype=torch.float64)
    ours_tr, ours_te = pca_project(train, test, 4)
    ref = PCA(4).fit(train.numpy())
    ref_te = ref.transform(test.numpy())
    signs = np.sign((ours_te.numpy() * ref_te).sum(0))
    np.testing.assert_allclose(ours_te.numpy() * signs, ref_te, atol=1e-8)


def test_retrieval_accuracy_and_confusion_by_hand():
    gallery = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0]])
    g_labels = torch.tensor([0, 0, 1, 1, 1])
    queries = torch.tensor([[0.4], [10.6]])
    q_labels = torch.tensor([0, 1])
    idx = retrieve(queries, gallery, 3)
    assert idx.tolist() == [[0, 1, 2], [4, 3, 2]]
    r = g_labels[idx]
    # query 0 retrieves classes 0, 0, 1 (2/3 correct); query 1 retrieves 1, 1, 1 (3/3)
    assert retrieval_accuracy(q_labels, r, 3) == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert retrieval_accuracy(q_labels, r, 1) == pytest.approx(100.0)
    conf = retrieval_confusion(q_labels, r, 3, 2)
    torch.testing.assert_close(conf, torch.tensor([[2 / 3, 1 / 3], [0.0, 1.0]], dtype=torch.float64))


def test_confusion_rows_sum_to_the_number_of_queries():
    g = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 6, (400,), generator=g)
    feats = torch.randn(400, 8, generator=g) + labels[:, None].float()
    q = sample_queries(labels, 20, seed=0)
    assert all(int((labels[q] == c).sum()) <= 20 for c in range(6))
    idx = retrieve(feats[q], feats, 50)
    conf = retrieval_confusion(labels[q], labels[idx], 50, 6)
    counts = torch.bincount(labels[q], minlength=6).double()
    torch.testing.assert_close(conf.sum(1), counts)
    assert conf.sum().item() == pytest.approx(len(q))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clustering_scores_are_scikit_learns_in_percent(seed):
    from sklearn import metrics as M

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 7, 300)
    noisy = np.where(rng.random(300) < 0.6, truth, rng.integers(0, 9, 300))
    for pred in (noisy, rng.integers(0, 3, 300), np.zeros(300, int)):
        scores = clustering_scores(torch.as_tensor(pred), torch.as_tensor(truth))
        assert scores == pytest.approx({"nmi": 100 * M.normalized_mutual_info_score(truth, pred),
                                        "adjusted_nmi": 100 * M.adjusted_mutual_info_score(truth, pred),
                                        "ari": 100 * M.adjusted_rand_score(truth, pred)}, abs=1e-9)
    assert clustering_scores(truth, truth) == pytest.approx({"nmi": 100.0, "adjusted_nmi": 100.0, "ari": 100.0})
    with pytest.raises(SsltkError, match="predicted labels"):
        clustering_scores(truth[:10], truth)


def test_kmeans_objective_is_no_worse_than_scikit_learn():
    from sklearn.cluster import KMeans

    g = torch.Generator().manual_seed(3)
    centres = torch.randn(8, 10, generator=g) * 4
    x = centres[torch.randint(0, 8, (1000,), generator=g)] + torch.randn(1000, 10, generator=g)
    labels, cent, inertia = kmeans(x, 8, seed=0, n_init=3)
    ref = KMeans(8, n_init=3, random_state=0).fit(x.numpy())
    assert inertia <= ref.inertia_ * (1 + 1e-3)
    assert labels.shape == (1000,) and int(labels.max()) < 8
    # the reported inertia is the objective of the returned labels and centroids
    assert inertia == pytest.approx(float(((x - cent[labels]) ** 2).sum()), rel=1e-4)


def test_mean_std_over_seeds():
    assert mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert format_mean_std([48.0, 50.0]) == "49.00 ± 1.41"
    assert format_mean_std([48.0]) == "48.00"
