"""Training: configuration, the resumable loop, checkpoints and data-parallel execution."""

from ..runs.checkpoint import load_checkpoint, load_model
from ..runs.config import TrainConfig, load_config
from .loop import ProgressEvent, TrainResult, train

__all__ = ["ProgressEvent", "TrainConfig", "TrainResult", "load_checkpoint", "load_config", "load_model", "train"]
