"""The one small exception hierarchy of otamodel.

Every class also subclasses the builtin a caller would naturally catch, so
``except ValueError`` keeps working for code that does not know otamodel.
Refused model events are *not* exceptions: ``step`` returns a refusal.
"""

from __future__ import annotations


class OtaModelError(Exception):
    """Base class of every error otamodel raises on purpose."""


class FormatError(OtaModelError, ValueError):
    """Malformed input in one of the real formats.

    ``where`` names the field (a JSON path, a CSV row/column) or the byte offset.
    """

    format_name: str = "input"

    def __init__(self, reason: str, *, where: str | int | None = None) -> None:
        self.reason = reason
        self.where = where
        if where is None:
            message = f"{self.format_name}: {reason}"
        elif isinstance(where, int):
            message = f"{self.format_name}: at byte offset {where}: {reason}"
        else:
            message = f"{self.format_name}: {where}: {reason}"
        super().__init__(message)


class ManifestError(FormatError):
    """The manifest JSON cannot be read the way the service reads it."""

    format_name = "manifest"


class DatabaseError(FormatError):
    """``image_database.csv`` is not a file the service could have written."""

    format_name = "image database"


class BootControlError(FormatError):
    """A boot-control header or page is malformed."""

    format_name = "boot control"


class SignatureError(FormatError):
    """A signature or key is malformed (wrong length, bad base64, wrong curve, unreadable)."""

    format_name = "signature"


class HexFileError(FormatError):
    """An Intel HEX file is malformed or cannot be converted/merged."""

    format_name = "hex"


class PatchError(FormatError):
    """A jdiff patch is malformed (``where`` is the patch byte offset)."""

    format_name = "patch"


class ScenarioError(FormatError):
    """A scenario description is malformed or names something unknown."""

    format_name = "scenario"


class TraceError(FormatError):
    """A trace file is malformed or names something unknown."""

    format_name = "trace"


class ModelDefinitionError(OtaModelError, RuntimeError):
    """The model itself is inconsistent (a programming error, never user input)."""
