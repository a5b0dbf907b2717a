"""Config schema shared by every data set: raw files, domains, filtering, sampling and the split.

Each reader extends ``DataConfig`` with its own keys; Hydra checks a YAML file under conf/data/
against the schema its defaults list names, so a misspelt key fails at start-up.
"""

from dataclasses import dataclass, field
from typing import List, Optional

from omegaconf import MISSING


@dataclass
class SplitConfig:
    strategy: str = "cold_start"
    seed: int = 0
    valid_ratio: float = 0.1
    test_ratio: float = 0.1
    cold_start_ratio: float = 0.2
    min_interactions: int = 3
    cold_start_domains: Optional[List[str]] = None
    valid_time: Optional[str] = None
    test_time: Optional[str] = None
    valid_quantile: float = 0.8
    test_quantile: float = 0.9


@dataclass
class DataConfig:
    name: str = MISSING
    reader: str = MISSING
    raw_dir: Optional[str] = None
    download: bool = True
    source: str = MISSING
    target: str = MISSING
    item_template: Optional[str] = None
    rating_threshold: Optional[float] = None
    min_user_interactions: int = 0
    min_item_interactions: int = 0
    encoding_fallback: str = "latin-1"
    sample_users: Optional[int] = None
    sample_seed: int = 0
    split: SplitConfig = field(default_factory=SplitConfig)
