"""The car's OTA client (an Uptane primary doing full verification for all its ECUs).

An update, when the backend's ``ota.offer`` command says it is approved:

1. Send a signed version report with a fresh nonce (the director computes from it).
2. Refresh the director's metadata, then the image repository's, as TUF repositories
   (:mod:`simulator.ota_client.trust`), and cross-check them (:mod:`.verify`).
3. Download each image, refusing a byte beyond its signed length and any hash mismatch.
4. Install on the inactive bank, fall back to the previous bank if it fails (:mod:`.installer`).
5. Report each step (downloading, downloaded, installing, then installed, rolled_back or
   failed with the refusal's code) in signed version reports over ``ota/status``.

A refusal leaves the car exactly as it was: nothing is installed and only metadata that
verified is trusted, so the next valid update goes through. Blocking HTTP and verification
run in a worker thread; one update per campaign runs at a time.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

import urllib3

from protocol.clock import Clock, utc_from_ms
from protocol.messages import CommandMessage
from simulator.commands import CommandRejectedError
from simulator.ota_client import errors as codes
from simulator.ota_client.errors import UpdateRejectedError
from simulator.ota_client.fetch import HttpFetcher, HttpMetadataSource, basic_auth
from simulator.ota_client.installer import AbBanks, Installer
from simulator.ota_client.report import EcuKey, Progress, new_nonce, version_report
from simulator.ota_client.trust import MetadataSource, RepositoryTrust
from simulator.ota_client.tuf_names import (
    DownloadError,
    DownloadLengthMismatchError,
    FetcherInterface,
    LengthOrHashMismatchError,
)
from simulator.ota_client.verify import (
    EcuState,
    InstalledImage,
    PlannedInstall,
    check_binding,
    plan_installs,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

INVALID_OFFER = "invalid_offer"
RECENT_NONCES = 16
#: The director may not have stored our newest report yet when we ask (it travels over MQTT):
#: ask again a few times before calling the metadata stale.
NONCE_RETRIES = 8
NONCE_RETRY_S = 0.5
NONCE_RETRY_MAX_S = 4.0
#: A download that fails for network reasons (not a verification failure) is tried again a
#: few times before the car reports the update failed: a flaky link is not a bad image.
DOWNLOAD_ATTEMPTS = 3
DOWNLOAD_RETRY_S = 2.0


class StatusPublisher(Protocol):
    """Sends a version report on ``v1/vehicles/{VIN}/ota/status`` (QoS 1)."""

    async def publish(self, payload: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class OtaTransport:
    """Where the car gets metadata and images (the seam attack tests put a man in the middle
    of)."""

    image: MetadataSource
    director: MetadataSource
    targets: FetcherInterface
    targets_url: str  # ending in "/"

    @classmethod
    def http(cls, pool: urllib3.PoolManager, api_url: str, vin: str, password: str) -> OtaTransport:
        api = api_url.rstrip("/")
        return cls(
            image=HttpMetadataSource(HttpFetcher(pool), f"{api}/ota/image/"),
            director=HttpMetadataSource(
                HttpFetcher(pool, headers=basic_auth(vin, password)), f"{api}/ota/director/{vin}/"
            ),
            targets=HttpFetcher(pool),
            targets_url=f"{api}/ota/image/targets/",
        )


@dataclass(frozen=True, slots=True)
class UpdateOutcome:
    campaign_id: str
    status: str  # installed, rolled_back, failed, nothing_to_do
    code: str | None = None


@dataclass(frozen=True, slots=True)
class _Checked:
    plans: list[PlannedInstall]
    already_installed: bool  # the director lists this campaign's images and we run them


@dataclass
class OtaClient:
    vin: str
    ecus: Sequence[EcuState]
    key: EcuKey
    transport: OtaTransport
    publisher: StatusPublisher
    clock: Clock
    image_trust: RepositoryTrust
    director_trust: RepositoryTrust
    installer: Installer = field(default_factory=Installer)
    # Where blocking HTTP and verification run (None: the loop's default executor). Give
    # many cars sharing a process with the servers they talk to an executor of their own, or
    # their waiting requests can take every thread the servers need to answer them.
    executor: Executor | None = None
    counter: int = 0  # the report counter; a real car keeps it in non-volatile memory
    banks: dict[str, AbBanks] = field(init=False)
    outcomes: list[UpdateOutcome] = field(default_factory=list)
    rejections: Counter[str] = field(default_factory=Counter)
    offers: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # shown to the driver
    _nonces: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_NONCES))
    _running: dict[str, asyncio.Task[UpdateOutcome]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.banks = {ecu.serial: AbBanks(ecu.installed) for ecu in self.ecus}
        self._hardware = {ecu.serial: ecu.hardware_id for ecu in self.ecus}
        if not self.counter:
            self.counter = self.clock.now_ms()  # increases across restarts

    def state(self) -> list[EcuState]:
        return [
            EcuState(serial, self._hardware[serial], banks.active)
            for serial, banks in self.banks.items()
        ]

    async def _blocking(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(function, *args))

    def _now(self) -> datetime:
        return utc_from_ms(self.clock.now_ms())

    async def report(self, progress: Progress | None = None) -> None:
        self.counter += 1
        nonce = new_nonce()
        self._nonces.append(nonce)
        payload = version_report(
            self.key,
            vin=self.vin,
            counter=self.counter,
            nonce=nonce,
            ts_ms=self.clock.now_ms(),
            ecus=self.state(),
            progress=progress,
        )
        await self.publisher.publish(payload)

    # -- commands -----------------------------------------------------------------------------

    async def handle_offer(self, command: CommandMessage) -> None:
        """``ota.offer``: remember what the driver is told; start the update when approved.
        Returns at once (the command loop must not wait for an install)."""
        payload = command.payload
        campaign_id = payload.get("campaign_id")
        if not isinstance(campaign_id, str) or not 0 < len(campaign_id) <= 64:
            raise CommandRejectedError(INVALID_OFFER, "ota.offer without a campaign_id")
        self.offers[campaign_id] = payload
        if payload.get("approved") is not True:
            return
        running = self._running.get(campaign_id)
        if running is not None and not running.done():
            return  # the same update asked again: it is under way
        self._running[campaign_id] = asyncio.create_task(self.update(campaign_id))

    async def wait_idle(self) -> None:
        await asyncio.gather(*self._running.values(), return_exceptions=True)

    # -- the update -------------------------------------------------------------------------

    async def update(self, campaign_id: str) -> UpdateOutcome:
        try:
            outcome = await self._update(campaign_id)
        except UpdateRejectedError as exc:
            self.rejections[exc.code] += 1
            log.info("car %s refused campaign %s: %s", self.vin, campaign_id, exc)
            await self.report(Progress(campaign_id, "failed", exc.code, exc.detail))
            outcome = UpdateOutcome(campaign_id, "failed", exc.code)
        self.outcomes.append(outcome)
        return outcome

    async def _update(self, campaign_id: str) -> UpdateOutcome:
        checked = await self._check_with_retries()
        if not checked.plans:
            if checked.already_installed:
                await self.report(Progress(campaign_id, "installed"))
                return UpdateOutcome(campaign_id, "installed")
            return UpdateOutcome(campaign_id, "nothing_to_do")
        await self.report(Progress(campaign_id, "downloading"))
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                await self._blocking(self._download, checked.plans)
                break
            except UpdateRejectedError as exc:
                if exc.code != codes.DOWNLOAD_FAILED or attempt == DOWNLOAD_ATTEMPTS:
                    raise
                log.info("car %s: download failed (%s); trying again", self.vin, exc)
                await asyncio.sleep(DOWNLOAD_RETRY_S * attempt)
        await self.report(Progress(campaign_id, "downloaded"))
        await self.report(Progress(campaign_id, "installing"))
        return await self._install(campaign_id, checked.plans)

    async def _check_with_retries(self) -> _Checked:
        delay = NONCE_RETRY_S
        for attempt in range(NONCE_RETRIES):
            await self.report()  # Uptane: the director decides from the car's fresh report
            try:
                return await self._blocking(self._check, self._now())
            except UpdateRejectedError as exc:
                transient = exc.code in (codes.DIRECTOR_NONCE_UNKNOWN, codes.DOWNLOAD_FAILED)
                if not transient or attempt == NONCE_RETRIES - 1:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, NONCE_RETRY_MAX_S)
        raise AssertionError("unreachable")

    def _check(self, now: datetime) -> _Checked:
        # Uptane 5.4.4.2: the director's metadata first, then the image repository's.
        nonces = list(self._nonces)
        director = self.director_trust.refresh(
            self.transport.director,
            now,
            accept=lambda targets: check_binding(targets, vin=self.vin, recent_nonces=nonces),
        )
        if not director.targets:
            plans: list[PlannedInstall] = []
            return _Checked(plans, already_installed=False)
        image = self.image_trust.refresh(self.transport.image, now)
        plans = plan_installs(
            director,
            image,
            vin=self.vin,
            ecus={ecu.serial: ecu for ecu in self.state()},
            recent_nonces=nonces,
        )
        return _Checked(plans, already_installed=not plans)

    def _download(self, plans: Sequence[PlannedInstall]) -> None:
        for target in {p.target.path: p.target for p in plans}.values():
            sha256 = target.hashes["sha256"]
            url = f"{self.transport.targets_url}{sha256}.{target.path}"
            try:
                with self.transport.targets.download_file(url, target.length) as file:
                    target.verify_length_and_hashes(file)
            except DownloadLengthMismatchError as exc:
                raise UpdateRejectedError(codes.IMAGE_TOO_LONG, f"{target.path}: {exc}") from exc
            except LengthOrHashMismatchError as exc:
                raise UpdateRejectedError(
                    codes.IMAGE_HASH_MISMATCH, f"{target.path}: {exc}"
                ) from exc
            except DownloadError as exc:
                raise UpdateRejectedError(codes.DOWNLOAD_FAILED, f"{target.path}: {exc}") from exc

    async def _install(self, campaign_id: str, plans: Sequence[PlannedInstall]) -> UpdateOutcome:
        done: list[tuple[AbBanks, InstalledImage]] = []
        for plan in plans:
            banks = self.banks[plan.ecu_serial]
            before = banks.active
            image = InstalledImage(
                version=plan.version,
                release_counter=plan.release_counter,
                path=plan.target.path,
                sha256=plan.target.hashes["sha256"],
                length=plan.target.length,
            )
            result = await self.installer.install(banks, image)
            if not result.installed:
                # All or nothing: ECUs already switched go back to their previous bank too.
                for switched, previous in done:
                    switched.active, switched.inactive = previous, switched.active
                detail = f"{plan.ecu_serial} did not boot {plan.target.path}"
                await self.report(
                    Progress(campaign_id, "rolled_back", codes.INSTALL_FAILED, detail)
                )
                return UpdateOutcome(campaign_id, "rolled_back", codes.INSTALL_FAILED)
            done.append((banks, before))
        await self.report(Progress(campaign_id, "installed"))
        return UpdateOutcome(campaign_id, "installed")
