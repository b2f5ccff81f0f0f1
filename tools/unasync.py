"""Generate the sync driver from the async one, as httpcore does: `python tools/unasync.py`.

`--check` fails (exit 1) when the generated file is not current; `make test` runs it. The
replacements match whole words, so a name that merely contains one is left alone.
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
FILES = [
    (PACKAGE / "_driver_async.py", PACKAGE / "_driver_sync.py"),
    (PACKAGE / "_report_async.py", PACKAGE / "_report_sync.py"),
    (PACKAGE / "_redis_async.py", PACKAGE / "_redis_sync.py"),
]

# Regular expressions, applied in order to every file.
SUBSTITUTIONS = [
    # A line only the async side has (awaiting what an async hook returned) goes.
    (r"^[^\n]*# async only\n", ""),
    # What is shielded from cancellation on the async side is a plain call on the sync side.
    (r"\bawait _waits\.shielded\((.*)\)$", r"\1"),
    # What a hook returned: awaited when awaitable on the async side; on the sync side, which
    # cannot await, an awaitable is closed and reported.
    (r"\bawaited\b", "unawaited"),
    (r"\basynchronous=True\b", "asynchronous=False"),
    (r"\bAsyncReporter\b", "Reporter"),
    (r"\b_report_async\b", "_report_sync"),
    (r"\basync def ", "def "),
    (r"\bawait ", ""),
    (r"\basync with ", "with "),
    (r"\basync for ", "for "),
    (r"Callable\[\[float\], Awaitable\[None\]\]", "Callable[[float], None]"),
    (r"\bAwaitable, ", ""),
    # redis.asyncio's clients are redis's, and only asyncio needs checking for.
    (r"from redis\.asyncio import (\w+) as Async\1\n", r"from redis import \1\n"),
    (r"\bAsyncRedisStore\b", "SyncRedisStore"),
    (r"\bAsyncRedis", "Redis"),
    (r"\n *_check_asyncio\(\)\n", "\n"),
    (r"\b_check_asyncio, ", ""),
    (r"\n *_check_asyncio,\n", "\n"),
    (r" \(redis\.asyncio: asyncio only\)", ""),
    (r"\bAsyncDriver\b", "SyncDriver"),
    (r"\bAsyncResilientTransport\b", "ResilientTransport"),
    (r"\bhandle_async_request\b", "handle_request"),
    (r"\baread_prefix\b", "read_prefix"),
    (r"\babuffer_body\b", "buffer_body"),
    (r"\baclose_response\b", "close_response"),
    (r"\basync_mapped\b", "sync_mapped"),
    (r"\basync_store\b", "sync_store"),
    (r"\basync_sleep_of\b", "sleep_of"),
    (r"\basync_sleep\b", "sleep"),
    (r"\bdefault_async_transport\b", "default_transport"),
    (r"\basync_transport\b", "transport"),
    (r"\baclose\b", "close"),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\bThe async driver\b", "The sync driver"),
    (r"\bfor the async transport\b", "for the sync transport"),
]

HEADER = (
    "# Generated from {source} by tools/unasync.py: do not edit; edit {source} and run\n"
    "# `make unasync`.\n"
)


def unasync(text: str, source: str) -> str:
    for pattern, replacement in SUBSTITUTIONS:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
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
