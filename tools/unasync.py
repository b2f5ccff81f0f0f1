"""Generate the sync driver from the async one, as httpcore does: `python tools/unasync.py`.

`--check` fails (exit 1) when the generated file is not current; `make test` runs it. The
replacements are whole words, so a name that merely contains one is left alone.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "httpx_resilience"
# (async source, generated sync file)
FILES = [(PACKAGE / "_driver_async.py", PACKAGE / "_driver_sync.py")]

# Applied in order, each as a whole-word regular expression.
SUBSTITUTIONS = [
    (r"async def ", "def "),
    (r"await ", ""),
    (r"async with ", "with "),
    (r"async for ", "for "),
    (r"Callable\[\[float\], Awaitable\[None\]\]", "Callable[[float], None]"),
    (r"from collections\.abc import Awaitable, Callable", "from collections.abc import Callable"),
    (r"AsyncDriver", "SyncDriver"),
    (r"AsyncResilientTransport", "ResilientTransport"),
    (r"handle_async_request", "handle_request"),
    (r"aread_prefix", "read_prefix"),
    (r"aclose_response", "close_response"),
    (r"async_mapped", "sync_mapped"),
    (r"async_store", "sync_store"),
    (r"async_sleep", "sleep"),
    (r"default_async_transport", "default_transport"),
    (r"async_transport", "transport"),
    (r"aclose", "close"),
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    (r"The async driver", "The sync driver"),
]

HEADER = (
    "# Generated from {source} by tools/unasync.py: do not edit; edit {source} and run\n"
    "# `make unasync`.\n"
)


def unasync(text: str, source: str) -> str:
    for pattern, replacement in SUBSTITUTIONS:
        text = re.sub(
            rf"\b{pattern}" if pattern[0].isalnum() or pattern[0] == "_" else pattern,
            replacement,
            text,
        )
    return HEADER.format(source=source) + text


def formatted(text: str) -> str:
    """`text` as `ruff format` leaves it (a shorter line may now fit where it was wrapped)."""
    ruff = str(Path(sys.executable).parent / "ruff")
    for command in (
        [ruff, "check", "--select", "I", "--fix-only", "--exit-zero"],  # imports re-sorted
        [ruff, "format"],
    ):
        text = subprocess.run(
            [*command, "--stdin-filename", "generated.py", "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    args = parser.parse_args()
    stale = []
    for source, target in FILES:
        text = formatted(unasync(source.read_text(), source.name))
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(target.relative_to(ROOT))
        else:
            target.write_text(text)
    if stale:
        print(f"stale: {', '.join(map(str, stale))}; run `make unasync`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
