"""The validation value that selects checkpoints: one metric or the mean of several."""

import pytest

from graphmig.training.loop import monitor_value

METRICS = {"tv/cold_start/ndcg@20": 0.50, "tv/warm/ndcg@20": 0.24, "tv/warm/num_users": 390.0}


def test_single_metric_is_its_value():
    assert monitor_value(METRICS, "tv/warm/ndcg@20") == 0.24


def test_joined_metrics_average():
    assert monitor_value(METRICS, "tv/cold_start/ndcg@20+tv/warm/ndcg@20") == pytest.approx(0.37)
    assert monitor_value(METRICS, "tv/cold_start/ndcg@20 + tv/warm/ndcg@20") == pytest.approx(0.37)


def test_unknown_metric_names_key_and_choices():
    with pytest.raises(KeyError, match=r"'tv/warm/ndcg@10' is not a validation metric; available: "
                                       r"tv/cold_start/ndcg@20, tv/warm/ndcg@20"):
        monitor_value(METRICS, "tv/cold_start/ndcg@20+tv/warm/ndcg@10")
