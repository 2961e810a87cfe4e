"""Performance benchmark of pytest-dosqlite: a script, not a test.

    python benchmarks/run.py [--corpus PATH] [--repeat N] [--sizes 100,300,1000]
                             [--no-workerd] [--no-xdist]

What it measures, on ``example_project/drizzle``, on the largest corpus bundle (karakeep, 94
migrations, when ``--corpus`` exists) and on synthetic drizzle-kit bundles of 100, 300 and 1000
migrations generated into a temporary directory (see ``benchmarks/synth.py``):

* ``migrated_do_us``: one ``migrated_do`` of a test that writes a row, i.e.
  ``ImageCache.fresh(bundle)``, one INSERT of a realistic row, ``close()``, with a warm cache
  (the connection is recycled: the row is undone, the schema is not read again); the table
  also shows an untouched DO (``migrated_do_untouched_us``) and a new copy of the image per DO
  (deserialize + schema read + INSERT), what a DO cost before connections were recycled;
* ``reapply_ms``: re-applying the bundle on an empty DO (``DurableObjectStorage()`` +
  ``migrate``), what every test would pay without the images;
* ``workerd_do_ms``: one fresh DO migrated by drizzle-orm's real ``migrate()`` in workerd
  (``WorkerdBackend.migrate`` on a new DO name; the server is started once), when Node is there;
* ``checks_s``: every built-in check (``registry.CHECK_NAMES`` through ``get_check``) on one
  ``CheckContext`` with a fresh ``ImageCache``, wall time, with a per-check breakdown;
* ``scaling``: the same check list on the synthetic bundles; ``scaling_in_applications``: each
  of those divided by one plain application of the bundle (``migrate`` on an empty DO), which
  grows faster than the bundle in SQLite itself (every ``ALTER TABLE`` reloads the schema);
* ``huge_file_checks_s``: the check list on a synthetic bundle of 30 migrations whose last one
  is lookup data, 20,000 ``INSERT`` statements (1.5 MB, one per breakpoint chunk);
* ``xdist_speedup``: ``pytest --dosqlite -n 0`` / ``-n 2`` wall time on a generated project of
  6 bundles of 150 migrations, each with its own ``drizzle.config.ts`` and wrangler config
  (about 15-20 s under ``-n 0`` here: a suite a team would parallelize), runs interleaved;
  ``xdist_speedup_4x60``: the same on a small project of 4 bundles of 60 migrations (about
  5 s), where the fixed cost of xdist weighs: ``xdist_fixed_s``, the wall time ``-n 2`` adds to
  plain pytest (no plugin) on one empty test, starting the workers and collecting twice.

karakeep's migration 0084 uses ``CREATE TEMPORARY TABLE``, which a Durable Object refuses (on
the emulator and in workerd alike), so every karakeep number is measured on the largest prefix
a fresh DO migrates; the table says which. Other sessions may load the machine: every number
is a median of several runs and the load average is printed with the results.

The last line of the output is one JSON object with the headline numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SRC = REPO / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from synth import generate_bundle, generate_project  # noqa: E402

from pytest_dosqlite import registry  # noqa: E402
from pytest_dosqlite.bundle import Bundle, load_bundle  # noqa: E402
from pytest_dosqlite.checks import CheckContext  # noqa: E402
from pytest_dosqlite.errors import CheckFailure, CheckSkipped, MigrationError  # noqa: E402
from pytest_dosqlite.images import ImageCache  # noqa: E402
from pytest_dosqlite.migrator import migrate  # noqa: E402
from pytest_dosqlite.seed import quote_ident, read_tables, seed, seed_order, sql_literal  # noqa: E402
from pytest_dosqlite.storage import DurableObjectStorage  # noqa: E402

KARAKEEP = Path("karakeep-app__karakeep") / "packages" / "db" / "drizzle"
#: the huge-file target: 30 migrations, the last one HUGE_ROWS INSERT chunks
HUGE = "seed-20k"
HUGE_ROWS = 20_000


# ----------------------------------------------------------------------------- helpers


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The checks warn (lint findings, budget): not what a benchmark reports."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@dataclass
class Target:
    """A bundle to measure: the loaded bundle and what to say about it."""

    label: str
    path: Path
    bundle: Bundle
    note: str = ""
    #: journal ``entries`` the bundle keeps (a prefix of the file's), for workerd
    journal: dict[str, Any] = field(default_factory=dict)


def working_prefix(label: str, path: Path) -> Target:
    """The bundle, or its largest prefix a fresh DO migrates (with the reason)."""
    bundle = load_bundle(path)
    journal = json.loads((bundle.root / "meta" / "_journal.json").read_text("utf-8"))
    head = ImageCache().head(bundle)
    note = ""
    if head.error is not None:
        err = head.error
        cache = ImageCache()
        k = len(bundle.migrations)
        while k > 0 and cache.version(bundle, k).error is not None:
            k -= 1
        cause = str(err.cause or err.message).splitlines()[0]
        note = (
            f"{len(bundle.migrations)} migrations; {err.tag} fails on a fresh DO ({cause}): "
            f"measured on the first {k} (0000..{bundle.migrations[k - 1].tag})"
        )
        bundle = bundle.prefix(k)
        journal = dict(journal, entries=journal["entries"][:k])
    else:
        note = f"{len(bundle.migrations)} migrations"
    return Target(label, path, bundle, note, journal)


# ----------------------------------------------------------------------------- DO costs


@dataclass
class FreshTimes:
    """Median µs of one ``migrated_do`` (``ImageCache.fresh`` + ``close``), warm cache."""

    #: the test writes one row (what most tests do): the connection is recycled by undoing it
    written: float
    #: the test only reads
    untouched: float
    #: a new copy of the image per DO, as before connections were recycled (one row written)
    copy: float


def one_row_insert(bundle: Bundle, image: bytes) -> str:
    """An INSERT of one realistic row into a user table without foreign keys."""
    do = DurableObjectStorage(image=image)
    try:
        tables = read_tables(do)
        name = next(
            (
                n
                for n in seed_order(tables)
                if not tables[n].foreign_keys and not n.startswith("__")
            ),
            next(iter(seed_order(tables))),
        )
        seed(do, rows_per_table=1, tables=[name])
        row = do.sql.exec(f"SELECT * FROM {quote_ident(name)} LIMIT 1").raw().to_array()[0]
    finally:
        do.close()
    return f"INSERT INTO {quote_ident(name)} VALUES ({', '.join(sql_literal(v) for v in row)})"


def _median_us(fn: Any, batches: int, per_batch: int) -> float:
    fn()
    samples = []
    gc.collect()
    for _ in range(batches):
        started = time.perf_counter()
        for _ in range(per_batch):
            fn()
        samples.append((time.perf_counter() - started) / per_batch * 1e6)
    return median(samples)


def time_migrated_do(bundle: Bundle, batches: int = 9, per_batch: int = 300) -> FreshTimes:
    """Median µs of a ``migrated_do`` that writes one row, that only reads, and of a new copy."""
    cache = ImageCache()
    image = cache.head(bundle).image  # warm: every image up to head is built once
    assert image is not None
    insert = one_row_insert(bundle, image)

    def written() -> None:
        do = cache.fresh(bundle)
        do.sql.exec(insert)
        do.close()

    def copy() -> None:
        do = DurableObjectStorage(image=image)
        do.sql.exec(insert)
        do.close()

    times = FreshTimes(
        written=_median_us(written, batches, per_batch),
        untouched=_median_us(lambda: cache.fresh(bundle).close(), batches, per_batch),
        copy=_median_us(copy, batches, per_batch // 3),
    )
    if cache.pool.discarded:
        raise RuntimeError(f"{bundle.name}: {cache.pool.discarded} DOs were not recycled")
    return times


def time_reapply(bundle: Bundle, runs: int) -> float:
    """Median ms of migrating an empty DO with the whole bundle."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        do = DurableObjectStorage()
        migrate(do, bundle)
        do.close()
        samples.append((time.perf_counter() - started) * 1e3)
    return median(samples)


@dataclass
class WorkerdTimes:
    wall_ms: float
    inside_ms: float
    startup_s: float
    full_bundle: str = ""


def workerd_session() -> Any:
    """A started WorkerdBackend, or the reason there is none."""
    try:
        from pytest_dosqlite.workerd import WorkerdBackend, find_node

        find_node()
        backend = WorkerdBackend(progress=False)
        backend.start()
        return backend
    except Exception as exc:  # no Node, no install: the benchmark goes on without it
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def time_workerd(backend: Any, target: Target, runs: int, full: Bundle | None) -> WorkerdTimes:
    """Median ms of one fresh DO migrated in workerd (wall time of the request, and in the DO)."""
    migrations = {m.key: m.sql for m in target.bundle.migrations}
    walls, inside = [], []
    stamp = time.time_ns()
    for i in range(runs + 1):
        name = f"bench-{target.label}-{stamp}-{i}"
        started = time.perf_counter()
        result = backend.migrate(name, target.journal, migrations)
        wall = (time.perf_counter() - started) * 1e3
        if not result.get("ok"):
            raise RuntimeError(f"workerd migrate of {target.label} failed: {result.get('error')}")
        if i:  # the first request also compiles the worker's code paths
            walls.append(wall)
            inside.append(float(result.get("ms") or 0.0))
    times = WorkerdTimes(median(walls), median(inside), float(backend.startup_seconds or 0.0))
    if full is not None:  # the whole bundle, to show workerd refuses it where the emulator does
        journal = json.loads((full.root / "meta" / "_journal.json").read_text("utf-8"))
        result = backend.migrate(
            f"bench-{target.label}-{stamp}-full",
            journal,
            {m.key: m.sql for m in full.migrations},
        )
        times.full_bundle = "ok" if result.get("ok") else str(result.get("error"))
    return times


# ----------------------------------------------------------------------------- checks


def runnable_checks() -> list[str]:
    return [name for name in registry.CHECK_NAMES if name not in registry.WORKERD_ONLY]


class OverBudget(BaseException):
    """A check ran past its time budget (BaseException: no check catches it)."""


@contextlib.contextmanager
def budget(seconds: float | None) -> Iterator[None]:
    """Interrupt the block after ``seconds`` of wall time (POSIX; no limit elsewhere)."""
    if not seconds or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise OverBudget

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_checks(
    bundle: Bundle, limit: float | None = None
) -> tuple[float, dict[str, float], dict[str, str]]:
    """Every built-in check on one fresh context: total seconds, per check, outcome.

    A check that runs longer than ``limit`` seconds is stopped; its outcome says so and its
    time counts as ``limit`` (the total is then a lower bound).
    """
    names = runnable_checks()
    gc.collect()
    started = time.perf_counter()
    ctx = CheckContext(bundle=bundle, images=ImageCache())
    # the corpus has no reviewed schema snapshot: compare with a no-op (the cost is the render)
    ctx.extra["snapshot_assert"] = lambda text: None
    per: dict[str, float] = {}
    outcome: dict[str, str] = {}
    with quiet():
        for name in names:
            check = registry.get_check(name)
            t0 = time.perf_counter()
            try:
                with budget(limit):
                    check(ctx)
                outcome[name] = "pass"
            except OverBudget:
                outcome[name] = f"STOPPED after {limit:g} s (time budget)"
            except CheckFailure as exc:
                outcome[name] = "FAIL: " + exc.summary[:70]
            except CheckSkipped as exc:
                outcome[name] = "skip: " + str(exc)[:70]
            except MigrationError as exc:
                outcome[name] = "error: " + str(exc).splitlines()[0][:70]
            per[name] = time.perf_counter() - t0
    return time.perf_counter() - started, per, outcome


@dataclass
class CheckTimes:
    total: float
    per: dict[str, float]
    outcome: dict[str, str]
    runs: int
    all_totals: list[float]

    @property
    def stopped(self) -> list[str]:
        return [name for name, out in self.outcome.items() if out.startswith("STOPPED")]


def time_checks(bundle: Bundle, runs: int, limit: float | None = None) -> CheckTimes:
    return time_checks_interleaved({"": bundle}, runs, limit)[""]


def time_checks_interleaved(
    bundles: dict[str, Bundle], runs: int, limit: float | None = None
) -> dict[str, CheckTimes]:
    """Round after round, each bundle's check list once: a slow spell of the machine then
    falls on every size alike, which keeps a ratio between sizes honest."""
    totals: dict[str, list[float]] = {label: [] for label in bundles}
    pers: dict[str, list[dict[str, float]]] = {label: [] for label in bundles}
    outcomes: dict[str, dict[str, str]] = {}
    for _ in range(runs):
        for label, bundle in bundles.items():
            total, per, outcomes[label] = run_checks(bundle, limit)
            totals[label].append(total)
            pers[label].append(per)
    out: dict[str, CheckTimes] = {}
    for label in bundles:
        per_median = {name: median([p[name] for p in pers[label]]) for name in pers[label][0]}
        out[label] = CheckTimes(
            median(totals[label]), per_median, outcomes[label], runs, totals[label]
        )
    return out


# ----------------------------------------------------------------------------- xdist


def pytest_command(workers: int, plugin: bool = True) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", *(["--dosqlite"] if plugin else []), "-q"]
    cmd += ["-p", "no:cacheprovider"]
    # hypothesis (a dev dependency of this repository, not of the plugin) registers a pytest
    # plugin whose import costs ~1 s in every process: not what a user project pays
    cmd += ["-p", "no:hypothesispytest", "-n", str(workers)]
    try:
        from importlib.metadata import entry_points

        registered = any(ep.name == "dosqlite" for ep in entry_points(group="pytest11"))
    except Exception:
        registered = False
    if not registered and plugin:
        cmd += ["-p", "pytest_dosqlite.plugin"]
    return cmd


def time_pytest(
    project: Path, workers: int, extra: list[str] | None = None, plugin: bool = True
) -> tuple[float, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("PYTEST_ADDOPTS", None)
    started = time.perf_counter()
    proc = subprocess.run(
        pytest_command(workers, plugin) + (extra or []),
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    elapsed = time.perf_counter() - started
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return elapsed, (lines[-1] if lines else f"exit {proc.returncode}: {proc.stderr[-300:]}")


@dataclass
class XdistTimes:
    serial: float
    parallel: float
    summary_serial: str
    summary_parallel: str
    bundles: int
    migrations: int
    runs: int

    @property
    def speedup(self) -> float:
        return self.serial / self.parallel if self.parallel else float("nan")


def time_xdist(tmp: Path, runs: int, bundles: int, migrations: int) -> XdistTimes:
    """``-n 0`` and ``-n 2`` runs alternate, so a change in the machine's load hits both."""
    project = tmp / f"xdist-project-{bundles}x{migrations}"
    generate_project(project, bundles, migrations)
    time_pytest(project, 0, ["--snapshot-update"])  # the reviewed schema snapshots
    serial, parallel = [], []
    s_sum = p_sum = ""
    for _ in range(runs):
        t, s_sum = time_pytest(project, 0)
        serial.append(t)
        t, p_sum = time_pytest(project, 2)
        parallel.append(t)
    return XdistTimes(median(serial), median(parallel), s_sum, p_sum, bundles, migrations, runs)


def time_xdist_fixed(tmp: Path, runs: int) -> float:
    """What ``-n 2`` adds to ``-n 0`` on one empty test without this plugin: xdist's own cost
    (two more interpreters, each importing pytest and collecting)."""
    project = tmp / "xdist-fixed"
    project.mkdir(exist_ok=True)
    (project / "test_empty.py").write_text("def test_empty():\n    pass\n")
    serial, parallel = [], []
    base = ["-p", "no:dosqlite"]
    for _ in range(runs):
        serial.append(time_pytest(project, 0, base, plugin=False)[0])
        parallel.append(time_pytest(project, 2, base, plugin=False)[0])
    return median(parallel) - median(serial)


# ----------------------------------------------------------------------------- report


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None or value != value else format(value, spec)


def rounded(value: float | None, digits: int) -> float | None:
    """For the JSON line: None instead of NaN (not JSON)."""
    return None if value is None or value != value else round(value, digits)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--repeat", type=int, default=3, help="runs per median (default 3)")
    parser.add_argument("--sizes", default="100,300,1000", help="synthetic bundle sizes")
    parser.add_argument("--no-workerd", action="store_true", help="skip the workerd numbers")
    parser.add_argument("--no-xdist", action="store_true", help="skip the xdist comparison")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds one check may take on a synthetic bundle before it is stopped (its "
        "time then counts as the budget: a lower bound); 0 for no limit (default 60)",
    )
    args = parser.parse_args(argv)
    repeat = max(1, args.repeat)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    began = time.perf_counter()
    # Python's default: compiled modules are cached in __pycache__. A sandbox that sets
    # PYTHONDONTWRITEBYTECODE makes every child process (fleet checks, xdist workers) compile
    # the whole package again, which no user's machine does after its first run.
    bytecode_note = ""
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        sys.dont_write_bytecode = False
        bytecode_note = "PYTHONDONTWRITEBYTECODE was set: unset for this run (Python's default)"
        log(bytecode_note)
    load_before = load()
    log(f"load average {load_before}; {os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory(prefix="dosqlite-bench-") as tmp_name:
        tmp = Path(tmp_name)
        targets = [working_prefix("example_project", REPO / "example_project" / "drizzle")]
        karakeep_full: Bundle | None = None
        corpus_bundle = args.corpus / KARAKEEP
        if corpus_bundle.is_dir():
            targets.append(working_prefix("karakeep", corpus_bundle))
            karakeep_full = load_bundle(corpus_bundle)
        else:
            log(f"no corpus at {args.corpus}: karakeep skipped")
        synthetic: dict[int, Target] = {}
        for n in sizes:
            path = generate_bundle(tmp / f"synthetic-{n}" / "drizzle", n, seed=n)
            synthetic[n] = working_prefix(f"synthetic-{n}", path)
        # a huge file: lookup data shipped as one migration of 20,000 INSERT chunks
        huge = working_prefix(
            HUGE, generate_bundle(tmp / HUGE / "drizzle", 30, seed=30, seed_rows=HUGE_ROWS)
        )

        # -- DO costs ------------------------------------------------------------------
        do_rows: list[list[str]] = []
        do_costs: dict[str, dict[str, float | None]] = {}
        backend = None if args.no_workerd else workerd_session()
        workerd_note = "skipped (--no-workerd)" if args.no_workerd else ""
        if isinstance(backend, str):
            workerd_note, backend = f"not available: {backend}", None
        try:
            for target in [*targets, *synthetic.values()]:
                if target.label.startswith("synthetic") and len(target.bundle.migrations) > 300:
                    continue  # re-applying 1000 migrations many times says nothing new
                log(f"DO costs: {target.label}")
                fresh = time_migrated_do(target.bundle)
                fresh_us = fresh.written
                n = len(target.bundle.migrations)
                reapply = time_reapply(target.bundle, max(3, 2 * repeat + 1 if n > 100 else 15))
                wk: WorkerdTimes | None = None
                if backend is not None:
                    full = karakeep_full if target.label == "karakeep" else None
                    wk = time_workerd(backend, target, 5 * repeat if n <= 100 else repeat, full)
                do_costs[target.label] = {
                    "migrated_do_us": fresh_us,
                    "migrated_do_untouched_us": fresh.untouched,
                    "new_copy_us": fresh.copy,
                    "reapply_ms": reapply,
                    "workerd_do_ms": wk.wall_ms if wk else None,
                }
                do_rows.append(
                    [
                        target.label,
                        str(n),
                        fmt(fresh_us, ".0f"),
                        fmt(fresh.untouched, ".0f"),
                        fmt(fresh.copy, ".0f"),
                        fmt(reapply, ".1f"),
                        fmt(wk.wall_ms if wk else None, ".1f"),
                        fmt(wk.inside_ms if wk else None, ".0f"),
                        fmt(reapply * 1e3 / fresh_us, ".0f") + "x",
                        fmt(wk.wall_ms * 1e3 / fresh_us if wk else None, ".0f")
                        + ("x" if wk else ""),
                        (
                            f"whole bundle in workerd: {wk.full_bundle}"
                            if wk and wk.full_bundle
                            else ""
                        ),
                    ]
                )
            if backend is not None:
                workerd_note = (
                    f"workerd server started once in {backend.startup_seconds:.2f} s "
                    "(not counted); wall = Python request round trip, in-DO = migrate() time "
                    "measured inside the DO"
                )
        finally:
            if backend is not None:
                backend.stop()

        # -- checks ----------------------------------------------------------------------
        check_times: dict[str, CheckTimes] = {}
        for target in [*targets, huge]:
            log(f"check list: {target.label} x{repeat}")
            check_times[target.label] = time_checks(target.bundle, repeat)
        if synthetic:  # sizes interleaved: a ratio is as steady as both medians
            # one round's ratio of the largest to the smallest swings by a third on a shared
            # machine (14-19 in one run of 3): at least 5 rounds for the median
            rounds = max(5, repeat)
            log(f"check list: {', '.join(t.label for t in synthetic.values())} x{rounds}")
            check_times.update(
                time_checks_interleaved(
                    {t.label: t.bundle for t in synthetic.values()}, rounds, args.budget or None
                )
            )
        # one plain application of each synthetic bundle, to say how many the check list is
        # worth: SQLite's own growth (a schema reload per ALTER) is in both (the DO costs above
        # measured it up to 300 migrations; larger ones are measured here, 3 times)
        applied = {
            n: (do_costs.get(t.label, {}).get("reapply_ms") or time_reapply(t.bundle, 3)) / 1e3
            for n, t in synthetic.items()
        }

        # -- xdist -------------------------------------------------------------------------
        xdist: XdistTimes | None = None
        xdist_small: XdistTimes | None = None
        xdist_fixed: float | None = None
        if not args.no_xdist:
            runs = max(3, repeat)
            log(f"pytest --dosqlite -n 0 / -n 2 (6 bundles x 150 migrations) x{runs}")
            xdist = time_xdist(tmp, runs, bundles=6, migrations=150)
            log(f"pytest --dosqlite -n 0 / -n 2 (4 bundles x 60 migrations) x{runs}")
            xdist_small = time_xdist(tmp, runs, bundles=4, migrations=60)
            log(f"plain pytest -n 0 / -n 2 on one empty test x{runs}")
            xdist_fixed = time_xdist_fixed(tmp, runs)
        load_after = load()

    # -- report ------------------------------------------------------------------------------
    out: list[str] = []
    out.append(
        f"pytest-dosqlite benchmark: {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, load average before "
        f"{load_before}, after {load_after}; medians"
    )
    if bytecode_note:
        out.append(f"  {bytecode_note}")
    out.append("")
    out.append("Bundles:")
    for target in [*targets, *synthetic.values()]:
        out.append(f"  {target.label}: {target.note}")
    out.append(f"  {huge.label}: {huge.note}, the last one {HUGE_ROWS:,} INSERT statements")
    out.append("")
    out.append("Cost of one Durable Object at head:")
    out.append(
        table(
            do_rows,
            [
                "bundle",
                "migr.",
                "migrated_do µs",
                "untouched µs",
                "new copy µs",
                "reapply ms",
                "workerd wall ms",
                "in-DO ms",
                "reapply/do",
                "workerd/do",
                "",
            ],
        )
    )
    out.append(f"  {workerd_note}")
    out.append("")
    names = runnable_checks()
    labels = list(check_times)
    rows = []
    for name in names:
        rows.append(
            [
                name,
                *(
                    (">=" if name in check_times[lb].stopped else "")
                    + fmt(check_times[lb].per.get(name), ".3f")
                    for lb in labels
                ),
            ]
        )
    rows.append(
        [
            "TOTAL (wall, s)",
            *(
                (">=" if check_times[lb].stopped else "") + fmt(check_times[lb].total, ".2f")
                for lb in labels
            ),
        ]
    )
    rows.append(["runs", *(str(check_times[lb].runs) for lb in labels)])
    out.append("Full built-in check list, seconds per check (fresh ImageCache each run):")
    out.append(table(rows, ["check", *labels]))
    for lb in labels:
        odd = {k: v for k, v in check_times[lb].outcome.items() if v != "pass"}
        if odd:
            out.append(f"  {lb}: " + "; ".join(f"{k} {v}" for k, v in odd.items()))
    out.append(
        "  schema_snapshot compares with a no-op asserter (no reviewed snapshot exists for "
        "these bundles); every other check runs as pytest --dosqlite runs it (fleet checks "
        f"with {os.cpu_count()} worker processes)"
    )
    scaling = {str(n): check_times[f"synthetic-{n}"].total for n in synthetic}
    applications = {n: scaling[str(n)] / applied[n] for n in synthetic if applied[n] > 0}
    stopped = {
        str(n): check_times[f"synthetic-{n}"].stopped
        for n in synthetic
        if check_times[f"synthetic-{n}"].stopped
    }
    if stopped:
        out.append(
            f"  >= : stopped after the {args.budget:g} s budget (--budget), the time shown is "
            "a lower bound: " + "; ".join(f"{n}: {', '.join(v)}" for n, v in stopped.items())
        )
    if len(synthetic) >= 2:
        small, large = min(synthetic), max(synthetic)
        ratio = scaling[str(large)] / scaling[str(small)]
        bound = ">= " if str(large) in stopped else ""
        out.append(f"  time({large}) / time({small}) = {bound}{ratio:.1f} (ratio of the medians)")
        rounds = zip(
            check_times[f"synthetic-{large}"].all_totals,
            check_times[f"synthetic-{small}"].all_totals,
            strict=True,
        )
        out.append("  per round: " + ", ".join(f"{a / b:.1f}" for a, b in rounds))
    if applications:
        out.append(
            "  the check list in plain applications of the bundle (one migrate() of an empty "
            "DO: "
            + ", ".join(f"{applied[n] * 1e3:.0f} ms at {n}" for n in sorted(applied))
            + "): "
            + ", ".join(f"{applications[n]:.0f} at {n}" for n in sorted(applications))
        )
    out.append("")
    for xd in (xdist, xdist_small):
        if xd is None:
            continue
        out.append(
            f"pytest --dosqlite on a project of {xd.bundles} bundles x {xd.migrations} "
            f"migrations (median of {xd.runs}, runs interleaved; -p no:hypothesispytest):"
        )
        out.append(f"  -n 0: {xd.serial:.1f} s ({xd.summary_serial})")
        out.append(f"  -n 2: {xd.parallel:.1f} s ({xd.summary_parallel})")
        out.append(f"  speedup {xd.speedup:.2f}x")
        out.append("")
    if xdist_fixed is not None:
        out.append(
            "xdist's own cost: plain pytest (no plugin) on one empty test takes "
            f"{xdist_fixed:.2f} s longer under -n 2 than under -n 0"
        )
        if xdist_small is not None:
            # the best -n 2 can do: the serial run's work on two cores, plus xdist's own cost
            best = xdist_small.serial / (xdist_small.serial / 2 + xdist_fixed)
            out.append(
                f"  on the {xdist_small.bundles}x{xdist_small.migrations} project that alone "
                f"bounds the speedup at {best:.2f}x, even with two idle cores and no overhead "
                "of the plugin"
            )
        out.append("")
    headline = "karakeep" if "karakeep" in do_costs else "example_project"
    costs = do_costs.get(headline, {})
    result = {
        "bundle": headline,
        "migrations": len(next(t for t in targets if t.label == headline).bundle.migrations),
        "migrated_do_us": rounded(costs.get("migrated_do_us"), 1),
        "migrated_do_untouched_us": rounded(costs.get("migrated_do_untouched_us"), 1),
        "reapply_ms": rounded(costs.get("reapply_ms"), 2),
        "workerd_do_ms": rounded(costs.get("workerd_do_ms"), 2),
        "checks_s": round(check_times[headline].total, 2),
        "huge_file_checks_s": round(check_times[HUGE].total, 2),
        "scaling": {k: round(v, 2) for k, v in scaling.items()},
        "scaling_lower_bound": sorted(stopped, key=int),
        "scaling_in_applications": {str(n): round(v, 1) for n, v in applications.items()},
        "xdist_speedup": round(xdist.speedup, 2) if xdist is not None else None,
        "xdist_project": f"{xdist.bundles}x{xdist.migrations}" if xdist is not None else None,
        "xdist_speedup_4x60": (round(xdist_small.speedup, 2) if xdist_small is not None else None),
        "xdist_fixed_s": rounded(xdist_fixed, 2),
        "load_average": load_after,
        "benchmark_s": round(time.perf_counter() - began, 1),
    }
    out.append(f"benchmark took {result['benchmark_s']} s")
    print("\n".join(out))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
