"""Model architectures by name: energies (``conv-ebm``, ``resnet-ebm``) and classifiers
(``small-cnn``, ``wide-resnet``). ``build(name, **args)`` constructs one."""

from purifier.models import classifier, ebm  # noqa: F401  (registers the architectures)
from purifier.models.registry import architectures, build, register

__all__ = ["architectures", "build", "register"]
