"""Typed OTA errors with a stable, machine-readable ``code``.

Each error carries the offending values as attributes so callers (the API, the CLI, the
director later) never parse messages. Foreign exceptions (asyncpg, cryptography, python-tuf)
are translated into these once, where they are raised.
"""

from __future__ import annotations


class OtaError(Exception):
    code: str = "ota_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- artifacts ----------------------------------------------------------------------------------


class ArtifactInvalidError(OtaError):
    """A field of an artifact (name, version, hardware id, ...) breaks its rule."""

    code = "artifact_invalid"

    def __init__(self, message: str, *, field: str, value: object) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class ArtifactTooLargeError(OtaError):
    code = "artifact_too_large"

    def __init__(self, message: str, *, max_bytes: int) -> None:
        super().__init__(message)
        self.max_bytes = max_bytes


class ArtifactIncompleteError(OtaError):
    """The upload ended before the length the client declared (client went away)."""

    code = "artifact_incomplete"

    def __init__(self, message: str, *, declared: int, received: int) -> None:
        super().__init__(message)
        self.declared = declared
        self.received = received


class ArtifactExistsError(OtaError):
    code = "artifact_exists"

    def __init__(self, message: str, *, name: str, version: str) -> None:
        super().__init__(message)
        self.name = name
        self.version = version


class ReleaseCounterRollbackError(OtaError):
    """Uptane release counters never go down for a hardware id: an image with a lower counter
    than one already published would be a downgrade every ECU must refuse anyway."""

    code = "release_counter_rollback"

    def __init__(
        self, message: str, *, hardware_id: str, release_counter: int, published: int
    ) -> None:
        super().__init__(message)
        self.hardware_id = hardware_id
        self.release_counter = release_counter
        self.published = published


class DependencyNotPublishedError(OtaError):
    code = "dependency_not_published"

    def __init__(self, message: str, *, dependencies: tuple[str, ...]) -> None:
        super().__init__(message)
        self.dependencies = dependencies


class ArtifactNotFoundError(OtaError):
    code = "artifact_not_found"

    def __init__(self, message: str, *, artifact: str) -> None:
        super().__init__(message)
        self.artifact = artifact


class ArtifactContentMissingError(OtaError):
    """The database knows the artifact but its file is gone from the artifact directory."""

    code = "artifact_content_missing"

    def __init__(self, message: str, *, sha256: str) -> None:
        super().__init__(message)
        self.sha256 = sha256


# -- keys and metadata --------------------------------------------------------------------------


class KeyPolicyError(OtaError):
    """Thresholds and key counts that cannot work (threshold above the number of keys...)."""

    code = "key_policy_invalid"

    def __init__(self, message: str, *, role: str) -> None:
        super().__init__(message)
        self.role = role


class KeyStoreError(OtaError):
    """A key directory that is missing, unreadable, too open (not 0600/0700) or corrupt."""

    code = "key_store_invalid"

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class SigningKeyMissingError(OtaError):
    """Fewer private keys at hand than the role's threshold in the current root."""

    code = "signing_key_missing"

    def __init__(self, message: str, *, role: str, have: int, threshold: int) -> None:
        super().__init__(message)
        self.role = role
        self.have = have
        self.threshold = threshold


class ThresholdNotMetError(OtaError):
    """Freshly signed metadata failed its own threshold check: never stored or served."""

    code = "threshold_not_met"

    def __init__(self, message: str, *, role: str) -> None:
        super().__init__(message)
        self.role = role


class RepositoryNotInitializedError(OtaError):
    code = "repository_not_initialized"


class RepositoryInitializedError(OtaError):
    code = "repository_already_initialized"


class MetadataCorruptError(OtaError):
    """Stored metadata that no longer parses: the repository refuses to build on it."""

    code = "metadata_corrupt"

    def __init__(self, message: str, *, role: str, version: int) -> None:
        super().__init__(message)
        self.role = role
        self.version = version
