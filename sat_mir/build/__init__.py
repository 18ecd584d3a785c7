"""Dataset builders: turn prepared audio into what stable-audio-tools trains on (pre-encoded latents)."""

__all__: list[str] = []
