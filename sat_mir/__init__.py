"""sat-mir: MIR features, prompts and conditioning datasets for Stable Audio fine-tuning."""

__all__ = ["__version__"]
__version__ = "0.1.0"
