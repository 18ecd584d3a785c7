"""The one error hierarchy of sat-mir, and the exit codes its commands end with.
Messages name the file and the value."""

__all__ = [
    "EXIT_OK",
    "EXIT_ITEMS_FAILED",
    "EXIT_CONFIG",
    "EXIT_UNAVAILABLE",
    "worst_exit",
    "SatMirError",
    "AudioReadError",
    "AudioRangeError",
    "ExtractorError",
    "SidecarError",
    "ConfigError",
    "MissingExtraError",
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


class AudioRangeError(SatMirError):
    """Audio is outside what it may be written as (over full scale under ``peak_policy=reject``,
    non-finite samples)."""


class ExtractorError(SatMirError):
    """An extractor could not produce a meaningful value for this signal."""


class SidecarError(SatMirError):
    """A sidecar file is unreadable or does not follow the schema."""


class ConfigError(SatMirError):
    """The configuration is missing a value or holds an invalid one."""


class MissingExtraError(SatMirError):
    """An optional part was asked for and its packages are not installed (the message names the
    ``pip install 'sat-mir[...]'`` to run)."""


class WeightsError(SatMirError):
    """Model weights are missing or do not match their checksum."""


# Exit codes of ``sat_mir.extract`` and ``sat_mir.build``, so a script can tell bad files from a
# setup that cannot run.  When several apply, the highest wins (a stage that could not run
# hides which items would have failed).
EXIT_OK = 0  # everything asked for was done
EXIT_ITEMS_FAILED = 1  # some tracks/crops/items failed; each is named in the log and the run log
EXIT_CONFIG = 2  # the configuration is invalid or names nothing to do; nothing was run
EXIT_UNAVAILABLE = 3  # a requested stage or model could not run (weights or a package missing)


def worst_exit(*codes: int) -> int:
    """The exit code of a run made of parts that ended with ``codes``."""
    return max((EXIT_OK, *codes))
