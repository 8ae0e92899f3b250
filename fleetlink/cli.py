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
from fleetlink.cli_eval import add_eval_command, run_eval_command
from fleetlink.logs import configure_logging
from fleetlink.settings import ROLES, FleetLinkSettings
from ota.commands import add_ota_commands

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
        "--mqtt-tls-port",
        type=_port,
        default=None,
        help="also listen for mutual-TLS cars (certificates from the fleet CA), e.g. 8883",
    )
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
        "Mosquitto; the stream rules run beside each). api: the HTTP API "
        "(FLEETLINK_API_ADMIN_TOKEN required). diagnostics: the trend pass and outbox "
        "housekeeping. notify: notifications (FLEETLINK_MQTT_URL with a commander account for "
        "in-car delivery). ota: TUF metadata refresh.",
    )
    serve.add_argument("role", choices=ROLES)

    commands.add_parser(
        "migrate", help="apply database migrations to FLEETLINK_DATABASE_URL and exit"
    )

    _add_simulate_command(commands)
    add_eval_command(commands)
    _add_broker_commands(commands)
    _add_vehicle_commands(commands)
    _add_bench_commands(commands)
    add_ota_commands(commands)
    return parser


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return number


def _add_simulate_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="run simulated vehicles against a broker",
        description="Drive simulated vehicles, each with its own MQTT connection, against "
        "FLEETLINK_MQTT_URL (or --mqtt-url). Credentials come from --fleet-file (written by "
        "`fleetlink up`); vehicles missing from it are registered when FLEETLINK_DATABASE_URL "
        "is set. Time: real time by default; --speedup K runs simulated time K times faster; "
        "--days D backfills the last D days as fast as the backend accepts (true historical "
        "timestamps) and exits when it reaches the present; --days D --speedup K replays them "
        "at most K times faster. A --days window is clamped to start 1 hour inside ingest's "
        "retention (--retention-days), whose older samples ingest would refuse.",
    )
    simulate.add_argument("--vehicles", type=_positive, default=runtime.DEFAULT_VEHICLES)
    simulate.add_argument("--seed", type=int, default=runtime.DEFAULT_SEED)
    simulate.add_argument("--mqtt-url", default=None, help="e.g. mqtt://127.0.0.1:1883")
    simulate.add_argument(
        "--fleet-file", type=Path, default=runtime.DEFAULT_DATA_DIR / runtime.FLEET_FILE
    )
    simulate.add_argument(
        "--seconds",
        type=float,
        default=0,
        help="stop after this many wall-clock seconds (default: until Ctrl-C, or the end of "
        "a --days run)",
    )
    simulate.add_argument(
        "--speedup", type=_positive_float, default=None, help="simulated seconds per wall second"
    )
    simulate.add_argument(
        "--days", type=_positive_float, default=None, help="start this many days ago"
    )
    simulate.add_argument(
        "--start",
        default=None,
        help="with --days: pin the start (ISO 8601 with zone, or epoch ms) for reproducible "
        "timestamps",
    )
    simulate.add_argument(
        "--retention-days",
        type=_positive_float,
        default=30.0,
        help="ingest's retention (FLEETLINK_INGEST_RETENTION_DAYS, default %(default)s)",
    )
    simulate.add_argument(
        "--sample-interval",
        type=_positive_float,
        default=None,
        help="simulated seconds between a driving car's samples (default 1; 15 with --days "
        "or --speedup >= 10)",
    )
    simulate.add_argument(
        "--parked-sample-interval",
        type=_positive_float,
        default=None,
        help="simulated seconds between a parked car's samples (default 1; 600 with --days "
        "or --speedup >= 10)",
    )
    simulate.add_argument(
        "--publish-interval",
        type=_positive_float,
        default=5.0,
        help="wall seconds between a car's telemetry messages (default 5; sooner when 40 "
        "samples wait)",
    )
    simulate.add_argument(
        "--faults",
        default="none",
        help="fault plan: none (default), default (a seeded plan), or a JSON-lines PATH",
    )
    simulate.add_argument(
        "--ground-truth",
        type=Path,
        default=None,
        metavar="FILE.jsonl",
        help="write every fault onset and threshold crossing, as it happens",
    )
    simulate.add_argument(
        "--outages",
        choices=("none", "urban"),
        default="none",
        help="connectivity loss: urban = tunnels, parking garages, dead zones (seeded)",
    )
    simulate.add_argument(
        "--connect-rate",
        type=_positive_float,
        default=200.0,
        help="fleet-wide connects per second, to spare the broker a connect storm "
        "(default %(default)s)",
    )
    simulate.add_argument(
        "--stop-flush-seconds",
        type=_positive_float,
        default=15.0,
        help="on Ctrl-C/SIGTERM, how long the cars may flush their backlog (default %(default)s)",
    )
    simulate.add_argument(
        "--summary-json", type=Path, default=None, help="also write the summary as JSON here"
    )


def _add_broker_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    broker = commands.add_parser("broker", help="production broker configuration")
    broker_commands = broker.add_subparsers(dest="broker_command", required=True, metavar="COMMAND")
    mosquitto = broker_commands.add_parser(
        "mosquitto-config",
        help="write (and with --watch keep in sync) a Mosquitto configuration",
        description="Write mosquitto.conf, the password file (service accounts and every "
        "admitted vehicle from FLEETLINK_DATABASE_URL), the ACL, and the TLS files (fleet CA, "
        "server certificate, CRL) into --out. Start Mosquitto with `mosquitto -c "
        "DIR/mosquitto.conf`; after changes reload it with `kill -HUP $(cat DIR/mosquitto.pid)`, "
        "or run with --watch, which rewrites the files and reloads Mosquitto whenever a vehicle "
        "is added, rotated or revoked.",
    )
    mosquitto.add_argument("--out", type=Path, required=True, help="configuration directory")
    mosquitto.add_argument(
        "--watch", action="store_true", help="stay running and keep the broker in sync"
    )
    mosquitto.add_argument(
        "--bind", default="127.0.0.1", help="listen address (default %(default)s)"
    )
    mosquitto.add_argument("--mqtt-port", type=_port, default=1883, help="default %(default)s")
    tls = mosquitto.add_mutually_exclusive_group()
    tls.add_argument(
        "--tls-port", type=_port, default=8883, help="mutual-TLS listener (default %(default)s)"
    )
    tls.add_argument("--no-tls", action="store_true", help="password listener only")
    mosquitto.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="NAME:ROLE[+ROLE]",
        help="a backend service account, e.g. svc-ingest:ingest (roles: ingest, commander, "
        "presence); repeatable; secrets are generated once and kept in DIR/services.json",
    )
    mosquitto.add_argument(
        "--hostname",
        action="append",
        default=[],
        help="DNS name of the broker for the server certificate; repeatable",
    )
    mosquitto.add_argument(
        "--ca-dir", type=Path, default=None, help="fleet CA directory (default DIR/ca)"
    )
    mosquitto.add_argument(
        "--mosquitto-user",
        default=None,
        help="account Mosquitto drops to when started as root (its own default: mosquitto)",
    )


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


def _add_vehicle_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    vehicles = commands.add_parser("vehicles", help="manage the vehicle registry")
    actions = vehicles.add_subparsers(dest="vehicles_command", required=True, metavar="ACTION")
    importer = actions.add_parser(
        "import",
        help="register vehicles in bulk from CSV (FLEETLINK_DATABASE_URL)",
        description="Register every valid row of FILE (columns vin,brand,model,model_year,"
        "powertrain[,ecus], ECUs as id:hardware:software;...). Bad rows are reported by line, "
        "known VINs skipped. The new credentials are written to --out (mode 0600).",
    )
    importer.add_argument("file", type=Path, help="CSV file with a header row")
    importer.add_argument(
        "--out", type=Path, required=True, help="where to write vin,username,password (new file)"
    )


def _add_bench_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser("bench", help="benchmarks (see bench/README.md)")
    benchmarks = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    ingest = benchmarks.add_parser(
        "ingest",
        help="MQTT -> ingest -> PostgreSQL under a realistic load, against raw COPY",
        description="Start PostgreSQL (embedded, fsync off), a broker (Mosquitto when installed, "
        "else amqtt) and the ingest worker; drive N simulated cars from a separate process, each "
        "sampling its ~40 signals at --sample-hz and uploading them every --upload-interval-s "
        "seconds in one QoS 1 message (defaults: 6250 cars, 10 Hz, every 5 s: about 2.5 million "
        "values/s); then report committed values/s, the raw asyncpg COPY rate of the same rows "
        "into the same tables, their ratio, lost and duplicated values counted from the "
        "database, publish-to-commit latency and peak RSS.",
    )
    # 6250 = bench.ingest.DEFAULT_VEHICLES (not imported here: it would slow every command).
    _add_bench_load_arguments(ingest, vehicles=6250, seconds=30.0, seconds_help="publishing time")
    ingest.add_argument(
        "--sample-hz",
        type=_positive_float,
        default=10.0,
        help="samples of every signal per car and second; 1000 / rate must be whole "
        "milliseconds (default %(default)g)",
    )
    ingest.add_argument(
        "--upload-interval-s",
        type=_positive_float,
        default=5.0,
        help="seconds between two messages of a car, which holds the samples of that interval "
        "(default %(default)g; --sample-hz 5 --upload-interval-s 1 is the earlier shape)",
    )
    ingest.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="ingest workers; above 1 they run as processes on one MQTT 5 shared subscription, "
        "as production scales `serve ingest` out (default: 2 with Mosquitto; 1, in this "
        "process, with amqtt)",
    )
    _add_bench_simulate(benchmarks)
    ota = benchmarks.add_parser(
        "ota",
        help="must-show 2 of issue 9: a campaign to N cars in waves, 2 %% vs 20 %% failures",
        description="Start PostgreSQL, the broker, the API (image repository, director) and "
        "the rollout scheduler on 127.0.0.1; N simulated cars with OTA clients; one campaign "
        "in waves with 2 % injected install failures (completes) and again with 20 % (halts "
        "itself in its first wave). Prints the status counts; exit 1 if either does not.",
    )
    ota.add_argument("--vehicles", type=_positive, default=500, help="default %(default)s")
    ota.add_argument("--seed", type=int, default=1, help="default %(default)s")
    ota.add_argument("--json", action="store_true", help="one JSON object (progress on stderr)")
    _add_bench_diagnostics(benchmarks)


def _add_bench_load_arguments(
    parser: argparse.ArgumentParser, *, vehicles: int, seconds: float, seconds_help: str
) -> None:
    """The options every load benchmark takes: how many cars, how long, which broker."""
    parser.add_argument(
        "--vehicles", type=_positive, default=vehicles, help="simulated cars (default %(default)s)"
    )
    parser.add_argument(
        "--seconds", type=float, default=seconds, help=f"{seconds_help} (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=1, help="fleet seed (default %(default)s)")
    parser.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "amqtt"),
        default="auto",
        help="auto: Mosquitto when installed, else amqtt (default %(default)s)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object (progress goes to stderr)"
    )


def _add_bench_simulate(
    benchmarks: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    simulate = benchmarks.add_parser(
        "simulate",
        help="one `fleetlink simulate` process with N cars: connected, sent vs stored",
        description="Start PostgreSQL (embedded, fsync off), a broker (Mosquitto when "
        "installed, else amqtt) and ingest; run `fleetlink simulate --vehicles N --seconds S` "
        "as its own process; then count the samples stored (distinct VIN, ts) against the "
        "samples the simulator had acknowledged. Reports connect time, messages/s, the "
        "simulator's CPU and RSS, sent, stored and lost. Exit 1 if a car never connected or "
        "a sample was lost.",
    )
    _add_bench_load_arguments(
        simulate, vehicles=2000, seconds=120.0, seconds_help="simulating time"
    )


def _run_bench_simulate(args: argparse.Namespace, out: TextIO) -> int:
    import json

    from bench.simulate_scale import SimulateBenchOptions, format_table, run_simulate_bench

    options = SimulateBenchOptions(
        vehicles=args.vehicles, seconds=args.seconds, seed=args.seed, broker=args.broker
    )
    figures = asyncio.run(run_simulate_bench(options, sys.stderr if args.json else out))
    print(json.dumps(figures) if args.json else format_table(figures), file=out)
    return 0 if figures["lost_samples"] == 0 and figures["connected"] == args.vehicles else 1


def _add_bench_diagnostics(
    benchmarks: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    diagnostics = benchmarks.add_parser(
        "diagnostics",
        help="one trend pass (load_features + assess_fleet) against its numpy kernels",
        description="Start PostgreSQL (embedded, fsync off), store synthetic daily features "
        "for N vehicles x D days, then time a full trend pass (load_features + assess_fleet) "
        "and the same numpy kernels on the arrays already loaded; report both and their "
        "ratio. --refresh-vehicles N also times refresh_daily_features on one day of "
        "synthetic telemetry for N cars.",
    )
    diagnostics.add_argument(
        "--vehicles", type=_positive, default=10_000, help="vehicles (default %(default)s)"
    )
    diagnostics.add_argument("--days", type=int, default=30, help="days (default %(default)s)")
    diagnostics.add_argument("--seed", type=int, default=1, help="default %(default)s")
    diagnostics.add_argument(
        "--repeat", type=int, default=3, help="timed repetitions, best reported (default 3)"
    )
    diagnostics.add_argument(
        "--refresh-vehicles", type=_positive, default=0, help="also time a feature refresh"
    )
    diagnostics.add_argument(
        "--json", action="store_true", help="print one JSON object (progress goes to stderr)"
    )


def _run_bench_diagnostics(args: argparse.Namespace, out: TextIO) -> int:
    import json

    from bench.diagnostics import DiagnosticsBenchOptions, format_table, run_diagnostics_bench

    options = DiagnosticsBenchOptions(
        vehicles=args.vehicles,
        days=args.days,
        seed=args.seed,
        repeat=args.repeat,
        refresh_vehicles=args.refresh_vehicles,
    )
    figures = asyncio.run(run_diagnostics_bench(options, sys.stderr if args.json else out))
    print(json.dumps(figures) if args.json else format_table(figures), file=out)
    return 0


def _run_bench_command(args: argparse.Namespace, out: TextIO) -> int:
    import json

    from bench.ingest import IngestBenchOptions, format_table, run_ingest_bench

    if args.bench_command == "simulate":
        return _run_bench_simulate(args, out)
    if args.bench_command == "ota":
        from bench.ota_rollout import run_cli

        progress = sys.stderr if args.json else out
        return run_cli(
            vehicles=args.vehicles, seed=args.seed, as_json=args.json, out=out, progress=progress
        )
    if args.bench_command == "diagnostics":
        return _run_bench_diagnostics(args, out)
    assert args.bench_command == "ingest"
    options = IngestBenchOptions(
        vehicles=args.vehicles,
        seconds=args.seconds,
        seed=args.seed,
        broker=args.broker,
        sample_hz=args.sample_hz,
        upload_interval_s=args.upload_interval_s,
        workers=args.workers,
    )
    figures = asyncio.run(run_ingest_bench(options, sys.stderr if args.json else out))
    print(json.dumps(figures) if args.json else format_table(figures), file=out)
    return 0


def _dispatch(args: argparse.Namespace, settings: FleetLinkSettings, out: TextIO) -> int:
    if args.command == "up":
        options = runtime.UpOptions(
            data_dir=args.data_dir,
            vehicles=args.vehicles,
            seed=args.seed,
            mqtt_port=args.mqtt_port,
            api_port=args.api_port,
            db_port=args.db_port,
            mqtt_tls_port=args.mqtt_tls_port,
        )
        asyncio.run(runtime.run_up(options, out))
        return 0
    if args.command == "serve":
        from fleetlink import roles

        if args.role == "api":
            roles.serve_api(settings, out)
            return 0
        if args.role == "ingest":
            asyncio.run(_until_signal(lambda stop: roles.serve_ingest(settings, stop)))
            return 0
        asyncio.run(_until_signal(lambda stop: roles.serve_background(args.role, settings, stop)))
        return 0
    if args.command == "migrate":
        from fleetlink import roles

        applied = asyncio.run(roles.run_migrations(settings))
        print(f"{applied} migrations applied", file=out)
        return 0
    if args.command == "simulate":
        from fleetlink import simulate

        return asyncio.run(simulate.run_simulate(args, settings, out))
    if args.command == "broker":
        return _run_broker_command(args, settings, out)
    if args.command == "vehicles":
        from fleetlink.roles import require_database_url
        from fleetlink.vehicle_import import run_import

        return asyncio.run(run_import(require_database_url(settings), args.file, args.out, out))
    if args.command == "eval":
        return run_eval_command(args, out)
    if args.command == "bench":
        return _run_bench_command(args, out)
    if args.command == "ota":
        from fleetlink.database import create_pool
        from fleetlink.roles import require_database_url
        from ota.commands import run_ota_command
        from ota.settings import OtaSettings

        url = require_database_url(settings)
        return asyncio.run(
            run_ota_command(
                args, settings=OtaSettings(), open_pool=lambda: create_pool(url), out=out
            )
        )
    raise AssertionError(args.command)


def _run_broker_command(args: argparse.Namespace, settings: FleetLinkSettings, out: TextIO) -> int:
    from fleetlink import mosquitto_sync
    from fleetlink.roles import require_database_url

    assert args.broker_command == "mosquitto-config"
    options = mosquitto_sync.MosquittoOptions(
        bind=args.bind,
        mqtt_port=args.mqtt_port,
        tls_port=None if args.no_tls else args.tls_port,
        services=dict(mosquitto_sync.parse_service(spec) for spec in args.service),
        hostnames=tuple(args.hostname),
        ca_dir=args.ca_dir,
        run_as_user=args.mosquitto_user,
    )
    database_url = require_database_url(settings)

    async def run() -> None:
        stop = None
        if args.watch:
            stop = asyncio.Event()
            runtime.install_stop_signals(stop)
        await mosquitto_sync.run_mosquitto_config(database_url, args.out, options, out, stop=stop)

    asyncio.run(run())
    return 0


async def _until_signal(run: object) -> None:
    stop = asyncio.Event()
    runtime.install_stop_signals(stop)
    assert callable(run)
    with contextlib.suppress(asyncio.CancelledError):
        await run(stop)
