"""Typed errors of the director (``OtaError`` subclasses with a stable ``code``)."""

from __future__ import annotations

from ota.errors import OtaError


class DirectorNotInitializedError(OtaError):
    """No director root yet: run the director key ceremony (docs/ota.md)."""

    code = "director_not_initialized"


class DirectorInitializedError(OtaError):
    code = "director_already_initialized"
