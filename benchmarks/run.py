"""httpx-resilience's benchmark suite: one command, every figure the targets are judged on.

    python benchmarks/run.py                       # everything (a few minutes on two cores)
    python benchmarks/run.py --quick               # every section with tiny counts: a smoke test
    python benchmarks/run.py --sections direct,client
    python benchmarks/run.py --profile             # where httpx-resilience's own cost goes

Variants, compared within one run, interleaved round by round: the bare inner transport, a
pass-through wrapper (one extra call: the floor), httpx-resilience with its default policies,
and httpx-retries' `RetryTransport` with its default `Retry()`. The `curve` section
(`outage_curve.py`) simulates a 60 s outage on a virtual clock: attempts per request by rate.
The `throttle` section (`throttle.py`) sends from 50 callers at once to a server that allows
50 requests a second and answers a bare 429 beyond, with `AdaptiveThrottle` off and on.

Prints a Markdown table per section and writes `benchmarks/results/latest.md`, `latest.json`
and `overhead.png` (`quick.*` and `quick-overhead.png` under `--quick`, so a smoke run never
overwrites the figures of a full one). Exits 0 whatever the figures, unless `--strict` is given
and a target is missed: benchmarks inform, the test suite gates.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from _buffer import buffer_section
from _common import FULL, QUICK, Scale, Section, Table
from _imports import import_section
from _loopback import outage_section, stream_section, throughput_section
from _micro import client_section, direct_section, error_section, profile_direct
from _report import (
    markdown,
    plot,
    section_markdown,
    targets,
    targets_markdown,
    write_json,
)
from _server import ServerProcess
from outage_curve import outage_curve_section
from throttle import throttle_section

import httpx_resilience

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Spec:
    title: str
    run: Callable[..., list[Table]]
    needs_server: bool = False


SECTIONS: dict[str, Spec] = {
    "direct": Spec("Own cost: direct transport calls (MockTransport)", direct_section),
    "client": Spec("Cost through a client (MockTransport)", client_section),
    "errors": Spec("Error path (MockTransport)", error_section),
    "loopback": Spec("Loopback throughput", throughput_section, needs_server=True),
    "stream": Spec("Streaming memory", stream_section, needs_server=True),
    "outage": Spec("Outages", outage_section, needs_server=True),
    "buffer": Spec("buffer=: memory and throughput", buffer_section, needs_server=True),
    "curve": Spec(
        "Outage curve: the retry budget by client rate (virtual clock)", outage_curve_section
    ),
    "throttle": Spec(
        "Adaptive throttling: a rate-limited server, the throttle off and on",
        throttle_section,
        needs_server=True,
    ),
    "import": Spec("Import time", import_section),
}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts: a smoke test (< 30 s)")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, from: {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed (default: exit 0)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile httpx-resilience's direct success path (GET and POST) and exit",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.sections.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    args.chosen = [name for name in SECTIONS if name in chosen]  # always in the suite's order
    return args


def _git(*args: str) -> str:
    # Read-only queries: which code was measured, while others may be editing it.
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu() -> str:
    # platform.processor() is empty on most Linux systems; the model name is in /proc.
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _meta(args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    modified = _git("status", "--porcelain", "--", "src")
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/run.py " + " ".join(sys.argv[1:]),
        "scale": "quick" if args.quick else "full",
        "wall time": f"{seconds:.1f} s",
        "httpx-resilience": (
            f"{httpx_resilience.__version__} at {commit}"
            + (" + uncommitted changes in src/" if modified else "")
            + f", from {Path(httpx_resilience.__file__).resolve().parent}"
        ),
        "httpx": _version("httpx"),
        "httpx-retries": _version("httpx-retries"),
        "uvicorn / starlette": f"{_version('uvicorn')} / {_version('starlette')}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, {_cpu()}",
    }


def _profile() -> None:
    for method in ("GET", "POST"):
        print(profile_direct(method, count=20_000))


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.profile:
        _profile()
        return 0
    scale: Scale = QUICK if args.quick else FULL
    name = "quick" if args.quick else "latest"
    # Everything alive now (modules, classes, constants) lives to the end: out of the
    # collector's sight, the collection before each timed batch takes microseconds, not
    # the ~20 ms a full one costs here.
    gc.collect()
    gc.freeze()
    began = time.perf_counter()
    sections: list[Section] = []
    with ExitStack() as stack:
        server: ServerProcess | None = None
        for key in args.chosen:
            spec = SECTIONS[key]
            print(f"[{key}] running…", file=sys.stderr, flush=True)
            start = time.perf_counter()
            if spec.needs_server:
                if server is None:
                    server = stack.enter_context(ServerProcess())
                tables = spec.run(scale, server)
            else:
                tables = spec.run(scale)
            section = Section(key, spec.title, tables, time.perf_counter() - start)
            sections.append(section)
            print(section_markdown(section), flush=True)
            print(f"[{key}] {section.seconds:.1f} s", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - began

    meta = _meta(args, seconds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = markdown(sections, meta)
    (RESULTS / f"{name}.md").write_text(report, encoding="utf-8")
    write_json(RESULTS / f"{name}.json", sections, meta)
    written = [f"{name}.md", f"{name}.json"]
    if not args.no_plot:
        image = "overhead.png" if name == "latest" else f"{name}-overhead.png"
        plot(RESULTS / image, sections)
        written.append(image)

    judged = targets(sections)
    missed = [t for t in judged if not t["result"]]
    if judged:
        print(targets_markdown(judged))
    print(
        f"{len(judged) - len(missed)} of {len(judged)} targets met; {seconds:.1f} s; wrote "
        + ", ".join(f"{RESULTS.relative_to(ROOT)}/{w}" for w in written),
        file=sys.stderr,
    )
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
