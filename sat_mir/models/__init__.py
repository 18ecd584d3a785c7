"""Model weights: where each model's files live, finding them offline, fetching them where the internet works."""

from sat_mir.models.spec import ModelFile, ModelSpec, default_models_dir, download, locate, verify

__all__ = ["ModelFile", "ModelSpec", "default_models_dir", "download", "locate", "verify"]
