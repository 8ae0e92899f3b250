"""The rollout scheduler: every tick, for each running campaign, enroll vehicles registered
since (``include_future``), decide on the waves (advance, complete, halt; :mod:`ota.rollout`),
offer the open waves' vehicles whose window and preconditions allow it, and (re)send the
commands; in the background, consume the cars' status reports (:mod:`ota.rollout_mqtt`).

``tick(now)`` does one round and is what tests drive; ``run(stop)`` ticks on a timer. Several
schedulers may run against one database: offers lock their rows (``SKIP LOCKED``), wave
decisions are conditional updates, and a command sent twice is harmless (the car runs one
update per campaign at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import asyncpg

from ota.campaigns.creation import enroll_new
from ota.campaigns.model import OFFERING, Campaign, CampaignStatus
from ota.campaigns.store import campaign_stats, campaigns_in
from ota.campaigns.topics import CAMPAIGN_HALTED
from ota.rollout import Decision, WaveCounts, decide
from ota.rollout_mqtt import CommandNotSentError, CommandSink, MqttRolloutLink
from ota.rollout_offers import OutgoingCommand, make_offers, mark_sent, resends
from ota.rollout_settings import RolloutSettings
from ota.status_ingest import StatusIngest
from protocol.clock import SYSTEM_CLOCK, Clock, utc_from_ms
from protocol.endpoint import MqttEndpoint

log = logging.getLogger(__name__)
C = CampaignStatus


@dataclass
class TickReport:
    enrolled: int = 0
    offered: int = 0
    sent: int = 0
    unsent: int = 0
    decisions: list[tuple[str, Decision, int]] = field(default_factory=list)


class RolloutScheduler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        commands: CommandSink,
        *,
        settings: RolloutSettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
        link: MqttRolloutLink | None = None,
    ) -> None:
        """``commands`` sends the offers; ``link``, when given, is run by :meth:`run` (the
        MQTT connection that also receives status reports)."""
        self._pool = pool
        self._commands = commands
        self.settings = settings or RolloutSettings()
        self._clock = clock
        self.link = link
        self.last_error: str | None = None

    @classmethod
    def over_mqtt(
        cls,
        pool: asyncpg.Pool,
        endpoint: MqttEndpoint,
        *,
        settings: RolloutSettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> RolloutScheduler:
        """The scheduler publishing and receiving over ``endpoint`` (a broker identity with
        the ``commander`` role that may also subscribe to ``ota/status``)."""
        settings = settings or RolloutSettings()
        ingest = StatusIngest(pool, max_report_bytes=settings.max_report_bytes)
        link = MqttRolloutLink(endpoint, ingest, clock, settings)
        return cls(pool, link, settings=settings, clock=clock, link=link)

    async def tick(self, now: datetime) -> TickReport:
        report = TickReport()
        s = self.settings
        for campaign in await campaigns_in(self._pool, OFFERING):
            if campaign.spec.targeting.include_future:
                async with self._pool.acquire() as conn, conn.transaction():
                    report.enrolled += await enroll_new(conn, campaign, now)
            current = campaign
            if campaign.status is C.ACTIVE:
                current = await self._evaluate(campaign, now, report)
            if current.status not in OFFERING:
                continue
            # Resends first: an offer made below has command_at unset until it is sent.
            outgoing = await resends(
                self._pool,
                current,
                now,
                resend_after=timedelta(seconds=s.resend_after_s),
                max_commands=s.max_commands,
                batch=s.offer_batch,
            )
            offers = await make_offers(self._pool, current, now, batch=s.offer_batch)
            report.offered += len(offers)
            await self._send([*outgoing, *offers], now, report)
        return report

    async def _evaluate(self, campaign: Campaign, now: datetime, report: TickReport) -> Campaign:
        """Apply wave decisions until one says hold; returns the campaign as it now is."""
        stats = (await campaign_stats(self._pool, [campaign.id]))[campaign.id]
        by_wave = {w.wave: w for w in stats.waves}
        waves = campaign.spec.waves
        counts = []
        for index in range(len(waves)):
            w = by_wave.get(index)
            acknowledged = campaign.acknowledged_failures.get(index, 0)
            counts.append(
                WaveCounts(w.size, w.installed, max(0, w.failed - acknowledged))
                if w is not None
                else WaveCounts(0)
            )
        wave, status, reason = campaign.current_wave, campaign.status, campaign.status_reason
        while True:
            verdict = decide(waves, wave, counts)
            if verdict.decision is Decision.HOLD:
                break
            report.decisions.append((str(campaign.id), verdict.decision, verdict.wave))
            if verdict.decision is Decision.ADVANCE:
                wave += 1
                continue
            status = C.COMPLETED if verdict.decision is Decision.COMPLETE else C.HALTED
            reason = verdict.reason or f"wave {verdict.wave} passed its success threshold"
            break
        if (wave, status) == (campaign.current_wave, campaign.status):
            return campaign
        async with self._pool.acquire() as conn, conn.transaction():
            changed = await conn.fetchval(
                "UPDATE ota_campaigns SET current_wave = $3, status = $4, status_reason = $5,"
                " updated_at = $6 WHERE id = $1 AND status = 'active' AND current_wave = $2"
                " RETURNING true",
                campaign.id,
                campaign.current_wave,
                wave,
                status.value,
                reason,
                now,
            )
            if changed and status is C.HALTED:
                await conn.execute(
                    "SELECT outbox_append($1, $2, NULL, NULL, $3::jsonb, $4)",
                    CAMPAIGN_HALTED,
                    f"ota_campaign:{campaign.id}",
                    json.dumps({"campaign_id": str(campaign.id), "reason": reason}),
                    now,
                )
        if not changed:
            return campaign  # an operator acted meanwhile; look again next tick
        log.info(
            "OTA campaign %s: wave %d, %s (%s)",
            campaign.id,
            wave,
            status.value,
            reason,
            extra={"campaign": str(campaign.id), "wave": wave, "status": status.value},
        )
        return _with(campaign, wave, status, reason)

    async def _send(
        self, outgoing: list[OutgoingCommand], now: datetime, report: TickReport
    ) -> None:
        sent: list[OutgoingCommand] = []
        for item in outgoing:
            try:
                await self._commands.send(item.vin, item.command)
            except CommandNotSentError as exc:
                report.unsent += 1
                self.last_error = str(exc)
                continue
            sent.append(item)
        await mark_sent(self._pool, sent, now)
        report.sent += len(sent)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every ``tick_interval_s`` until ``stop``; with an MQTT link, run it too."""
        link_task = asyncio.create_task(self.link.run(stop)) if self.link else None
        try:
            while not stop.is_set():
                try:
                    await self.tick(utc_from_ms(self._clock.now_ms()))
                    self.last_error = None
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    self.last_error = str(exc)
                    log.warning("OTA rollout tick failed, retrying: %s", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.tick_interval_s)
        finally:
            if link_task is not None:
                await link_task


def _with(campaign: Campaign, wave: int, status: CampaignStatus, reason: str | None) -> Campaign:
    return replace(campaign, current_wave=wave, status=status, status_reason=reason)
