"""The ``fleetlink`` command: help texts, configuration errors, and the fleet file."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fleetlink.cli import build_parser
from fleetlink.fleet_file import FleetFile

FLEETLINK = Path(sys.executable).parent / "fleetlink"
SUBPROCESS_TIMEOUT_S = 30


def run_fleetlink(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with an environment free of FLEETLINK_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLEETLINK_")}
    return subprocess.run(
        [str(FLEETLINK), *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )


def help_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


# -- help -----------------------------------------------------------------------------------------


def test_console_script_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_fleetlink("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for word in ("up", "serve", "migrate", "simulate", "--log-level", "FLEETLINK_"):
        assert word in result.stdout, word


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        (
            ["up"],
            ["--vehicles", "--data-dir", "--mqtt-port", "--api-port", "--db-port", "--seed"],
        ),
        (["serve"], ["ingest", "api", "FLEETLINK_API_ADMIN_TOKEN"]),
        (["migrate"], ["migrate"]),
        (
            ["simulate"],
            [
                "--vehicles",
                "--seed",
                "--mqtt-url",
                "--fleet-file",
                "--seconds",
                "--publish-interval",
            ],
        ),
    ],
)
def test_each_subcommand_explains_its_options(
    capsys: pytest.CaptureFixture[str], command: list[str], mentions: list[str]
) -> None:
    text = help_text(capsys, *command)
    assert text.startswith(f"usage: fleetlink {command[0]}")
    for word in mentions:
        assert word in text, word


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["serve", "diagnostics-and-more"],
        ["up", "--vehicles", "-1"],
        ["up", "--mqtt-port", "70000"],
        ["up", "--api-port", "http"],
    ],
)
def test_bad_arguments_exit_2_with_usage(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    assert "usage: fleetlink" in capsys.readouterr().err


def test_defaults_of_up() -> None:
    args = build_parser().parse_args(["up"])
    assert (args.vehicles, args.mqtt_port, args.api_port) == (25, 1883, 8000)
    assert args.data_dir == Path(".fleetlink")


# -- configuration errors (in a subprocess: they must exit, not hang) ----------------------------


@pytest.mark.parametrize("argv", [["serve", "ingest"], ["serve", "api"], ["migrate"]])
def test_production_roles_without_a_database_url_exit_1(tmp_path: Path, argv: list[str]) -> None:
    env = {"FLEETLINK_API_ADMIN_TOKEN": "x" * 40} if argv[-1] == "api" else None
    result = run_fleetlink(*argv, cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    assert "FLEETLINK_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_settings_exit_2_naming_the_setting(tmp_path: Path) -> None:
    result = run_fleetlink("migrate", cwd=tmp_path, env={"FLEETLINK_LOG_LEVEL": "LOUD"})
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr
    assert "log_level" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_without_credentials_or_database_exits_1_and_says_what_to_do(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere" / "fleet.json"
    result = run_fleetlink(
        "simulate",
        "--vehicles",
        "3",
        "--fleet-file",
        str(missing),
        "--mqtt-url",
        "mqtt://127.0.0.1:1",
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    message = result.stderr
    assert "3 of 3 vehicles have no credentials" in message
    assert str(missing) in message
    assert "fleetlink up --vehicles 3" in message
    assert "FLEETLINK_DATABASE_URL" in message
    assert "Traceback" not in message


# -- the fleet file -------------------------------------------------------------------------------


def test_fleet_file_round_trip_is_private_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    fleet = FleetFile(seed=7, passwords={"WVWZZZ1JZXW000001": "s3cret", "WBA3A5C50CF256985": "x"})
    fleet.save(path)

    assert FleetFile.load(path) == fleet
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["fleet.json"]  # no temporary left behind

    fleet.passwords["1HGCM82633A004352"] = "new"
    fleet.save(path)
    assert FleetFile.load(path) == fleet
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_fleet_file_is_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    previous = os.umask(0)
    try:
        FleetFile(seed=1, passwords={"WVWZZZ1JZXW000001": "s3cret"}).save(path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_loading_a_missing_fleet_file_gives_none(tmp_path: Path) -> None:
    assert FleetFile.load(tmp_path / "absent.json") is None
