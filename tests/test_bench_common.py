"""The benchmark scripts' key=value arguments: defaults, overrides and rejected input."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from bench_common import parse_key_values  # noqa: E402

DEFAULTS = {"data": "gowalla", "eval": "false", "steps": "10"}


def test_overrides_replace_defaults():
    assert parse_key_values(["eval=true", "data=ml1m_atomic"], DEFAULTS) == {
        "data": "ml1m_atomic", "eval": "true", "steps": "10"}


def test_unknown_key_lists_known():
    with pytest.raises(SystemExit, match="unknown argument 'foo'; known: data, eval, steps"):
        parse_key_values(["foo=1"], DEFAULTS)


def test_missing_value_rejected():
    with pytest.raises(SystemExit, match="argument 'eval' has no value; write it as key=value, e.g. eval=false"):
        parse_key_values(["eval"], DEFAULTS)


def test_boolean_needs_true_or_false():
    with pytest.raises(SystemExit, match="eval='True' is invalid; use true or false"):
        parse_key_values(["eval=True"], DEFAULTS)
