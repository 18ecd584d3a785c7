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
    """A file could not be decoded into audio (empty, truncated, not audio, ...)."""


class ExtractorError(SatMirError):
    """An extractor could not produce a meaningful value for this signal."""


class SidecarError(SatMirError):
    """A sidecar file is unreadable or does not follow the schema."""


class ConfigError(SatMirError):
    """The configuration is missing a value or holds an invalid one."""


class WeightsError(SatMirError):
    """Model weights are missing or do not match their checksum."""
