"""Bulk provisioning from CSV: every row judged, good rows registered, credentials kept safe."""

from __future__ import annotations

import csv
import io
import stat
from pathlib import Path

import asyncpg
import pytest

from api.vehicle_registry import VehicleRegistry
from fleetlink.vehicle_import import (
    CredentialsFile,
    ImportFileError,
    import_vehicles,
    parse_csv,
)

GOOD = "WVWZZZ1JZXW000001"
CSV = f"""vin,brand,model,model_year,powertrain,ecus
{GOOD},Volkswagen,Golf,2021,ice,gateway:GW-1:3.2.1;tcu:TCU-2:1.0.0
WBA3A5C50CF256985,BMW,i4,2024,BEV,
WVWZZZ1JZXW0000I1,Volkswagen,Golf,2021,ice,
WVWZZZ1JZXW000003,Volkswagen,Golf,1899,ice,
WVWZZZ1JZXW000004,Volkswagen,Golf,2021,diesel,
WVWZZZ1JZXW000005,Volkswagen,Golf,2021,ice,gateway-only
{GOOD},Volkswagen,Golf,2021,ice,
"""


def test_parse_reports_each_bad_row_with_its_line() -> None:
    parsed = parse_csv(CSV)
    assert [spec.vin for _, spec in parsed.specs] == [GOOD, "WBA3A5C50CF256985"]
    assert parsed.specs[0][1].ecus[1].hardware_id == "TCU-2"
    assert parsed.specs[1][1].powertrain.value == "bev"  # case-insensitive
    lines = {e.line: e.message for e in parsed.errors}
    assert sorted(lines) == [4, 5, 6, 7, 8]
    assert "vin" in lines[4]
    assert "model_year" in lines[5]
    assert "powertrain" in lines[6]
    assert "ecu_id:hardware_id:software_version" in lines[7]
    assert "repeats line 2" in lines[8]


def test_a_file_without_the_required_columns_is_refused() -> None:
    with pytest.raises(ImportFileError, match="missing columns: powertrain"):
        parse_csv("vin,brand,model,model_year\n")


async def test_import_registers_new_and_skips_known(pool: asyncpg.Pool, tmp_path: Path) -> None:
    registry = VehicleRegistry(pool)
    specs = parse_csv(CSV).specs
    first = await import_vehicles(registry, specs[:1])
    result = await import_vehicles(registry, specs, progress=io.StringIO())
    assert [c.username for c in first.registered] == [GOOD]
    assert [c.username for c in result.registered] == ["WBA3A5C50CF256985"]
    assert [s.line for s in result.skipped] == [2]
    # The credentials work: the broker's verifier accepts them.
    assert await registry.verify(GOOD, first.registered[0].password) is not None
    ecus = await pool.fetchval("SELECT count(*) FROM vehicle_ecus WHERE vin = $1", GOOD)
    assert ecus == 2

    out = tmp_path / "credentials.csv"
    credentials_file = CredentialsFile(out)
    for credentials in result.registered:
        credentials_file.add(credentials)
    credentials_file.close()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["vin"] == "WBA3A5C50CF256985" and len(rows[0]["password"]) > 30
    with pytest.raises(FileExistsError):  # never overwrite earlier secrets
        CredentialsFile(out)


class DyingRegistry:
    """Registers two vehicles, then the database goes away."""

    def __init__(self) -> None:
        self.calls = 0

    async def register(self, spec):
        from api.vehicle_registry import Credentials

        self.calls += 1
        if self.calls > 2:
            raise ConnectionResetError("database gone (test)")
        return Credentials(spec.vin, f"secret-{self.calls}")


async def test_an_import_that_dies_half_way_keeps_the_secrets_it_issued(tmp_path: Path) -> None:
    specs = parse_csv(
        "vin,brand,model,model_year,powertrain\n"
        + "".join(f"WVWZZZ1JZXW00000{i},VW,Golf,2021,ice\n" for i in range(1, 6))
    ).specs
    out = CredentialsFile(tmp_path / "credentials.csv")
    registry = DyingRegistry()
    with pytest.raises(ConnectionResetError):
        await import_vehicles(registry, specs, on_registered=out.add)  # type: ignore[arg-type]
    out.close()
    rows = list(csv.DictReader((tmp_path / "credentials.csv").open()))
    assert sorted(r["password"] for r in rows) == ["secret-1", "secret-2"]
