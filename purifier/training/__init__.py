"""Training: midrun EBMs (:mod:`purifier.training.ebm`) and classifiers, natural or adversarial
(:mod:`purifier.training.classifier`), from TOML configs (:mod:`purifier.training.configs`)."""
