"""Print the signal catalogue of ``protocol/catalogue.py`` as the markdown table of protocol.md.

    python docs/gen_signal_table.py            # print the table
    python docs/gen_signal_table.py --write    # replace it in docs/protocol.md between the markers

The table in ``docs/protocol.md`` is generated, never edited by hand;
``tests/protocol/test_protocol_doc.py`` fails when it differs from the catalogue, so the contract
document cannot drift from the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_DOC = REPO_ROOT / "docs" / "protocol.md"
START_MARKER = "<!-- signals:start -->"
END_MARKER = "<!-- signals:end -->"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    # Whole numbers without ".0" and without exponent notation (5000000, not 5e+06).
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render_signal_table() -> str:
    """The markdown table, one row per signal in catalogue order, ending in a newline."""
    from protocol.catalogue import CATALOGUE, Powertrain

    lines = [
        "| Signal | Type | Unit | Min | Max | ICE | BEV | PHEV | HEV | Description |",
        "|---|---|---|---:|---:|:-:|:-:|:-:|:-:|---|",
    ]
    for spec in CATALOGUE.values():
        marks = ["x" if p in spec.powertrains else "" for p in Powertrain]
        description = spec.description
        if spec.allowed is not None:
            description += " Allowed: " + ", ".join(f"`{v}`" for v in spec.allowed) + "."
        cells = [
            f"`{spec.name}`",
            spec.datatype.value,
            spec.unit or "",
            _number(spec.min),
            _number(spec.max),
            *marks,
            description.replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def embedded_signal_table(document: str) -> str:
    """The table currently between the markers of ``document``."""
    start = document.index(START_MARKER) + len(START_MARKER)
    end = document.index(END_MARKER, start)
    return document[start:end].strip("\n") + "\n"


def replace_signal_table(document: str, table: str) -> str:
    start = document.index(START_MARKER) + len(START_MARKER)
    end = document.index(END_MARKER, start)
    return f"{document[:start]}\n{table}{document[end:]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help=f"update {PROTOCOL_DOC.name}")
    args = parser.parse_args(argv)
    # Run as a script, sys.path[0] is docs/; make the repository's packages importable.
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    table = render_signal_table()
    if args.write:
        document = PROTOCOL_DOC.read_text(encoding="utf-8")
        PROTOCOL_DOC.write_text(replace_signal_table(document, table), encoding="utf-8")
    else:
        sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
