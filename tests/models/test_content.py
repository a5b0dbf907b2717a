"""The content baseline against cosine scores worked by hand on 2-d features, its empty profiles,
its config checks, and one end-to-end run on a sample of the real anime data."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from graphmig.config import compose_config
from graphmig.data.dataset import CrossDomainDataset, DomainData
from graphmig.evaluation.ranking import evaluate_ranking_scores
from graphmig.models.base import ModelContext
from graphmig.models.content import ContentBased, ContentConfig, build
from graphmig.pipeline import run

# Movie m1 is not unit length, so the test also checks that rows are normalised before averaging.
# TV item t2 has an all-zero embedding (empty text).
FEATURES = {
    "movie": torch.tensor([[1.0, 0.0], [0.0, 2.0]]),
    "tv": torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]),
    "genre": torch.tensor([[1.0, 0.0]]),
}
# User 0 has both movies, user 1 movie m1 only, user 2 no movie but TV item t1.
MOVIE_TRAIN = np.array([[0, 0], [0, 1], [1, 1]])
TV_TRAIN = np.array([[0, 0], [2, 1]])
HALF_SQRT2 = 1 / math.sqrt(2)


def make_model(profile_domains=("movie",)) -> ContentBased:
    pairs = {"movie": MOVIE_TRAIN, "tv": TV_TRAIN}
    items = {d: FEATURES[d] for d in ("movie", "tv")}
    return ContentBased(items, {d: pairs[d] for d in profile_domains}, num_users=3)


def tiny_dataset() -> CrossDomainDataset:
    def domain(name, count, interactions):
        ids = np.array([f"{name}{i}" for i in range(count)])
        return DomainData(name, ids, pd.DataFrame({"item": ids}), interactions, np.zeros((0, 2), dtype=np.int64))

    return CrossDomainDataset("tiny", np.array(["u0", "u1", "u2"]), np.array(["g0"]),
                              {"movie": domain("movie", 2, MOVIE_TRAIN), "tv": domain("tv", 3, TV_TRAIN)},
                              "movie", "tv")


def context(train_pairs=None, text_features=FEATURES) -> ModelContext:
    pairs = {"movie": MOVIE_TRAIN, "tv": TV_TRAIN} if train_pairs is None else train_pairs
    return ModelContext(tiny_dataset(), None, pairs, text_features, torch.device("cpu"))


def test_content_tv_scores_hand_cosine():
    scores = make_model().score_functions()["tv"](torch.tensor([0, 1]))

    # User 0: mean([1, 0], [0, 1]) points along [1, 1]. User 1: [0, 1].
    expected = torch.tensor([[1.0, HALF_SQRT2, 0.0], [HALF_SQRT2, 0.0, 0.0]])
    torch.testing.assert_close(scores, expected)


def test_content_movie_scores_hand_cosine():
    scores = make_model().score_functions()["movie"](torch.tensor([0, 1]))

    expected = torch.tensor([[HALF_SQRT2, HALF_SQRT2], [0.0, 1.0]])
    torch.testing.assert_close(scores, expected)


def test_content_empty_profile_all_zero():
    scores = make_model().score_functions()["tv"](torch.tensor([2]))

    assert torch.equal(scores, torch.zeros(1, 3))


def test_content_empty_profile_ties_by_index():
    """All-zero scores rank items by ascending index in the full ranking, so item 0 comes first."""
    score_fn = make_model().score_functions()["tv"]
    user = torch.tensor([2])
    truth_indptr = torch.tensor([0, 0, 0, 1])

    first = evaluate_ranking_scores(score_fn, 3, user, truth_indptr, torch.tensor([0]), None, None, ks=[1])
    last = evaluate_ranking_scores(score_fn, 3, user, truth_indptr, torch.tensor([2]), None, None, ks=[1])

    assert first.metrics["hit@1"] == 1.0
    assert last.metrics["hit@1"] == 0.0


def test_content_both_domains_profile():
    scores = make_model(profile_domains=("movie", "tv")).score_functions()["tv"](torch.tensor([0, 2]))

    # User 0: mean of [1, 0], [0, 1] and [1, 1] / sqrt(2) points along [1, 1]. User 2: t1 = [1, 0].
    expected = torch.tensor([[1.0, HALF_SQRT2, 0.0], [HALF_SQRT2, 1.0, 0.0]])
    torch.testing.assert_close(scores, expected)


def test_content_extra_pairs_join_profile():
    model = make_model()

    scores = model.score_functions_with({"movie": np.array([[2, 0]])})["tv"](torch.tensor([2]))

    torch.testing.assert_close(scores, torch.tensor([[HALF_SQRT2, 1.0, 0.0]]))


def test_content_extra_pairs_outside_profile_ignored():
    model = make_model()

    scores = model.score_functions_with({"tv": np.array([[2, 0]])})["tv"](torch.tensor([2]))

    assert torch.equal(scores, torch.zeros(1, 3))


def test_content_fresh_tensor_per_call():
    score_fn = make_model().score_functions()["tv"]

    first = score_fn(torch.tensor([0]))
    first.fill_(-1.0)

    assert score_fn(torch.tensor([0]))[0, 0].item() == pytest.approx(1.0)


def test_content_build_default_source():
    model = build(ContentConfig(), context())

    assert model.profile_domains == ["movie"]
    assert model.state_dict() == {}


def test_content_build_unknown_domain_raises():
    with pytest.raises(ValueError, match="profile_domains contains \\['book'\\]"):
        build(ContentConfig(profile_domains=["book"]), context())


def test_content_build_domain_not_trained_raises():
    with pytest.raises(ValueError, match="model.train_domains"):
        build(ContentConfig(profile_domains=["movie"], train_domains=["tv"]), context({"tv": TV_TRAIN}))


def test_content_build_without_text_raises():
    with pytest.raises(ValueError, match="needs item text features"):
        build(ContentConfig(), context(text_features=None))


@pytest.mark.slow  # Encodes the text of about 2,400 items unless this session's cache has them.
def test_content_pipeline_run_real_sample(data_dir, cache_dir, tmp_path):
    cfg = compose_config([f"data.raw_dir={data_dir}", f"cache_dir={cache_dir}", "data.download=false",
                          "data.sample_users=300", "model=content", "logger=none"])

    summary = run(cfg, tmp_path)

    metrics = summary["test"]["content"]
    assert summary["epochs_run"] == 0
    for name in ("tv/cold_start", "tv/warm", "movie/warm"):
        assert metrics[f"{name}/num_users"] > 0, name
        for key in (f"{name}/ndcg@20", f"{name}/recall@20"):
            assert math.isfinite(metrics[key]), key
    assert metrics["tv/cold_start/ndcg@20"] > 0
    assert (tmp_path / "metrics.json").is_file()
