"""`pytest --dosqlite -n N`: the xdist scheduler keeps a bundle's checks on one worker.

The scheduler's policy is checked in a deterministic simulation of xdist's protocol (a worker runs
an item only once it holds the next one or was told to shut down), side by side with xdist's own
``--dist load``; the end-to-end tests run real workers with pytester.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_dosqlite.registry import CHECK_NAMES, WORKERD_ONLY
from pytest_dosqlite.scheduling import PRIOR_WEIGHTS, BundleScheduling, check_key
from test_plugin import GOOD, make_project

pytest.importorskip("xdist")

CHECKS = [c for c in CHECK_NAMES if c not in WORKERD_ONLY]
HEAVY = {"crash_recovery", "data_preserved", "startup_budget", "concurrent_starts"}


# ------------------------------------------------------------------------------ simulation


class FakeNode:
    """What a scheduler sees of an xdist worker: a queue it sends to, a shutdown flag."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.queue: list[int] = []
        self.sent: list[int] = []
        self.down = False

    @property
    def shutting_down(self) -> bool:
        return self.down

    def send_runtest_some(self, indices: list[int]) -> None:
        self.queue.extend(indices)
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.down = True

    def __repr__(self) -> str:
        return str(self.gateway.id)


class FakeConfig:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.reports: list[Any] = []
        self.hook = SimpleNamespace(pytest_collectreport=lambda report: self.reports.append(report))

    def getvalue(self, name: str) -> Any:
        return ["popen"] * self.workers if name == "tx" else None

    def getoption(self, name: str, default: Any = None) -> Any:
        return default


def project(sizes: list[int], plain: int = 0) -> tuple[list[str], dict[str, int]]:
    """Node ids of ``len(sizes)`` bundles' checks (then ``plain`` other tests), and sizes."""
    ids: list[str] = []
    migrations: dict[str, int] = {}
    for b, size in enumerate(sizes):
        anchor = f"packages/svc{b}/drizzle/meta/_journal.json"
        migrations[anchor] = size
        ids += [f"{anchor}::{c}" for c in CHECKS]
    ids += [f"tests/test_app.py::test_{i}" for i in range(plain)]
    return ids, migrations


def seconds(migrations: dict[str, int]) -> Callable[[str], float]:
    """Durations unlike the priors: heavy checks 50 ms per migration, the rest 1 ms."""

    def duration(nodeid: str) -> float:
        key = check_key(nodeid)
        if key is None:
            return 0.2
        anchor, name = key
        return migrations[anchor] * (0.05 if name in HEAVY else 0.001)

    return duration


@pytest.fixture(params=["bundle", "load"])
def scheduler_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def simulate(
    sched: Any, nodes: list[FakeNode], ids: list[str], duration: Callable[[str], float]
) -> tuple[float, dict[str, list[tuple[float, str]]]]:
    """Run ``ids`` on ``nodes`` as xdist would; (makespan, node -> [(start, nodeid)])."""
    clock: Clock = getattr(sched, "_clock", Clock())
    for node in nodes:
        sched.add_node(node)
    for node in nodes:
        sched.add_node_collection(node, ids)
    sched.schedule()
    ran: dict[str, list[tuple[float, str]]] = {str(n): [] for n in nodes}
    running: dict[FakeNode, tuple[float, int]] = {}
    while True:
        if sched.tests_finished:  # what DSession does then
            for node in nodes:
                node.shutdown()
        for node in nodes:
            if node not in running and node.queue and (len(node.queue) >= 2 or node.down):
                index = node.queue.pop(0)
                running[node] = (clock.now + duration(ids[index]), index)
                ran[str(node)].append((clock.now, ids[index]))
        if not running:
            break
        node, (end, index) = min(running.items(), key=lambda kv: (kv[1][0], str(kv[0])))
        clock.now = end
        del running[node]
        sched.mark_test_complete(node, index, duration(ids[index]))
    assert not any(n.queue for n in nodes), "items left in a queue: the run would hang"
    assert sched.tests_finished
    done = sorted(i for r in ran.values() for _, i in r)
    assert done == sorted(ids), "every item runs exactly once"
    return clock.now, ran


class Facts:
    """The controller session's side: migrations and image build seconds per bundle."""

    def __init__(self, migrations: dict[str, int], images: dict[str, float]) -> None:
        self.migrations = migrations
        self.images = images

    def migrations_of(self, anchor: str) -> int:
        return self.migrations[anchor]

    def images_seconds_of(self, anchor: str) -> float | None:
        return self.images.get(anchor)


def make(
    kind: str, workers: int, migrations: dict[str, int], images: dict[str, float] | None = None
) -> tuple[Any, list[FakeNode]]:
    config = FakeConfig(workers)
    nodes = [FakeNode(f"gw{i}") for i in range(workers)]
    if kind == "load":
        from xdist.scheduler import LoadScheduling

        return LoadScheduling(config, SimpleNamespace(loadsched=lambda *a: None)), nodes
    facts = Facts(migrations, images or {})
    return BundleScheduling(config, None, facts, clock=Clock()), nodes  # type: ignore[arg-type]


def bundles_per_worker(ran: dict[str, list[tuple[float, str]]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for node, items in ran.items():
        for _, nodeid in items:
            key = check_key(nodeid)
            if key is not None:
                out.setdefault(key[0], set()).add(node)
    return out


def test_check_key_recognises_check_items_only() -> None:
    assert check_key("drizzle/meta/_journal.json::lint") == ("drizzle/meta/_journal.json", "lint")
    assert check_key("app/drizzle/migrations.js::crash_recovery") == (
        "app/drizzle/migrations.js",
        "crash_recovery",
    )
    assert check_key("drizzle/meta/_journal.json::not_a_check") is None
    assert check_key("tests/test_x.py::lint") is None
    assert check_key("tests/test_x.py::TestA::lint") is None
    assert check_key("dosqlite-load[x]") is None
    assert check_key("db/drizzle::lint") == ("db/drizzle", "lint")  # anchored on the folder


def test_each_bundle_stays_on_one_worker_unlike_dist_load() -> None:
    ids, migrations = project([60, 60, 60, 60])
    duration = seconds(migrations)
    serial = sum(duration(i) for i in ids)

    sched, nodes = make("bundle", 2, migrations)
    ours, ran = simulate(sched, nodes, ids, duration)
    assert all(len(w) == 1 for w in bundles_per_worker(ran).values())  # images built once
    assert ours <= serial / 2 * 1.05

    sched, nodes = make("load", 2, migrations)
    theirs, ran = simulate(sched, nodes, ids, duration)
    # xdist's chunks: some bundle's images get built on both workers
    assert any(len(w) > 1 for w in bundles_per_worker(ran).values())
    assert ours <= theirs


def test_one_bundle_still_uses_every_worker() -> None:
    ids, migrations = project([100])
    duration = seconds(migrations)
    serial = sum(duration(i) for i in ids)
    sched, nodes = make("bundle", 2, migrations)
    makespan, ran = simulate(sched, nodes, ids, duration)
    assert all(ran[str(n)] for n in nodes)
    # the four heavy checks are split between the two workers
    heavy = {n: [i for _, i in items if i.rpartition("::")[2] in HEAVY] for n, items in ran.items()}
    assert sorted(len(v) for v in heavy.values()) == [2, 2]
    assert makespan <= serial * 0.55


def test_longest_first_and_a_large_bundle_shared() -> None:
    ids, migrations = project([10, 80, 30])
    duration = seconds(migrations)
    sched, nodes = make("bundle", 2, migrations)
    makespan, ran = simulate(sched, nodes, ids, duration)
    # the largest bundle starts first, with one of its heaviest checks
    top = max(PRIOR_WEIGHTS.values())
    anchor, name = check_key(ran["gw0"][0][1])  # type: ignore[misc]
    assert anchor == "packages/svc1/drizzle/meta/_journal.json"
    assert PRIOR_WEIGHTS[name] == top
    # on each worker a bundle's heavy checks come before its light ones
    for items in ran.values():
        per_bundle: dict[str, list[str]] = {}
        for _, nodeid in items:
            anchor, name = check_key(nodeid)  # type: ignore[misc]
            per_bundle.setdefault(anchor, []).append(name)
        for names in per_bundle.values():
            flags = [n in HEAVY for n in names]
            assert flags == sorted(flags, reverse=True), names
    # the large bundle alone is more than half the work: both workers take part in it
    assert len(bundles_per_worker(ran)["packages/svc1/drizzle/meta/_journal.json"]) == 2
    serial = sum(duration(i) for i in ids)
    assert makespan <= serial / 2 * 1.05
    sched, nodes = make("load", 2, migrations)
    theirs, _ = simulate(sched, nodes, ids, duration)
    assert makespan < theirs


def test_a_bundle_is_split_only_when_that_pays_for_its_images() -> None:
    ids, migrations = project([40, 40, 40])
    duration = seconds(migrations)
    # building a bundle's images takes long here: the third bundle stays on one worker
    images = dict.fromkeys(migrations, 5.0)
    sched, nodes = make("bundle", 2, migrations, images)
    slow_images, ran = simulate(sched, nodes, ids, duration)
    assert all(len(w) == 1 for w in bundles_per_worker(ran).values())
    # cheap images: the workers share the third bundle and finish sooner
    images = dict.fromkeys(migrations, 0.01)
    sched, nodes = make("bundle", 2, migrations, images)
    cheap_images, ran = simulate(sched, nodes, ids, duration)
    assert sorted(len(w) for w in bundles_per_worker(ran).values()) == [1, 1, 2]
    assert cheap_images < slow_images


def test_scheduler_learns_durations_as_the_run_goes() -> None:
    # lint is the slowest check here, unlike its prior weight: once the first bundle has
    # reported it, the second bundle runs its lint first
    ids, migrations = project([20, 20])

    def duration(nodeid: str) -> float:
        return 5.0 if nodeid.endswith("::lint") else 0.01

    sched, nodes = make("bundle", 1, migrations)
    _, ran = simulate(sched, nodes, ids, duration)
    order = [i.rpartition("::")[2] for _, i in ran["gw0"]]
    first, second = order[: len(CHECKS)], order[len(CHECKS) :]
    assert first.index("lint") >= 8  # the priors put the heavy checks first
    # (one item of the second bundle is already queued when lint's duration arrives)
    assert second.index("lint") <= 1


def test_other_tests_are_spread_over_the_workers_and_run_once() -> None:
    ids, migrations = project([30, 30], plain=40)
    sched, nodes = make("bundle", 2, migrations)
    _, ran = simulate(sched, nodes, ids, seconds(migrations))
    for items in ran.values():
        assert any(check_key(i) is None for _, i in items)


def test_a_crashed_worker_hands_its_items_back() -> None:
    ids, migrations = project([40, 40])
    sched, nodes = make("bundle", 2, migrations)
    for node in nodes:
        sched.add_node(node)
    for node in nodes:
        sched.add_node_collection(node, ids)
    sched.schedule()
    gw0, gw1 = nodes
    held = list(gw0.queue)
    assert len(held) == 2
    crashed = sched.remove_node(gw0)
    assert crashed == ids[held[0]]
    # gw1 finishes everything else, gw0's bundle included
    done = [crashed]
    while not sched.tests_finished:
        if not gw1.down and len(gw1.queue) < 2:
            break
        index = gw1.queue.pop(0)
        done.append(ids[index])
        sched.mark_test_complete(gw1, index, 0.01)
    done += [ids[i] for i in gw1.queue]
    assert sorted(done) == sorted(ids)


def test_different_collections_are_reported_not_scheduled() -> None:
    ids, migrations = project([5])
    config = FakeConfig(2)
    sched = BundleScheduling(config, None, Facts(migrations, {}))  # type: ignore[arg-type]
    a, b = FakeNode("gw0"), FakeNode("gw1")
    sched.add_node(a)
    sched.add_node(b)
    sched.add_node_collection(a, ids)
    sched.add_node_collection(b, ids[:-1])
    sched.schedule()
    assert not a.sent and not b.sent
    assert config.reports and config.reports[0].outcome == "failed"


# ------------------------------------------------------------------------------ end to end

RECORDER = """\
import json
from pytest_dosqlite.images import default_cache

RAN = []

def worker(config):
    # not PYTEST_XDIST_WORKER: the test itself may run under xdist, and the variable is inherited
    return getattr(config, "workerinput", {}).get("workerid")

def pytest_runtest_logreport(report):
    if report.when == "call":
        RAN.append(report.nodeid)

def pytest_unconfigure(config):  # after the terminal summary
    name = worker(config)
    if name:
        with open(f"ran-{name}.json", "w") as f:
            json.dump({"ran": RAN, "builds": default_cache().builds}, f)
"""

CHECKS_E2E = "bundle_integrity,upgrade_from_empty,idempotent,upgrade_from_every_version,lint"


def monorepo(root: Path, bundles: int) -> list[Path]:
    out = []
    for b in range(bundles):
        pkg = root / "packages" / f"svc{b}"
        pkg.mkdir(parents=True)
        more = [
            (f"{i:04d}_t{i}", f"CREATE TABLE `t{b}_{i}` (`id` integer PRIMARY KEY);")
            for i in range(2, 2 + b)
        ]
        make_project(pkg, GOOD + more)
        out.append(pkg)
    (root / "conftest.py").write_text(RECORDER)
    return out


def test_xdist_summary_says_where_a_fresh_do_stops(pytester: pytest.Pytester) -> None:
    custom = ("0002_custom", "-- Custom SQL migration file, put your code below! --")
    for b, migrations in enumerate([GOOD, [*GOOD, custom]]):
        pkg = pytester.path / "packages" / f"svc{b}"
        pkg.mkdir(parents=True)
        make_project(pkg, migrations)
    result = pytester.runpytest_subprocess(
        "--dosqlite",
        "-p",
        "no:cacheprovider",
        "--dosqlite-checks-include=upgrade_from_empty",
        "-n",
        "2",
    )
    result.assert_outcomes(passed=1, failed=1)
    # learned on the workers, printed by the controller (which builds no image itself)
    result.stdout.fnmatch_lines(
        [
            "packages/svc0/drizzle: 2 migrations, 2 tables, checks 1 passed*",
            "packages/svc1/drizzle: 3 migrations, a fresh DO stops at 0002_custom, "
            "2 tables before it, checks 0 passed, 1 failed*",
        ]
    )


def test_xdist_counts_the_checks_of_a_bundle_file_named_on_the_command_line(
    pytester: pytest.Pytester,
) -> None:
    # items hang from the file named (drizzle/0001_posts.sql::...): the controller, which never
    # collected them, still knows their bundle
    make_project(pytester.path)
    result = pytester.runpytest_subprocess(
        "--dosqlite",
        "-p",
        "no:cacheprovider",
        "--dosqlite-checks-include=upgrade_from_empty,idempotent",
        "-n",
        "2",
        "drizzle/0001_posts.sql",
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["drizzle: 2 migrations, 2 tables, checks 2 passed, 0 failed*"])


def test_xdist_run_keeps_bundles_on_workers_and_gathers_results(pytester: pytest.Pytester) -> None:
    monorepo(pytester.path, 4)
    result = pytester.runpytest_subprocess(
        "--dosqlite",
        "-p",
        "no:cacheprovider",
        f"--dosqlite-checks-include={CHECKS_E2E}",
        "--dosqlite-report=out.md",
        "-n",
        "2",
        "-v",
    )
    result.assert_outcomes(passed=20)
    out = result.stdout.str()
    assert "scheduling tests via BundleScheduling" in out
    # results, tables and the report are gathered on the controller
    for b in range(4):
        result.stdout.fnmatch_lines(
            [f"packages/svc{b}/drizzle: {2 + b} migrations, {2 + b} tables, checks 5 passed*"]
        )
    report = (pytester.path / "out.md").read_text()
    for b in range(4):
        assert f"packages/svc{b}/drizzle" in report
    assert report.count("✅ passed") >= 20
    # every check ran once, on the workers
    runs = {
        p.stem.removeprefix("ran-"): json.loads(p.read_text())
        for p in pytester.path.glob("ran-*.json")
    }
    assert set(runs) == {"gw0", "gw1"}
    ran = [i for r in runs.values() for i in r["ran"]]
    assert sorted(ran) == sorted(set(ran)) and len(ran) == 20
    # images: a worker builds each version of a bundle it checks at most once, and only of
    # the bundles it checks (which bundles go where depends on timing: see the simulations)
    size = {f"packages/svc{b}/drizzle/meta/_journal.json": 2 + b for b in range(4)}
    for r in runs.values():
        mine = {i.split("::")[0] for i in r["ran"]}
        assert 0 < r["builds"] <= sum(size[a] for a in mine), r
    assert sum(r["builds"] for r in runs.values()) >= sum(size.values())


def test_other_dist_modes_stay_xdist(pytester: pytest.Pytester) -> None:
    monorepo(pytester.path, 2)
    result = pytester.runpytest_subprocess(
        "--dosqlite",
        "-p",
        "no:cacheprovider",
        "--dosqlite-checks-include=bundle_integrity,upgrade_from_empty",
        "-n",
        "2",
        "--dist",
        "loadfile",
        "-v",
    )
    result.assert_outcomes(passed=4)
    assert "scheduling tests via LoadFileScheduling" in result.stdout.str()


def test_without_xdist_nothing_is_registered(pytester: pytest.Pytester) -> None:
    monorepo(pytester.path, 1)
    result = pytester.runpytest_subprocess(
        "--dosqlite",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "--dosqlite-checks-include=bundle_integrity,upgrade_from_empty",
    )
    result.assert_outcomes(passed=2)
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_no_bundle_under_xdist_is_one_usage_error(pytester: pytest.Pytester) -> None:
    # the controller discovers after its workers started: the error still ends the run cleanly
    result = pytester.runpytest_subprocess("--dosqlite", "-p", "no:cacheprovider", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest --dosqlite found no drizzle bundle under*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
