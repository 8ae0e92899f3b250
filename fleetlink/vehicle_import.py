"""``fleetlink vehicles import FILE``: bulk provisioning from CSV.

Input columns (header required): ``vin,brand,model,model_year,powertrain[,ecus]`` where ``ecus``
is ``ecu_id:hardware_id:software_version`` entries separated by ``;``. Every row is checked
before anything is written; valid rows are registered, bad ones reported with their line number,
already registered VINs skipped. The new credentials go to ``--out`` (mode 0600), never to the
terminal.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from api.schemas import VehicleCreate
from api.vehicle_registry import (
    Credentials,
    Ecu,
    VehicleAlreadyRegisteredError,
    VehicleRegistry,
    VehicleSpec,
)
from protocol.catalogue import Powertrain
from protocol.vin import Vin

REQUIRED_COLUMNS = ("vin", "brand", "model", "model_year", "powertrain")
MAX_ROWS = 1_000_000
CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str


@dataclass
class ParsedImport:
    specs: list[tuple[int, VehicleSpec]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


class ImportFileError(ValueError):
    code = "import_file_invalid"


def _ecus(text: str) -> list[dict[str, str]]:
    ecus = []
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        parts = entry.split(":")
        if len(parts) != 3:
            raise ValueError(f"ECU {entry!r} is not ecu_id:hardware_id:software_version")
        ecus.append(dict(zip(("ecu_id", "hardware_id", "software_version"), parts, strict=True)))
    return ecus


def parse_csv(text: str) -> ParsedImport:
    """Pure: CSV text -> specs to register and per-line errors."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ImportFileError(
            f"missing columns: {', '.join(missing)} (header: {reader.fieldnames})"
        )
    parsed = ParsedImport()
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if len(parsed.specs) + len(parsed.errors) >= MAX_ROWS:
            raise ImportFileError(f"more than {MAX_ROWS} rows; split the file")
        try:
            body = VehicleCreate.model_validate(
                {
                    "vin": (row.get("vin") or "").strip(),
                    "brand": (row.get("brand") or "").strip(),
                    "model": (row.get("model") or "").strip(),
                    "model_year": (row.get("model_year") or "").strip(),
                    "powertrain": (row.get("powertrain") or "").strip().lower(),
                    "ecus": _ecus(row.get("ecus") or ""),
                }
            )
        except (ValidationError, ValueError) as exc:
            parsed.errors.append(RowError(line, _short(exc)))
            continue
        if body.vin in seen:
            parsed.errors.append(RowError(line, f"VIN {body.vin} repeats line {seen[body.vin]}"))
            continue
        seen[body.vin] = line
        ecus = tuple(Ecu(e.ecu_id, e.hardware_id, e.software_version) for e in body.ecus)
        spec = VehicleSpec(
            Vin(body.vin),
            body.brand,
            body.model,
            body.model_year,
            Powertrain(body.powertrain),
            ecus,
        )
        parsed.specs.append((line, spec))
    return parsed


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return str(exc)


@dataclass
class ImportResult:
    registered: list[Credentials] = field(default_factory=list)
    skipped: list[RowError] = field(default_factory=list)  # already registered
    errors: list[RowError] = field(default_factory=list)


async def import_vehicles(
    registry: VehicleRegistry,
    specs: Iterable[tuple[int, VehicleSpec]],
    *,
    progress: TextIO | None = None,
    on_registered: Callable[[Credentials], None] | None = None,
) -> ImportResult:
    """Register each spec; ``on_registered`` sees every new credential the moment it exists,
    so an import that dies half-way has still kept the secrets it issued."""
    result = ImportResult()
    pending = list(specs)
    semaphore = asyncio.Semaphore(CONCURRENCY)
    done = 0

    async def one(line: int, spec: VehicleSpec) -> None:
        nonlocal done
        async with semaphore:
            try:
                credentials = await registry.register(spec)
            except VehicleAlreadyRegisteredError:
                result.skipped.append(RowError(line, f"{spec.vin} is already registered"))
            else:
                result.registered.append(credentials)
                if on_registered is not None:
                    on_registered(credentials)
        done += 1
        if progress is not None and (done % 500 == 0 or done == len(pending)):
            print(f"\rregistered {done}/{len(pending)}", end="", file=progress, flush=True)

    await asyncio.gather(*(one(line, spec) for line, spec in pending))
    if progress is not None and pending:
        print(file=progress)
    result.registered.sort(key=lambda c: c.username)
    return result


class CredentialsFile:
    """``vin,username,password`` rows appended and fsynced one by one, mode 0600, never an
    existing file: a secret is on disk before the import goes on to the next vehicle."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._handle = os.fdopen(fd, "w", newline="")
        self._writer = csv.writer(self._handle)
        self._append(["vin", "username", "password"])

    def _append(self, row: list[str]) -> None:
        self._writer.writerow(row)
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def add(self, credentials: Credentials) -> None:
        self._append([credentials.username, credentials.username, credentials.password])

    def close(self) -> None:
        self._handle.close()


async def run_import(database_url: str, source: Path, out: Path, stream: TextIO) -> int:
    """The command: 0 when every row was registered or already known, 1 otherwise."""
    from fleetlink.database import create_pool

    if await asyncio.to_thread(out.exists):
        raise ImportFileError(f"{out} exists; credentials are never overwritten")
    parsed = parse_csv(await asyncio.to_thread(source.read_text, encoding="utf-8-sig"))
    for error in parsed.errors:
        print(f"{source}:{error.line}: {error.message}", file=stream)
    out_file = await asyncio.to_thread(CredentialsFile, out)
    pool = await create_pool(database_url, max_size=CONCURRENCY)
    try:
        registry = VehicleRegistry(pool)
        result = await import_vehicles(
            registry, parsed.specs, progress=stream, on_registered=out_file.add
        )
    finally:
        await pool.close()
        out_file.close()
    for skipped in result.skipped:
        print(f"{source}:{skipped.line}: skipped, {skipped.message}", file=stream)
    print(
        f"{len(result.registered)} registered (credentials in {out}), {len(result.skipped)} "
        f"already registered, {len(parsed.errors)} rejected",
        file=stream,
    )
    return 1 if parsed.errors else 0
