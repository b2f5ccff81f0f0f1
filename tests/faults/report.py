"""Render the fault matrix's last run (`tests/faults/last_run.json`) as a Markdown table.

    python tests/faults/report.py            # the table
    python tests/faults/report.py --check    # the table; exit 1 if any case deviated

One row per fault, one column per method; a cell reads "`ClassName` ×N" or "ok ×N" (N =
attempts), split by mode where the modes disagree, and marked ✗ where a case deviated from
its documented outcome (the note column then says how).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LAST_RUN = Path(__file__).with_name("last_run.json")
METHODS = ("GET", "POST+key", "POST no key")
_KEY = re.compile(r"'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'")


def _result(outcome: str, attempts: Any) -> str:
    shown = "ok" if outcome == "ok" else f"`{outcome}`"
    return f"{shown} ×{attempts if attempts is not None else '?'}"


def _cell(cases: list[dict[str, Any]]) -> str:
    if not cases:
        return "—"
    by_result: dict[str, list[str]] = {}
    for case in cases:
        by_result.setdefault(_result(case["outcome"], case["attempts"]), []).append(case["mode"])
    if len(by_result) == 1:
        text = next(iter(by_result))
    else:
        text = "; ".join(f"{result} ({', '.join(modes)})" for result, modes in by_result.items())
    if all(case.get("expected_ok", False) for case in cases):
        return text
    first = cases[0]
    documented = _result(first["expected_outcome"], first["expected_attempts"])
    return f"{text} ✗" + ("" if documented in by_result else f" (documented {documented})")


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def render(data: dict[str, Any]) -> str:
    cases: list[dict[str, Any]] = data.get("cases", [])
    notes: dict[str, str] = data.get("notes", {})
    faults = _unique([*notes, *(case["fault"] for case in cases)])
    lines = [
        "| fault | GET | POST+key | POST no key | note |",
        "|---|---|---|---|---|",
    ]
    for fault in faults:
        row = [case for case in cases if case["fault"] == fault]
        if not row:
            continue
        cells = [_cell([c for c in row if c["method"] == method]) for method in METHODS]
        note = notes.get(fault, "").replace("|", "\\|")
        problems = _unique(
            _KEY.sub("'<key>'", problem) for case in row for problem in case.get("problems", [])
        )
        if problems:
            note += " — **deviates:** " + "; ".join(problems).replace("|", "\\|")
        lines.append(f"| `{fault}` | {' | '.join(cells)} | {note} |")
    passed = sum(1 for case in cases if case.get("expected_ok"))
    attempts = sum(case["attempts"] or case.get("server_attempts") or 0 for case in cases)
    wall = max((case["wall_ms"] for case in cases), default=0)
    lines.append("")
    lines.append(
        f"**Totals:** {len(cases)} cases, {passed} passed, {len(cases) - passed} deviated, "
        f"{attempts} attempts, max wall {wall:g} ms."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if any case deviated")
    parser.add_argument("--file", type=Path, default=LAST_RUN, help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.file}: {exc}; run the matrix first", file=sys.stderr)
        return 2
    print(render(data))
    if args.check:
        deviated = [case for case in data.get("cases", []) if not case.get("expected_ok")]
        for case in deviated:
            print(
                f"deviated: {case['fault']} / {case['mode']} / {case['method']}: "
                + "; ".join(case.get("problems", [])),
                file=sys.stderr,
            )
        if deviated or not data.get("cases"):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
