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

    def __init__(
        self, reason: str, *, where: str | int | None = None, source: str | None = None
    ) -> None:
        self.reason = reason
        self.where = where
        self.source = source
        super().__init__(self._compose())

    def _compose(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        if self.where is None:
            return f"{prefix}{self.format_name}: {self.reason}"
        if isinstance(self.where, int):
            return f"{prefix}{self.format_name}: at byte offset {self.where}: {self.reason}"
        return f"{prefix}{self.format_name}: {self.where}: {self.reason}"

    def name_source(self, source: str) -> None:
        """Name the input the error is about (the file the user gave), once."""
        if self.source is None and source:
            self.source = source
            self.args = (self._compose(),)

    def __str__(self) -> str:
        return self._compose()


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


def name_input(exc: BaseException, source: str) -> None:
    """Name the user's input ``source`` in ``exc`` if it is a :class:`FormatError`."""
    if isinstance(exc, FormatError | BoundError):
        exc.name_source(source)


class ModelDefinitionError(OtaModelError, RuntimeError):
    """The model itself is inconsistent (a programming error, never user input)."""


class OutputError(OtaModelError, OSError):
    """An output file cannot be written (the message names the user's path, never a
    temporary file)."""


class InputError(OtaModelError, OSError):
    """An input file cannot be read (the message names it)."""


class BoundError(OtaModelError, ValueError):
    """A documented bound was hit (a size, a count, a depth); exit status 3.

    ``option`` names the command-line option that raises the bound, when there is one.
    """

    def __init__(self, message: str, *, option: str | None = None) -> None:
        self.option = option
        self.message = message
        self.source: str | None = None
        super().__init__(self._compose())

    def _compose(self) -> str:
        hint = f" (raise it with {self.option})" if self.option else ""
        prefix = f"{self.source}: " if self.source else ""
        return f"{prefix}{self.message}{hint}"

    def name_source(self, source: str) -> None:
        """Name the input the bound was hit on, unless the message already does."""
        if self.source is None and source and source not in self.message:
            self.source = source
            self.args = (self._compose(),)

    def __str__(self) -> str:
        return self._compose()
