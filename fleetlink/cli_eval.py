"""``fleetlink eval diagnostics|offers``: the command line of ``bench.eval_diagnostics`` and
``bench.eval_offers``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TextIO

# Must-show thresholds of the diagnostics issue, per gradual alert type.
MIN_PRECISION = 0.95
MIN_RECALL = 0.95
MIN_MEDIAN_LEAD_DAYS = 7.0
MAX_FALSE_PER_1000_VEHICLE_DAYS = 1.0
# Offers: trigger to delivery, 99th percentile.
MAX_OFFER_P99_S = 5.0


def add_eval_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evaluate = commands.add_parser("eval", help="measure how well FleetLink works")
    targets = evaluate.add_subparsers(dest="eval_command", required=True)
    diagnostics = targets.add_parser(
        "diagnostics",
        help="score predictive-maintenance alerts against the simulator's ground truth",
        description="Backfill D days of N simulated cars with injected faults through MQTT, "
        "ingest and the store (embedded PostgreSQL, Mosquitto when installed), run the stream "
        "rules on every ingested batch and the trend models once per simulated day, then "
        "score the alerts per type: precision, recall, median and 10th-percentile lead time, "
        "false alerts per 1,000 vehicle-days. Writes a PNG chart of the lead times. Exit 1 "
        f"when a gradual type misses precision >= {MIN_PRECISION}, recall >= {MIN_RECALL} or "
        f"median lead >= {MIN_MEDIAN_LEAD_DAYS:g} days, or false alerts reach "
        f"{MAX_FALSE_PER_1000_VEHICLE_DAYS:g} per 1,000 vehicle-days.",
    )
    diagnostics.add_argument("--vehicles", type=int, default=300)
    diagnostics.add_argument("--days", type=float, default=60.0)
    diagnostics.add_argument("--seed", type=int, default=11)
    diagnostics.add_argument("--broker", choices=("auto", "mosquitto", "amqtt"), default="auto")
    diagnostics.add_argument(
        "--chart",
        type=Path,
        default=None,
        help="PNG of the lead times (default: diagnostics-eval-seed<S>.png here)",
    )
    diagnostics.add_argument("--json", action="store_true", help="print the figures as JSON")
    offers = targets.add_parser(
        "offers",
        help="a simulated day of the fleet through the offers engine: KPIs and the audit",
        description="Backfill D days of N simulated cars through MQTT, ingest and the offers "
        "engine with the default rules; every car has an owner (half without marketing "
        "consent, one in ten without location consent, a quarter with quiet hours). Prints "
        "the KPI table per rule, the audit (promotions without consent, cap, cooldown and "
        "quiet-hour violations) and the trigger-to-delivery percentiles. Exit 1 when the "
        f"audit finds anything or the p99 trigger-to-delivery reaches {MAX_OFFER_P99_S:g} s.",
    )
    offers.add_argument("--vehicles", type=int, default=1000)
    offers.add_argument("--days", type=float, default=1.0)
    offers.add_argument("--seed", type=int, default=21)
    offers.add_argument("--broker", choices=("auto", "mosquitto", "amqtt"), default="auto")
    offers.add_argument(
        "--speedup",
        type=float,
        default=240.0,
        help="replay the day at most K times faster than real time (0: unpaced backfill)",
    )
    offers.add_argument("--json", action="store_true", help="print the figures as JSON")


def run_eval_command(args: argparse.Namespace, out: TextIO) -> int:
    from bench.eval_diagnostics import EvalOptions, run_diagnostics_eval

    if args.eval_command == "offers":
        return _run_offers_eval(args, out)
    assert args.eval_command == "diagnostics"
    chart = args.chart or Path(f"diagnostics-eval-seed{args.seed}.png")
    options = EvalOptions(
        vehicles=args.vehicles, days=args.days, seed=args.seed, broker=args.broker, chart=chart
    )
    figures = asyncio.run(run_diagnostics_eval(options, sys.stderr if args.json else out))
    result = figures["diagnostics"]
    if args.json:
        print(json.dumps(figures), file=out)
    else:
        print(format_result(figures), file=out)
    return 0 if passes(result) else 1


def _run_offers_eval(args: argparse.Namespace, out: TextIO) -> int:
    from bench.eval_offers import OffersEvalOptions, format_offers_result, run_offers_eval

    options = OffersEvalOptions(
        vehicles=args.vehicles,
        days=args.days,
        seed=args.seed,
        broker=args.broker,
        speedup=args.speedup or None,
    )
    figures = asyncio.run(run_offers_eval(options, sys.stderr if args.json else out))
    print(
        json.dumps(figures, default=str) if args.json else format_offers_result(figures), file=out
    )
    offers = figures["offers"]
    latency = offers["trigger_to_delivery_s"]
    clean = not any(offers["audit"].values())
    # No position offer at all is a failure too: nothing was measured.
    fast = bool(latency["n"]) and latency["p99"] < MAX_OFFER_P99_S
    return 0 if clean and fast else 1


def passes(result: dict[str, object]) -> bool:
    types = result["types"]
    assert isinstance(types, dict)
    for figures in types.values():
        if not figures["failed"]:
            continue  # no failure of this type in the run: nothing to hold it to
        if (
            (figures["precision"] or 0) < MIN_PRECISION
            or (figures["recall"] or 0) < MIN_RECALL
            or (figures["median_lead_days"] or 0) < MIN_MEDIAN_LEAD_DAYS
        ):
            return False
    rate = result["false_per_1000_vehicle_days"]
    assert isinstance(rate, float | int)
    return rate < MAX_FALSE_PER_1000_VEHICLE_DAYS


def format_result(figures: dict[str, object]) -> str:
    result = figures["diagnostics"]
    assert isinstance(result, dict)

    def fmt(value: object, pattern: str) -> str:
        return "-" if value is None else format(value, pattern)

    lines = [
        f"diagnostics eval: {figures['vehicles']} vehicles x {figures['days']:g} days, "
        f"seed {figures['seed']}; {figures['stored_samples']:,} samples stored "
        f"(lost {figures['lost_samples']:,}); {result['trend_passes']} trend passes in "
        f"{result['trend_seconds']} s; stream batches dropped {result['stream_dropped_batches']}",
        "",
        f"| {'type':<32} | faults | failed | alerts | false | precision | recall | "
        "median lead (d) | p10 lead (d) |",
        f"|{'-' * 34}|--------|--------|--------|-------|-----------|--------|"
        "-----------------|--------------|",
    ]
    for name, t in result["types"].items():
        lines.append(
            f"| {name:<32} | {t['faults']:>6} | {t['failed']:>6} | {t['alerts']:>6} | "
            f"{t['false_alerts']:>5} | {fmt(t['precision'], '.3f'):>9} | "
            f"{fmt(t['recall'], '.3f'):>6} | {fmt(t['median_lead_days'], '.1f'):>15} | "
            f"{fmt(t['p10_lead_days'], '.1f'):>12} |"
        )
    lines += [
        "",
        f"false alerts: {result['false_alerts']} = "
        f"{result['false_per_1000_vehicle_days']:.3f} per 1,000 vehicle-days",
        f"all alerts by type: {result['alerts_by_type']}",
    ]
    if "chart" in figures:
        lines.append(f"chart: {figures['chart']}")
    return "\n".join(lines)
