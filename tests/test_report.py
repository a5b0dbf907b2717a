"""The printed results tables: exact layout on small inputs."""

from graphmig.report import few_shot_table, results_table


def test_results_table_rows_per_set_and_model():
    results = {"graphmig": {"tv/warm/ndcg@20": 0.25, "tv/warm/num_users": 3},
               "popularity": {"tv/warm/ndcg@20": 0.125, "tv/warm/num_users": 3}}
    lines = results_table(results, 20).splitlines()
    assert [line.split()[:4] for line in lines[2:]] == [["tv/warm", "graphmig", "3", "0.2500"],
                                                        ["tv/warm", "popularity", "3", "0.1250"]]


def test_results_table_header():
    header = results_table({"m": {"a/warm/recall@10": 1.0}}, 10).splitlines()[0].split()
    assert header == ["set", "model", "users", "recall@10", "ndcg@10", "precision@10", "hit@10", "mrr@10", "f1@10"]


def test_few_shot_table_columns_by_k():
    table = few_shot_table({"g": {"tv/few_shot_0/ndcg@20": 0.5, "tv/few_shot_3/ndcg@20": 0.4,
                                  "tv/few_shot_3/num_users": 7}}, 20)
    assert table.splitlines()[2].split() == ["tv", "g", "0.5000", "0.4000"]


def test_few_shot_table_empty():
    assert few_shot_table({}, 20) == ""
