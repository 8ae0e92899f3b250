"""Typed errors of campaigns, the rollout and update statuses (``OtaError`` subclasses with a
stable ``code``; the API maps them to HTTP statuses by kind)."""

from __future__ import annotations

from ota.errors import OtaError


class CampaignInvalidError(OtaError):
    """A campaign field breaks its rule (waves out of order, unknown time zone, ...)."""

    code = "campaign_invalid"

    def __init__(self, message: str, *, field: str, value: object) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class CampaignNotFoundError(OtaError):
    code = "campaign_not_found"

    def __init__(self, message: str, *, campaign_id: str) -> None:
        super().__init__(message)
        self.campaign_id = campaign_id


class CampaignExistsError(OtaError):
    """A campaign with the id the client chose exists already (a retried create)."""

    code = "campaign_exists"

    def __init__(self, message: str, *, campaign_id: str) -> None:
        super().__init__(message)
        self.campaign_id = campaign_id


class CampaignStateError(OtaError):
    """The action does not fit the campaign's status (resume a cancelled campaign, ...)."""

    code = "campaign_state_conflict"

    def __init__(self, message: str, *, status: str, action: str) -> None:
        super().__init__(message)
        self.status = status
        self.action = action


class ImageNotPublishedError(OtaError):
    """A campaign names an image the image repository does not list."""

    code = "image_not_published"

    def __init__(self, message: str, *, target_path: str) -> None:
        super().__init__(message)
        self.target_path = target_path


class DowngradeRefusedError(OtaError):
    """The image is older than what some targeted ECUs run, and no valid override was given."""

    code = "downgrade_refused"

    def __init__(self, message: str, *, vins: tuple[str, ...], target_version: str) -> None:
        super().__init__(message)
        self.vins = vins
        self.target_version = target_version


class DowngradeOverrideInvalidError(OtaError):
    """The downgrade override's signatures do not meet the image repository's root threshold."""

    code = "downgrade_override_invalid"


class UpdateNotFoundError(OtaError):
    """No update of this campaign for this vehicle (or not one the caller may act on)."""

    code = "update_not_found"

    def __init__(self, message: str, *, vin: str, campaign_id: str) -> None:
        super().__init__(message)
        self.vin = vin
        self.campaign_id = campaign_id


class StatusTransitionError(OtaError):
    """The status machine does not allow this step (ota/status_machine.py)."""

    code = "status_transition_invalid"

    def __init__(self, message: str, *, current: str, target: str) -> None:
        super().__init__(message)
        self.current = current
        self.target = target
