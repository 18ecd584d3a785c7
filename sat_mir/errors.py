"""The one error hierarchy of sat-mir.  Messages name the file and the value."""

__all__ = [
    "SatMirError",
    "AudioReadError",
    "ExtractorError",
    "SidecarError",
    "ConfigError",
    "WeightsError",
]


class SatMirError(Exception):
    """Base class of every error sat-mir raises on purpose."""


class AudioReadError(SatMirError):
    """A file could not be decoded into audio (empty, truncated, not audio, ...).

    ``path`` is the file and ``reason`` the cause without the path, so callers can
    name the file the way that suits them.
    """

    def __init__(self, path, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ExtractorError(SatMirError):
    """An extractor could not produce a meaningful value for this signal."""


class SidecarError(SatMirError):
    """A sidecar file is unreadable or does not follow the schema."""


class ConfigError(SatMirError):
    """The configuration is missing a value or holds an invalid one."""


class WeightsError(SatMirError):
    """Model weights are missing or do not match their checksum."""
