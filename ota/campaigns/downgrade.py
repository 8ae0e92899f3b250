"""The explicit, signed override that lets a campaign install an image older than what some
targeted ECUs run.

A downgrade is refused unless the threshold of the image repository's **root** keys (offline,
held by the people who run key ceremonies, docs/ota.md) signed the statement
``{"_type": "downgrade-override", "campaign": <name>, "target": <target path>}`` in TUF's
canonical JSON. An API token alone therefore cannot roll a fleet back to a vulnerable version.
The car still refuses an image whose release counter is lower than the installed one (Uptane
5.4.4.2); a legitimate rollback republishes the old software with a higher counter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from securesystemslib.formats import encode_canonical
from securesystemslib.signer._signature import Signature

from ota.campaigns.errors import DowngradeOverrideInvalidError
from ota.policy import ROOT
from ota.tuf_api import Root, Signer, UnsignedMetadataError

STATEMENT_TYPE = "downgrade-override"
MAX_SIGNATURES = 16


def statement(campaign_name: str, target_path: str) -> bytes:
    canonical = encode_canonical(
        {"_type": STATEMENT_TYPE, "campaign": campaign_name, "target": target_path}
    )
    assert isinstance(canonical, str)
    return canonical.encode()


def sign_override(
    signers: Sequence[Signer], campaign_name: str, target_path: str
) -> dict[str, str]:
    """Signatures (keyid -> hex) for the override, e.g. by ``fleetlink ota`` at a ceremony."""
    payload = statement(campaign_name, target_path)
    return {s.public_key.keyid: s.sign(payload).signature for s in signers}


def verify_override(
    root: Root, signatures: Mapping[str, str], campaign_name: str, target_path: str
) -> None:
    """Raises :class:`DowngradeOverrideInvalidError` unless the root threshold signed it."""
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise DowngradeOverrideInvalidError(
            f"a downgrade override needs 1..{MAX_SIGNATURES} signatures"
        )
    try:
        root.verify_delegate(
            ROOT,
            statement(campaign_name, target_path),
            {keyid: Signature(keyid, sig) for keyid, sig in signatures.items()},
        )
    except UnsignedMetadataError as exc:
        raise DowngradeOverrideInvalidError(
            f"the downgrade override is not signed by the root threshold: {exc}"
        ) from exc
