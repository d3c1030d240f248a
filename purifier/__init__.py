"""ebm-purify's library: midrun EBMs, the Langevin purifier, the defended classifier, training,
checkpoints and data. Images are (N, C, H, W) float tensors in [0, 1].

    from purifier import Purifier, DefendedClassifier, load_classifier
"""

from purifier.checkpoint import load_checkpoint, load_classifier, save_checkpoint
from purifier.defense import DefendedClassifier
from purifier.errors import CheckpointError, DataError, InputError, PurifierError, SettingsError
from purifier.langevin import LangevinConfig, LangevinSampler
from purifier.purifier import Purifier

__all__ = [
    "CheckpointError", "DataError", "DefendedClassifier", "InputError", "LangevinConfig", "LangevinSampler",
    "Purifier", "PurifierError", "SettingsError", "load_checkpoint", "load_classifier", "save_checkpoint",
]
