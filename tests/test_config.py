"""Every shipped config composes against its schema, and keys no schema declares are rejected."""

from pathlib import Path

import pytest

from graphmig.config import CONF_DIR, compose_config, validate_config

DATA_CONFIGS = sorted(p.stem for p in (CONF_DIR / "data").glob("*.yaml"))
MODEL_CONFIGS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


@pytest.mark.parametrize("name", DATA_CONFIGS)
def test_data_config_validates(name):
    validate_config(compose_config([f"data={name}"]))


@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_model_config_validates(name):
    validate_config(compose_config([f"model={name}"]))


@pytest.mark.parametrize("override, suggestion", [
    ("+model.embeding_dim=8", "model.embedding_dim"),
    ("+data.split.sed=1", "data.split.seed"),
    ("+trainer.max_epoch=3", "trainer.max_epochs"),
])
def test_unknown_key_names_closest(override, suggestion):
    with pytest.raises(ValueError, match=f"did you mean {suggestion}"):
        validate_config(compose_config([override]))


def test_unknown_top_level_key():
    with pytest.raises(ValueError, match="config key colour does not exist"):
        validate_config(compose_config(["+colour=red"]))


def test_config_dir_is_in_repository():
    assert CONF_DIR == Path(__file__).resolve().parent.parent / "conf"
