"""The ``fleetlink`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from fleetlink import runtime
from fleetlink.logs import configure_logging
from fleetlink.settings import FleetLinkSettings

EXIT_CONFIG = 2


def _positive(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {number}")
    return number


def _port(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetlink",
        description="FleetLink: an open connected-vehicle backend (MQTT telemetry, "
        "time-series store, API).",
        epilog="Configuration comes from FLEETLINK_* environment variables; see the README.",
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING, ERROR")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="run the whole stack embedded, with a simulated fleet",
        description="Start PostgreSQL (embedded), the MQTT broker, ingest, the API and a "
        "simulated fleet in one process. Data persists in --data-dir; Ctrl-C stops cleanly.",
    )
    up.add_argument(
        "--vehicles",
        type=_positive,
        default=runtime.DEFAULT_VEHICLES,
        help="simulated vehicles (default %(default)s; 0 for none)",
    )
    up.add_argument(
        "--data-dir",
        type=Path,
        default=runtime.DEFAULT_DATA_DIR,
        help="where the database and credentials live (default %(default)s)",
    )
    up.add_argument("--mqtt-port", type=_port, default=1883, help="default %(default)s")
    up.add_argument("--api-port", type=_port, default=8000, help="default %(default)s")
    up.add_argument(
        "--db-port", type=_port, default=0, help="embedded PostgreSQL port (default: any free port)"
    )
    up.add_argument(
        "--seed",
        type=int,
        default=runtime.DEFAULT_SEED,
        help="seed of the simulated fleet (default %(default)s)",
    )

    serve = commands.add_parser(
        "serve",
        help="run one role against FLEETLINK_DATABASE_URL and FLEETLINK_MQTT_URL (production)",
        description="Run one role in this process. ingest: MQTT -> PostgreSQL (run N of them "
        "with FLEETLINK_INGEST_SHARE_GROUP=ingest and FLEETLINK_INGEST_MQTT_VERSION=5 on "
        "Mosquitto). api: the HTTP API (FLEETLINK_API_ADMIN_TOKEN required).",
    )
    serve.add_argument("role", choices=("ingest", "api"))

    commands.add_parser(
        "migrate", help="apply database migrations to FLEETLINK_DATABASE_URL and exit"
    )

    simulate = commands.add_parser(
        "simulate",
        help="run simulated vehicles against a broker",
        description="Drive simulated vehicles against FLEETLINK_MQTT_URL (or --mqtt-url). "
        "Credentials come from --fleet-file (written by `fleetlink up`); vehicles missing "
        "from it are registered when FLEETLINK_DATABASE_URL is set.",
    )
    simulate.add_argument("--vehicles", type=_positive, default=runtime.DEFAULT_VEHICLES)
    simulate.add_argument("--seed", type=int, default=runtime.DEFAULT_SEED)
    simulate.add_argument("--mqtt-url", default=None, help="e.g. mqtt://127.0.0.1:1883")
    simulate.add_argument(
        "--fleet-file", type=Path, default=runtime.DEFAULT_DATA_DIR / runtime.FLEET_FILE
    )
    simulate.add_argument(
        "--seconds", type=float, default=0, help="stop after this long (default: run until Ctrl-C)"
    )
    simulate.add_argument(
        "--publish-interval",
        type=float,
        default=5.0,
        help="seconds between a car's telemetry messages (default 5)",
    )
    return parser


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = FleetLinkSettings()
    except ValidationError as exc:
        print(f"fleetlink: invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(args.log_level or settings.log_level)
    try:
        return _dispatch(args, settings, out)
    except KeyboardInterrupt:
        return 130
    except (ValidationError, ValueError, RuntimeError) as exc:
        code = getattr(exc, "code", None)
        prefix = f"[{code}] " if code else ""
        print(f"fleetlink: {prefix}{exc}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, settings: FleetLinkSettings, out: TextIO) -> int:
    if args.command == "up":
        options = runtime.UpOptions(
            data_dir=args.data_dir,
            vehicles=args.vehicles,
            seed=args.seed,
            mqtt_port=args.mqtt_port,
            api_port=args.api_port,
            db_port=args.db_port,
        )
        asyncio.run(runtime.run_up(options, out))
        return 0
    if args.command == "serve":
        from fleetlink import roles

        if args.role == "api":
            roles.serve_api(settings, out)
            return 0
        asyncio.run(_until_signal(lambda stop: roles.serve_ingest(settings, stop)))
        return 0
    if args.command == "migrate":
        from fleetlink import roles

        applied = asyncio.run(roles.run_migrations(settings))
        print(f"{applied} migrations applied", file=out)
        return 0
    if args.command == "simulate":
        from fleetlink import simulate

        return asyncio.run(simulate.run_simulate(args, settings, out))
    raise AssertionError(args.command)


async def _until_signal(run: object) -> None:
    stop = asyncio.Event()
    runtime.install_stop_signals(stop)
    assert callable(run)
    with contextlib.suppress(asyncio.CancelledError):
        await run(stop)
