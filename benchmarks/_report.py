"""Turning sections into Markdown, JSON and the overhead chart."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import BARE, RETRIES, VARIANTS, Section, Table

__all__ = [
    "markdown",
    "plot",
    "section_markdown",
    "table_markdown",
    "targets",
    "targets_markdown",
    "write_json",
]

_COLOURS = {
    "bare": "#9e9e9e",
    "pass-through": "#bdbdbd",
    "httpx-resilience": "#1f77b4",
    "httpx-retries": "#ff7f0e",
    "httpx-resilience, budget=None": "#aec7e8",
}


def _cell(value: Any, fmt: str) -> str:
    if isinstance(value, bool):
        return "PASS" if value else "FAIL"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, int | float):
        return fmt.format(value)
    return str(value)


def table_markdown(table: Table) -> str:
    lines = [f"### {table.title}", ""]
    if table.note:
        lines += [table.note, ""]
    lines.append("| " + " | ".join(c.header for c in table.columns) + " |")
    lines.append(
        "|" + "|".join("---" if i < 2 else "---:" for i in range(len(table.columns))) + "|"
    )
    for record in table.records:
        cells = (_cell(record.get(c.key), c.fmt) for c in table.columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def section_markdown(section: Section) -> str:
    parts = [f"## {section.title}\n", f"_{section.seconds:.1f} s_\n"]
    parts += [table_markdown(table) for table in section.tables]
    return "\n".join(parts)


def targets(sections: Sequence[Section]) -> list[dict[str, Any]]:
    """Every record that carries a target, with the figure it was judged on."""
    found: list[dict[str, Any]] = []
    for section in sections:
        for table in section.tables:
            for record in table.records:
                if record.get("result") is None:
                    continue
                case = record.get("case") or record.get("outage") or record.get("statement")
                if "mode" in record and record.get("outage"):
                    case = f"{record['outage']} outage, {record['mode']}"
                found.append(
                    {
                        "section": section.name,
                        "case": case,
                        "target": record["target"],
                        "figure": _figure(section.name, record),
                        "result": record["result"],
                    }
                )
    return found


def _figure(section: str, record: dict[str, Any]) -> str:
    if section in ("direct", "client"):
        return f"{record['diff']:+.2f} µs"
    if section == "loopback":
        return f"{record['ratio']:.3f} × bare"
    if section == "stream":
        return f"{record['diff']:+.3f} MB"
    if section == "outage":
        return (
            f"{record['connections']} connection(s), "
            f"{record['attempts_per_request']:.2f} × requests"
        )
    if section == "import":
        return f"{record['ratio']:.2f} × httpx"
    return ""


def targets_markdown(judged: Sequence[dict[str, Any]]) -> str:
    met = sum(1 for t in judged if t["result"])
    lines = [f"## Targets: {met} of {len(judged)} met", ""]
    lines += ["| section | case | target | figure | result |", "|---|---|---|---:|---:|"]
    for t in judged:
        result = "PASS" if t["result"] else "FAIL"
        lines.append(f"| {t['section']} | {t['case']} | {t['target']} | {t['figure']} | {result} |")
    return "\n".join(lines) + "\n"


def markdown(sections: Sequence[Section], meta: dict[str, Any]) -> str:
    lines = ["# httpx-resilience benchmarks", ""]
    lines += [f"- {key}: {value}" for key, value in meta.items()]
    lines.append("")
    judged = targets(sections)
    if judged:
        lines.append(targets_markdown(judged))
    body = "\n".join(section_markdown(section) for section in sections)
    return "\n".join(lines) + "\n" + body


def write_json(path: Path, sections: Sequence[Section], meta: dict[str, Any]) -> None:
    data = {
        "meta": meta,
        "targets": targets(sections),
        "sections": [
            {
                "name": s.name,
                "title": s.title,
                "seconds": s.seconds,
                "tables": [
                    {"title": t.title, "note": t.note, "records": t.records} for t in s.tables
                ],
            }
            for s in sections
        ],
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _records(sections: Sequence[Section], name: str) -> list[dict[str, Any]]:
    return [r for s in sections if s.name == name for t in s.tables for r in t.records]


def _target_line(case: str, retries_diff: float) -> float | None:
    """Where a row's target sits, in µs added (see `_micro`): None for a row without one."""
    if case.endswith("GET"):
        if case.startswith("direct"):
            return 1.5 * max(retries_diff, 0.0)
        return retries_diff + 1.5
    return 4.0 if case.startswith("direct") else None


def plot(path: Path, sections: Sequence[Section]) -> None:
    """Two panels: added cost per variant, and attempts per logical request in the outages."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 6.5), layout="constrained")
    wrappers = [v for v in VARIANTS if v != BARE]

    overhead = [
        (f"{name} {r['case']}", r)
        for name in ("direct", "client")
        for r in _records(sections, name)
    ]
    cases = list(dict.fromkeys(label for label, _ in overhead))
    height = 0.8 / len(wrappers)
    for index, variant in enumerate(wrappers):
        rows = {label: r for label, r in overhead if r["variant"] == variant}
        positions = [c + (index - (len(wrappers) - 1) / 2) * height for c in range(len(cases))]
        left.barh(
            positions,
            [rows[case]["diff"] if case in rows else 0.0 for case in cases],
            height=height,
            # Whiskers: how much the paired rounds disagree, so noise is not read as a result.
            xerr=[rows[case]["diff_iqr"] / 2 if case in rows else 0.0 for case in cases],
            error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#555555"},
            label=variant,
            color=_COLOURS[variant],
        )
    theirs = {label: r["diff"] for label, r in overhead if r["variant"] == RETRIES}
    for position, case in enumerate(cases):
        limit = _target_line(case, theirs.get(case, 0.0))
        if limit is None:
            continue
        left.vlines(
            limit,
            position - 0.45,
            position + 0.45,
            colors="#2ca02c",
            linestyles="--",
            linewidth=1.2,
            label="target" if position == 0 else None,
        )
    left.set_yticks(range(len(cases)), [c.replace("client", "via client") for c in cases])
    left.invert_yaxis()
    left.axvline(0, color="black", linewidth=0.6)
    left.set_xlabel(
        "added µs per request vs bare MockTransport (median of paired rounds; whiskers ± IQR/2)"
    )
    left.set_title("Success-path cost on MockTransport")
    left.legend(loc="best", fontsize=8)
    if not cases:
        left.text(0.5, 0.5, "direct/client not run", ha="center", transform=left.transAxes)

    outages = _records(sections, "outage")
    groups = list(dict.fromkeys(f"{r['outage']} outage\n{r['mode']}" for r in outages))
    shown = list(dict.fromkeys(r["variant"] for r in outages)) or list(VARIANTS)
    width = 0.8 / len(shown)
    for index, variant in enumerate(shown):
        rows = {f"{r['outage']} outage\n{r['mode']}": r for r in outages if r["variant"] == variant}
        positions = [g + (index - (len(shown) - 1) / 2) * width for g in range(len(groups))]
        heights = [rows[g]["attempts_per_request"] if g in rows else 0.0 for g in groups]
        bars = right.bar(positions, heights, width=width, label=variant, color=_COLOURS[variant])
        for bar, group in zip(bars, groups, strict=True):
            if group in rows:
                right.annotate(
                    f"{rows[group]['connections']} conn",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    fontsize=6.5,
                    rotation=90,
                )
    right.set_xticks(range(len(groups)), groups)
    right.set_ylabel("attempts the server received per logical request")
    right.set_ylim(0, 3.8)
    right.set_title("Outages on loopback (labels: TCP connections the server saw)")
    right.legend(loc="upper right", fontsize=8)
    if not groups:
        right.text(0.5, 0.5, "outage section not run", ha="center", transform=right.transAxes)

    fig.savefig(path, dpi=130)
    plt.close(fig)
