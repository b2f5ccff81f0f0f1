"""Mutation testing of the pure modules: `make mutation`, or `make mutation MODULES=_headers`.

Each module is mutated one small change at a time (a comparison's boundary or sense, `and` /
`or`, an arithmetic operator, a constant, a `not`, a return value, a statement with an effect)
and its own unit tests are run against every mutant: a mutant the tests still pass is behaviour
no test pins down. Per module it prints killed/total, the score, and each surviving mutant.
Mutants judged equivalent (no test could tell them apart from the original) are listed in
tools/mutation-equivalent.txt, each with its reason, and left out of the score.

The working tree is never written to: the package, the tests and pyproject.toml are copied to a
temporary directory (others may be editing them), and each mutant is written into that copy.
The package is installed editable in .venv, so the copy is put first on `sys.path` and each run
checks that the module it imported is the copy's; a canary mutant that breaks the module must
be killed, or the run stops.

Speed: third-party modules are imported once and every test run is a `fork` of this process.
One traced run of the tests records which test executes which line, and a mutant runs only the
tests that execute its lines (all of them for a line run at import time; `--all-tests` runs
every test for every mutant instead), the quickest first, stopping at the first failure. A test
that exceeds a timeout (an infinite loop) fails, and its mutant counts as killed; such mutants
are listed, so that one slowed only by a busy machine can be seen. `--jobs 2` runs two mutants
at once.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import hashlib
import importlib
import importlib.metadata
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "httpx_resilience"
EQUIVALENT_FILE = ROOT / "tools" / "mutation-equivalent.txt"

# Each module and its own unit tests.
MODULES: dict[str, tuple[str, ...]] = {
    "_headers": ("tests/test_headers.py", "tests/test_headers_edges.py"),
    "_redact": ("tests/test_redact.py", "tests/test_redact_edges.py"),
    "_replay": ("tests/test_retry.py", "tests/test_retry_edges.py"),
    "_state": ("tests/test_state.py", "tests/test_state_edges.py"),
    "_decide": ("tests/test_decide.py", "tests/test_decide_edges.py", "tests/test_driver.py"),
}

# Pytest warns that it cannot rewrite the asserts of the plugins imported before the fork.
PYTEST_ARGS = (
    "-x",
    "-q",
    "-p",
    "no:cacheprovider",
    "-W",
    "ignore::pytest.PytestAssertRewriteWarning",
)
# Exit statuses of a child whose tests imported the package from elsewhere than the copy, or
# that failed before pytest could report: either stops the whole run.
WRONG_COPY = 97
CHILD_CRASH = 98

# The boundary and the negation of each comparison.
_COMPARE: dict[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Lt: (ast.LtE, ast.GtE),
    ast.LtE: (ast.Lt, ast.Gt),
    ast.Gt: (ast.GtE, ast.LtE),
    ast.GtE: (ast.Gt, ast.Lt),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
}
_BINARY: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
    ast.BitXor: ast.BitOr,
}
_SWAPPED_CALLS = {"min": "max", "max": "min"}
# Statements that only have an effect: deleting one leaves a valid module that may still pass.
_EFFECTS = (ast.Expr, ast.AugAssign, ast.Raise, ast.Delete, ast.Break, ast.Continue)
_SKIPPED_FIELDS = frozenset({"annotation", "returns", "type_comment", "type_params"})


# --- Generating mutants ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mutant:
    """One change to one module: where it is, what it does, and the module's mutated text."""

    module: str
    lineno: int
    end_lineno: int
    qualname: str
    in_function: bool  # runs only when its function is called (else: at import time)
    original: str
    mutated: str
    key: str
    source: str = field(repr=False)

    def describe(self) -> str:
        return f"L{self.lineno:<4} {self.qualname}: {self.original} -> {self.mutated}"


@dataclass(slots=True)
class _Context:
    qualname: str = "<module>"
    in_function: bool = False


Replace = Callable[[ast.AST], None]


def _is_docstring(body: list[Any], index: int) -> bool:
    node = body[index]
    return (
        index == 0
        and isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _is_skipped_statement(node: ast.AST) -> bool:
    """Statements whose mutants tell nothing: imports, `__all__`, `__slots__`, type-only code."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(t, ast.Name) and t.id in ("__all__", "__slots__") for t in targets)
    if isinstance(node, ast.If):
        test = node.test
        return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
    return False


def _walk(
    node: ast.AST, replace: Replace, parent: ast.AST | None, ctx: _Context
) -> Iterator[tuple[ast.AST, Replace, ast.AST | None, _Context]]:
    """Every mutable node in a fixed order, with how to put something in its place."""
    yield node, replace, parent, ctx
    inner = outer = ctx
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        prefix = "" if ctx.qualname == "<module>" else ctx.qualname + "."
        inner = _Context(prefix + node.name, not isinstance(node, ast.ClassDef))
        # Decorators, defaults and bases run where the definition is, not in its body.
        outer = _Context(inner.qualname, ctx.in_function)
    elif isinstance(node, ast.Lambda):
        inner = _Context(ctx.qualname, True)
    for name, value in ast.iter_fields(node):
        if name in _SKIPPED_FIELDS:
            continue
        child_ctx = inner if name == "body" else outer
        if isinstance(value, list):
            for index, item in enumerate(value):
                if not isinstance(item, ast.AST):
                    continue
                if isinstance(item, ast.stmt) and (
                    _is_docstring(value, index) or _is_skipped_statement(item)
                ):
                    continue
                yield from _walk(item, _setter(value, index), node, child_ctx)
        elif isinstance(value, ast.AST):
            yield from _walk(value, _attr_setter(node, name), node, child_ctx)


def _setter(items: list[Any], index: int) -> Replace:
    def replace(new: ast.AST) -> None:
        items[index] = new

    return replace


def _attr_setter(node: ast.AST, name: str) -> Replace:
    def replace(new: ast.AST) -> None:
        setattr(node, name, new)

    return replace


def _with(node: ast.AST, **changes: Any) -> ast.AST:
    new = copy.copy(node)
    for name, value in changes.items():
        setattr(new, name, value)
    return new


def _constant(node: ast.AST, value: Any) -> ast.AST:
    return ast.copy_location(ast.Constant(value=value), node)


def _edits(node: ast.AST, parent: ast.AST | None) -> list[ast.AST]:
    """The replacements for `node`, each one mutant."""
    if isinstance(node, ast.Compare):
        out = []
        for i, op in enumerate(node.ops):
            for swap in _COMPARE.get(type(op), ()):
                ops = list(node.ops)
                ops[i] = swap()
                out.append(_with(node, ops=ops))
        return out
    if isinstance(node, ast.BoolOp):
        return [_with(node, op=ast.Or() if isinstance(node.op, ast.And) else ast.And())]
    if isinstance(node, (ast.BinOp, ast.AugAssign)):
        swapped = _BINARY.get(type(node.op))
        edits = [_with(node, op=swapped())] if swapped is not None else []
        if isinstance(node, ast.AugAssign):
            edits.append(ast.copy_location(ast.Pass(), node))
        return edits
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, (ast.Not, ast.USub, ast.Invert)):
            return [node.operand]
        return []
    if isinstance(node, ast.Constant):
        if isinstance(parent, ast.JoinedStr) and not isinstance(node.value, str):
            return []
        return [_constant(node, value) for value in _constant_swaps(node.value)]
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id in _SWAPPED_CALLS:
            return [_with(node, func=_with(func, id=_SWAPPED_CALLS[func.id]))]
        return []
    if isinstance(node, ast.Return):
        value = node.value
        if value is None or (isinstance(value, ast.Constant) and value.value is None):
            return []
        return [_with(node, value=_constant(value, None))]
    if isinstance(node, _EFFECTS) or (
        isinstance(node, ast.Assign) and not all(isinstance(t, ast.Name) for t in node.targets)
    ):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return []  # `...` in a protocol
        return [ast.copy_location(ast.Pass(), node)]
    return []


def _constant_swaps(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, 0] if value == 1 else [value + 1]
    if isinstance(value, float):
        return [value + 1.0, 0.0] if value == 1.0 else [value + 1.0]
    if isinstance(value, str):
        return [""] if value else ["mutated"]
    if isinstance(value, bytes):
        return [b""] if value else [b"mutated"]
    return []


def _snippet(node: ast.AST) -> str:
    text = " ".join(ast.unparse(node).split())
    return text if len(text) <= 100 else text[:97] + "..."


def generate(module: str, source: str) -> list[Mutant]:
    """Every mutant of `module`, whose text is `source`, in a fixed order."""
    tree = ast.parse(source)
    mutants: list[Mutant] = []
    seen: dict[tuple[str, str, str], int] = {}

    def ignore(_: ast.AST) -> None:
        return None

    for node, replace, parent, ctx in list(_walk(tree, ignore, None, _Context())):
        lineno = getattr(node, "lineno", None)
        if lineno is None:
            continue
        # A constant or operator is shown with the expression around it, if that is short.
        shown = node
        if (
            isinstance(parent, (ast.expr, ast.keyword))
            and isinstance(node, ast.expr)
            and len(ast.unparse(parent)) <= 80
        ):
            shown = parent
        before = _snippet(shown)
        for new in _edits(node, parent):
            replace(new)
            try:
                text = ast.unparse(tree)
                after = _snippet(new if shown is node else shown)
            finally:
                replace(node)
            try:
                compile(text, module, "exec")
            except SyntaxError:
                continue
            label = (ctx.qualname, before, after)
            seen[label] = seen.get(label, 0) + 1
            digest = hashlib.sha1(repr((*label, seen[label])).encode()).hexdigest()[:8]
            mutants.append(
                Mutant(
                    module=module,
                    lineno=lineno,
                    end_lineno=getattr(node, "end_lineno", None) or lineno,
                    qualname=ctx.qualname,
                    in_function=ctx.in_function,
                    original=before,
                    mutated=after,
                    key=f"{module}:{digest}",
                    source=text,
                )
            )
    return mutants


# --- Running the tests in a child process -------------------------------------------------------


@dataclass(slots=True)
class Workspace:
    """A private copy of the package, the tests and pyproject.toml for one worker."""

    root: Path

    @property
    def package(self) -> Path:
        return self.root / "src" / PACKAGE

    def module_file(self, module: str) -> Path:
        return self.package / f"{module}.py"

    @classmethod
    def copy_of(cls, snapshot: Path, root: Path) -> Workspace:
        shutil.copytree(snapshot, root)
        return cls(root)


def snapshot_tree(into: Path) -> None:
    """Copy what the runs need, so edits made meanwhile in the working tree don't mix in."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    shutil.copytree(ROOT / "src" / PACKAGE, into / "src" / PACKAGE, ignore=skip)
    shutil.copytree(ROOT / "tests", into / "tests", ignore=skip)
    shutil.copy2(ROOT / "pyproject.toml", into / "pyproject.toml")


class _Plugin:
    """What every run shares: the check that the tests import the copy, the same examples, no
    database written, no timing checks; each test's outcome and duration."""

    def __init__(self) -> None:
        self.module = ""
        self.expected = Path()
        self.failed: set[str] = set()
        self.passed: set[str] = set()
        self.seconds: dict[str, float] = {}

    def expect(self, module: str, path: Path) -> None:
        self.module, self.expected = module, path

    def results(self) -> dict[str, Any]:
        return {
            "failed": sorted(self.failed),
            "passed": sorted(self.passed),
            "seconds": self.seconds,
        }

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration
        if report.failed:
            self.failed.add(report.nodeid)
        elif report.when == "call" and report.passed:
            self.passed.add(report.nodeid)

    def pytest_collection_finish(self, session: Any) -> None:
        # The tests are imported now, and with them the module they test: it must be the copy.
        imported = sys.modules.get(self.module)
        where = getattr(imported, "__file__", None)
        if where is None or Path(where).resolve() != self.expected:
            print(f"\nthe tests imported {where}, not the copy {self.expected}", flush=True)
            os._exit(WRONG_COPY)

    def pytest_configure(self, config: Any) -> None:
        # Here, not before pytest starts: pytest must import hypothesis itself to rewrite it.
        from hypothesis import HealthCheck, settings

        settings.register_profile(
            "mutation",
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        settings.load_profile("mutation")


class _Select(_Plugin):
    """A pytest plugin that keeps only the chosen tests, the quickest first (by `order`, their
    durations), each one failed by pytest-timeout after `test_timeout` seconds."""

    def __init__(
        self,
        chosen: frozenset[str] | None,
        test_timeout: float | None = None,
        order: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.chosen = chosen
        self.test_timeout = test_timeout
        self.order = order

    def pytest_collection_modifyitems(self, config: Any, items: list[Any]) -> None:
        chosen = self.chosen
        kept = [item for item in items if chosen is None or item.nodeid in chosen]
        dropped = [item for item in items if chosen is not None and item.nodeid not in chosen]
        if self.order is not None:
            # Stable: tests of equal duration keep the order of their file. A mutant most tests
            # kill is then killed by a quick one (-x stops there).
            order = self.order
            kept.sort(key=lambda item: order.get(item.nodeid, math.inf))
        items[:] = kept
        if dropped:
            config.hook.pytest_deselected(items=dropped)


class _Trace(_Plugin):
    """A pytest plugin that records which lines of one file each test runs, and the outcomes."""

    def __init__(self, filename: str) -> None:
        super().__init__()
        self.filename = filename
        self.current = ""  # "" while no test runs: import and collection time
        self.lines: dict[str, set[int]] = {"": set()}

    def results(self) -> dict[str, Any]:
        return {**super().results(), "lines": {k: sorted(v) for k, v in self.lines.items()}}

    def trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename != self.filename:
            return None
        self.lines[self.current].add(frame.f_lineno)
        return self.local

    def local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.lines[self.current].add(frame.f_lineno)
        return self.local

    def start(self) -> None:
        threading.settrace(self.trace)
        sys.settrace(self.trace)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.current = nodeid
        self.lines.setdefault(nodeid, set())

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        self.current = ""


def _child(
    work: Workspace, module: str, tests: tuple[str, ...], plugin: _Select | _Trace, log: Path
) -> None:
    """Run in the forked child: import the copy, check it is the copy, run pytest, exit."""
    code = CHILD_CRASH
    try:
        os.setpgid(0, 0)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.chdir(work.root)
        # Only the traced baseline, first, caches compiled modules (the module under test's
        # is then deleted): a mutant must never run from a cached compile of another.
        sys.dont_write_bytecode = not isinstance(plugin, _Trace)
        sys.path.insert(0, str(work.root / "src"))
        importlib.invalidate_caches()
        # Hypothesis caches what it learns in a directory it fixed when imported here, before
        # the fork: the working tree's. The copy's own, instead.
        from hypothesis.configuration import set_hypothesis_home_dir

        set_hypothesis_home_dir(work.root / ".hypothesis")
        expected = work.module_file(module).resolve()
        plugin.expect(f"{PACKAGE}.{module}", expected)
        if isinstance(plugin, _Trace):
            plugin.start()
        import pytest

        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        plugins = [arg for name in _plugins() for arg in ("-p", name)]
        if isinstance(plugin, _Select) and plugin.test_timeout is not None:
            plugins += ["-o", f"timeout={plugin.test_timeout:.1f}"]
        args = [*PYTEST_ARGS, *plugins, "--rootdir", str(work.root), *tests]
        code = int(pytest.main(args, plugins=[plugin]))
        sys.settrace(None)
        (log.parent / "results.json").write_text(json.dumps(plugin.results()))
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _plugins() -> list[str]:
    """The installed pytest plugins, each to be named with -p (autoloading is off)."""
    return sorted({ep.name for ep in importlib.metadata.entry_points(group="pytest11")})


def _preload() -> None:
    """Import the heavy modules once, before any fork; never the package under test.

    Pytest cannot rewrite the asserts of a plugin imported before it starts, and says so: the
    children silence that warning (a plugin's own asserts are not what is tested here).
    """
    names = ["httpx", "httpcore", "trio", "anyio", "asyncio", "email.utils", "ssl"]
    names += ["pytest", "hypothesis", "hypothesis.strategies"]
    names += [ep.module for ep in importlib.metadata.entry_points(group="pytest11")]
    for name in names:
        importlib.import_module(name)
    if PACKAGE in sys.modules:
        raise SystemExit(f"{PACKAGE} was imported before the fork: the copy would not be used")


def _fork(work: Workspace, module: str, tests: tuple[str, ...], plugin: _Select | _Trace) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child(work, module, tests, plugin, work.root / "run.log")
    # Its own process group, set from both sides so a kill can never miss it: whatever it
    # starts goes with it.
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    return pid


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def run_once(
    work: Workspace,
    module: str,
    tests: tuple[str, ...],
    plugin: _Select | _Trace,
    timeout: float | None = None,
) -> tuple[int | None, float]:
    """One child to the end: its exit status (None if it ran out of time) and duration."""
    started = time.monotonic()
    pid = _fork(work, module, tests, plugin)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), time.monotonic() - started
        if timeout is not None and time.monotonic() - started > timeout:
            _kill(pid)
            return None, time.monotonic() - started
        time.sleep(0.005)


# --- One module --------------------------------------------------------------------------------


@dataclass(slots=True)
class Baseline:
    """The unmutated module's run: the tests that pass, how long they take, who runs what."""

    passing: frozenset[str]
    failing: list[str]
    seconds: float
    slowest: float  # the slowest test's duration
    at_import: frozenset[int]  # lines run outside any test: at import or collection
    by_line: dict[int, set[str]]
    traced: dict[str, float]  # each test's duration in the traced run (slower than untraced)
    order: dict[str, float] | None  # what to sort the tests of a run by (None: file order)

    def tests_for(self, mutant: Mutant, all_tests: bool) -> frozenset[str]:
        """The passing tests that run the mutant's lines (all, for code run at import)."""
        span = range(mutant.lineno, mutant.end_lineno + 1)
        if all_tests or not mutant.in_function or any(n in self.at_import for n in span):
            return self.passing
        return frozenset().union(*(self.by_line.get(n, set()) for n in span))

    @property
    def test_timeout(self) -> float:
        """How long one test may take before pytest-timeout fails it as an infinite loop."""
        return 3.0 + 5.0 * self.slowest

    def timeout(self, tests: frozenset[str]) -> float:
        """How long a run of `tests` may take before it is killed, should pytest-timeout not
        end it: several times their traced duration, above pytest's start-up on a busy
        machine."""
        return 8.0 + 3.0 * sum(self.traced.get(t, 1.0) for t in tests)


def _baseline(work: Workspace, module: str, tests: tuple[str, ...]) -> Baseline:
    tracer = _Trace(str(work.module_file(module).resolve()))
    status, _ = run_once(work, module, tests, tracer)
    _check_status(status, work)
    # Compiled once by that run, the other modules load fast; the one under test must not.
    for cached in (work.package / "__pycache__").glob(f"{module}.*"):
        cached.unlink()
    trace = json.loads((work.root / "results.json").read_text())
    failing = sorted(trace["failed"])
    passing = frozenset(trace["passed"]) - frozenset(failing)
    if not passing:
        raise SystemExit(f"{module}: no test passes on the unmutated module")
    # Run again untraced, quickest first as the mutants will be: their duration, and proof that
    # they pass in that order too.
    order: dict[str, float] | None = trace["seconds"]
    status, seconds = run_once(work, module, tests, _Select(passing, order=order))
    if status != 0:
        _check_status(status, work)
        print("  ! the tests fail when run quickest first: run in their files' order")
        order = None
        status, seconds = run_once(work, module, tests, _Select(passing))
        if status != 0:
            _check_status(status, work)
            raise SystemExit(f"{module}: the tests that passed fail when run again (flaky?)")
    untraced = json.loads((work.root / "results.json").read_text())["seconds"]
    lines: dict[str, list[int]] = trace["lines"]
    by_line: dict[int, set[str]] = {}
    for nodeid, numbers in lines.items():
        if nodeid in passing:
            for number in numbers:
                by_line.setdefault(number, set()).add(nodeid)
    at_import = frozenset(lines.get("", ()))
    slowest = max(untraced.values(), default=0.0)
    return Baseline(passing, failing, seconds, slowest, at_import, by_line, trace["seconds"], order)


@dataclass(slots=True)
class _Job:
    pid: int
    deadline: float
    work: Workspace
    mutant: Mutant


def _run_mutants(
    module: str,
    tests: tuple[str, ...],
    mutants: list[Mutant],
    works: list[Workspace],
    baseline: Baseline,
    all_tests: bool,
) -> dict[str, str]:
    """Each mutant's fate by key: "killed", "timeout", "survived" or "uncovered"."""
    fates: dict[str, str] = {}
    queue = list(mutants)
    running: list[_Job] = []
    free = list(works)
    try:
        while queue or running:
            while queue and free:
                mutant = queue.pop(0)
                chosen = baseline.tests_for(mutant, all_tests)
                if not chosen:
                    fates[mutant.key] = "uncovered"
                    continue
                work = free.pop()
                work.module_file(module).write_text(mutant.source)
                plugin = _Select(chosen, baseline.test_timeout, baseline.order)
                pid = _fork(work, module, tests, plugin)
                deadline = time.monotonic() + baseline.timeout(chosen)
                running.append(_Job(pid, deadline, work, mutant))
            for job in list(running):
                pid, status = os.waitpid(job.pid, os.WNOHANG)
                if not pid:
                    if time.monotonic() <= job.deadline:
                        continue
                    _kill(job.pid)  # an infinite loop, most likely: killed all the same
                    fates[job.mutant.key] = "timeout"
                else:
                    code = os.waitstatus_to_exitcode(status)
                    _check_status(code, job.work)
                    fates[job.mutant.key] = _fate(code, job.work)
                running.remove(job)
                free.append(job.work)
                if len(fates) % 25 == 0:
                    print(f"    {len(fates)}/{len(mutants)}", flush=True)
            time.sleep(0.005)
    finally:
        for job in running:
            _kill(job.pid)
    return fates


@dataclass(slots=True)
class Result:
    """What became of one module's mutants."""

    module: str
    total: int = 0
    killed: int = 0
    timeouts: list[Mutant] = field(default_factory=list)
    survived: list[Mutant] = field(default_factory=list)
    uncovered: set[str] = field(default_factory=set)  # keys of survivors no test executes
    equivalent: list[tuple[Mutant, str]] = field(default_factory=list)
    not_equivalent: list[Mutant] = field(default_factory=list)  # listed, yet killed
    stale: list[str] = field(default_factory=list)  # listed keys no mutant has any more
    seconds: float = 0.0

    @property
    def score(self) -> float:
        counted = self.total - len(self.equivalent)
        return 100.0 * self.killed / counted if counted else 100.0


def read_equivalents(path: Path) -> dict[str, str]:
    """`key  description  # why` per line: the keys, each with its reason."""
    found: dict[str, str] = {}
    if not path.exists():
        return found
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, _, rest = text.partition(" ")
        _, sep, why = rest.rpartition("  # ")
        if not sep or not why.strip():
            raise SystemExit(f"{path}:{number}: each mutant needs its reason after '  # '")
        found[key] = why.strip()
    return found


def run_module(
    module: str,
    snapshot: Path,
    scratch: Path,
    jobs: int,
    all_tests: bool,
    equivalents: dict[str, str],
) -> Result:
    started = time.monotonic()
    tests = MODULES[module]
    missing = [t for t in tests if not (snapshot / t).exists()]
    if missing:
        raise SystemExit(f"{module}: missing test files {missing}")
    main = Workspace.copy_of(snapshot, scratch / f"{module}-0")
    source = main.module_file(module).read_text()
    baseline = _baseline(main, module, tests)
    if baseline.failing:
        print(f"  ! {len(baseline.failing)} test(s) fail on the unmutated module, left out:")
        for nodeid in baseline.failing:
            print(f"      {nodeid}")
    _canaries(main, module, tests, baseline, source)
    mutants = generate(module, source)
    print(
        f"  {len(baseline.passing)} tests pass on the unmutated module in"
        f" {baseline.seconds:.1f} s; {len(mutants)} mutants",
        flush=True,
    )
    works = [main] + [
        Workspace.copy_of(main.root, scratch / f"{module}-{n}") for n in range(1, jobs)
    ]
    fates = _run_mutants(module, tests, mutants, works, baseline, all_tests)

    result = Result(module, total=len(mutants))
    for mutant in mutants:
        fate = fates[mutant.key]
        listed = equivalents.get(mutant.key)
        if fate in ("killed", "timeout"):
            result.killed += 1
            if fate == "timeout":
                result.timeouts.append(mutant)
            if listed is not None:
                result.not_equivalent.append(mutant)
        elif listed is not None:
            result.equivalent.append((mutant, listed))
        else:
            result.survived.append(mutant)
            if fate == "uncovered":
                result.uncovered.add(mutant.key)
    result.survived.sort(key=lambda m: m.lineno)
    keys = {mutant.key for mutant in mutants}
    result.stale = [k for k in equivalents if k.startswith(f"{module}:") and k not in keys]
    result.seconds = time.monotonic() - started
    return result


def _fate(code: int, work: Workspace) -> str:
    if code == 0:
        return "survived"
    log = (work.root / "run.log").read_text(errors="replace")
    return "timeout" if "from pytest-timeout" in log else "killed"


def _check_status(status: int | None, work: Workspace) -> None:
    if status in (WRONG_COPY, CHILD_CRASH):
        log = (work.root / "run.log").read_text()[-3000:]
        what = "did not use the copy" if status == WRONG_COPY else "crashed"
        raise SystemExit(f"the test run {what}:\n{log}")


def _canaries(
    work: Workspace, module: str, tests: tuple[str, ...], baseline: Baseline, source: str
) -> None:
    """Prove the runs see the copy: the module as regenerated passes, a broken one fails."""
    path = work.module_file(module)
    passing = baseline.passing
    timeout = baseline.timeout(passing)

    def run() -> int | None:
        plugin = _Select(passing, baseline.test_timeout, baseline.order)
        return run_once(work, module, tests, plugin, timeout)[0]

    try:
        path.write_text(ast.unparse(ast.parse(source)))
        status = run()
        _check_status(status, work)
        if status != 0:
            raise SystemExit(f"{module}: the regenerated, unmutated module fails its tests")
        path.write_text(source + "\nraise RuntimeError('mutation canary')\n")
        status = run()
        _check_status(status, work)
        if status == 0:
            raise SystemExit(f"{module}: a module that cannot import passed: the copy is not used")
    finally:
        path.write_text(source)


# --- Report ------------------------------------------------------------------------------------


def report(result: Result) -> None:
    counted = result.total - len(result.equivalent)
    print(
        f"  killed {result.killed}/{counted} ({len(result.timeouts)} by timeout),"
        f" {len(result.equivalent)} equivalent, {len(result.survived)} survived:"
        f" score {result.score:.1f} %  [{result.seconds:.0f} s]"
    )
    if result.survived:
        print("  survivors (line, where: original -> mutant, key):")
        for mutant in result.survived:
            note = "  (no test runs this line)" if mutant.key in result.uncovered else ""
            print(f"    {mutant.describe()}  [{mutant.key}]{note}")
    if result.timeouts:
        # Counted as killed; listed so that one slow only by a busy machine can be seen.
        print("  killed by timeout:")
        for mutant in result.timeouts:
            print(f"    {mutant.describe()}  [{mutant.key}]")
    if result.equivalent:
        print("  equivalent (tools/mutation-equivalent.txt):")
        for mutant, why in result.equivalent:
            print(f"    {mutant.describe()}  -- {why}")
    for key in result.stale:
        # The code it named has changed: the entry goes, and the mutant is judged afresh.
        print(f"  ! listed as equivalent but no longer a mutant: {key}")
    for mutant in result.not_equivalent:
        print(f"  ! listed as equivalent but killed: {mutant.key} {mutant.describe()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modules", default="", help="comma-separated, e.g. _headers,_decide (default: all)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="test runs at once (at most 2)")
    parser.add_argument("--all-tests", action="store_true", help="run every test for every mutant")
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    args = parser.parse_args(argv)
    names = [m.strip() for m in args.modules.replace(" ", ",").split(",") if m.strip()]
    names = [n if n.startswith("_") else f"_{n}" for n in names] or list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        parser.error(f"unknown modules {unknown}; known: {', '.join(MODULES)}")
    jobs = max(1, min(args.jobs, 2))
    if args.list:
        for name in names:
            source = (ROOT / "src" / PACKAGE / f"{name}.py").read_text()
            for mutant in generate(name, source):
                print(f"{mutant.key}  {mutant.describe()}")
        return 0
    equivalents = read_equivalents(EQUIVALENT_FILE)
    _preload()
    started = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        scratch = Path(tmp)
        snapshot = scratch / "snapshot"
        snapshot_tree(snapshot)
        for name in names:
            print(f"{name}.py against {' '.join(MODULES[name])}", flush=True)
            result = run_module(name, snapshot, scratch, jobs, args.all_tests, equivalents)
            report(result)
            results.append(result)
    print(f"\nmutation scores ({time.monotonic() - started:.0f} s):")
    for result in results:
        counted = result.total - len(result.equivalent)
        print(
            f"  {result.module + '.py':<12} {result.score:5.1f} %"
            f"  killed {result.killed}/{counted}, {len(result.equivalent)} equivalent"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
