"""docs/protocol.md moves with the code: its signal table and limits match protocol/."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from protocol.catalogue import CATALOGUE
from protocol.messages import (
    MAX_SAMPLES_PER_MESSAGE,
    MAX_SIGNALS_PER_SAMPLE,
    CommandMessage,
    EventMessage,
    PresenceMessage,
    TelemetryMessage,
)
from protocol.topics import TopicKind

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "protocol.md"


def load_generator() -> ModuleType:
    # docs/ is not a package; load the script by path, exactly the file a maintainer runs.
    path = REPO_ROOT / "docs" / "gen_signal_table.py"
    spec = importlib.util.spec_from_file_location("gen_signal_table", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_signal_table_matches_catalogue(doc: str) -> None:
    gen = load_generator()
    embedded = gen.embedded_signal_table(doc)
    generated = gen.render_signal_table()
    assert embedded == generated, (
        "docs/protocol.md signal table is out of date; run: python docs/gen_signal_table.py --write"
    )


def test_generated_table_has_one_row_per_signal() -> None:
    table = load_generator().render_signal_table()
    rows = [line for line in table.splitlines() if line.startswith("| `Vehicle.")]
    assert [row.split("`")[1] for row in rows] == list(CATALOGUE)


def test_replace_is_idempotent(doc: str) -> None:
    gen = load_generator()
    table = gen.render_signal_table()
    once = gen.replace_signal_table(doc, table)
    assert gen.replace_signal_table(once, table) == once
    assert gen.embedded_signal_table(once) == table


def test_every_topic_kind_is_documented(doc: str) -> None:
    for kind in TopicKind:
        assert f"`v1/vehicles/{{VIN}}/{kind.value}`" in doc, kind


def test_limits_in_the_doc_match_the_models(doc: str) -> None:
    assert f"1 to {MAX_SAMPLES_PER_MESSAGE} samples" in doc
    assert f"at most {MAX_SIGNALS_PER_SAMPLE} entries" in doc


@pytest.mark.parametrize(
    "code",
    [
        "payload_too_large",
        "invalid_encoding",
        "malformed_json",
        "invalid_envelope",
        "invalid_sample",
        "timestamp_in_future",
        "timestamp_too_old",
        "wrong_type",
        "non_finite_value",
        "out_of_range",
        "not_allowed_value",
    ],
)
def test_every_dead_letter_code_is_documented(doc: str, code: str) -> None:
    assert f"| `{code}` |" in doc


def json_blocks(doc: str) -> list[object]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", doc, flags=re.S)]


def test_json_examples_are_valid_messages(doc: str) -> None:
    blocks = json_blocks(doc)
    assert len(blocks) >= 5
    seen = set()
    for block in blocks:
        assert isinstance(block, dict)
        if "id" in block and "seq" not in block:  # events carry a seq (command_ack has an id)
            CommandMessage.model_validate(block)
            seen.add("commands")
        elif "samples" in block:
            message = TelemetryMessage.model_validate(block)
            for sample in message.samples:
                for name, value in sample.signals.items():
                    spec = CATALOGUE.get(name)
                    assert spec is not None and spec.check(value) is None, (name, value)
            seen.add("telemetry")
        elif "state" in block:
            PresenceMessage.model_validate(block)
            seen.add("presence")
        elif "seq" in block:
            EventMessage.model_validate(block)
            seen.add("events")
    assert seen == {"telemetry", "presence", "events", "commands"}
