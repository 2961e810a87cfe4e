"""pytest-xdist scheduling for ``--dosqlite``: a bundle's checks stay together, longest first.

Why: a worker process keeps what it learned about a bundle (the version images of images.py,
the seed caches of seed.py) for all the checks it runs on it, and the heavy checks walk every
version. xdist's default ``--dist load`` hands consecutive chunks of the collection to whichever
worker asks, so the workers build the images of most bundles each (4 bundles, 2 workers: 7 of
8 pairs), and the order it sends in (collection order: the heavy checks of the last bundle
last) can leave one worker on a long check while the others idle.

:class:`BundleScheduling` replaces ``--dist load`` (what ``-n N`` uses) when ``--dosqlite`` is on;
any other ``--dist`` mode is left to xdist. A worker that needs work gets, in this order:

* the heaviest check of a bundle another worker has, if that worker would still be at it when
  all the rest of the work could be done, even counting the price of building the bundle's
  images once more (a bottleneck: one bundle larger than a worker's share, or the last one);
* the heaviest check of a bundle it has started (a bundle's checks stay on one worker);
* the bundle nobody started with the most work (longest processing time first: the heavy checks
  of the largest bundles start first, light checks fill the end);
* other tests (not dosqlite checks), in collection order, in chunks as ``--dist load`` does;
* at the end, a check of a bundle another worker has, if helping beats waiting for it.

Estimates are seconds per migration per check, learned from the durations the workers report
as the run goes (before a check's first report, a prior weight scaled like the checks seen),
and the image build time the checks report (``dosqlite_images_seconds``, see collect.py).

A worker runs an item only once it holds the next one (or was told to shut down), so every
worker is kept at two items sent and not finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pytest

if TYPE_CHECKING:
    from .session import DosqliteSession

#: xdist ships no type information: its worker controllers and log producers are duck-typed
WorkerController = Any
Producer = Any

__all__ = ["BundleFacts", "BundleScheduling", "XdistHooks", "check_key"]

#: relative cost per migration of each check before its first duration is known: the checks
#: that start processes or seed data at every version are heavy, the rest read text or one image
PRIOR_WEIGHTS: dict[str, float] = {
    "crash_recovery": 20.0,
    "data_preserved": 20.0,
    "startup_budget": 20.0,
    "concurrent_starts": 10.0,
    "do_contract": 10.0,
    "upgrade_from_every_version": 3.0,
    "upgrade_from_empty": 1.0,
    "schema_snapshot": 1.0,
    "matches_drizzle_snapshot": 1.0,
    "lint": 1.0,
    "idempotent": 0.5,
    "bundle_integrity": 0.5,
    "wrangler_contract": 0.2,
}
#: seconds per migration of weight 1 until any check reported a duration
DEFAULT_SCALE = 0.002
#: seconds a test that is not a dosqlite check is assumed to take until some reported theirs
DEFAULT_PLAIN_SECONDS = 0.05
#: the check whose prior stands for building a bundle's images until a build time is known
WARMUP_CHECK = "upgrade_from_empty"
#: what a worker pays to start on a bundle, in image build times: the images, and what the
#: checks derive from them per process (seed plans, parsed statements; measured about as much)
WARMUP_FACTOR = 2.0

#: relative change of a check's estimate that re-sorts the queues
_REORDER = 0.25
#: items a worker holds: the one it runs and the next (it runs one only once it has the next)
_HOLD = 2


def check_key(nodeid: str) -> tuple[str, str] | None:
    """``(bundle anchor path, check name)`` of a dosqlite check's node id, else None.

    Check items hang from a bundle file (collect.anchor_of: the journal, ``migrations.js``, a
    ``migration.sql``, or the bundle folder itself), never from a Python module.
    """
    from .registry import CHECK_SOURCES

    path, sep, name = nodeid.rpartition("::")
    if not sep or name not in CHECK_SOURCES or "::" in path or path.endswith(".py"):
        return None
    return path, name


class BundleFacts(Protocol):
    """What the scheduler asks the controller's session about a bundle (by anchor path)."""

    def migrations_of(self, anchor: str) -> int: ...

    def images_seconds_of(self, anchor: str) -> float | None: ...


class _NoFacts:
    def migrations_of(self, anchor: str) -> int:
        return 1

    def images_seconds_of(self, anchor: str) -> float | None:
        return None


@dataclass
class _Group:
    """The checks of one bundle."""

    key: str
    migrations: int
    #: item indices not sent yet, heaviest first (re-sorted when estimates change)
    todo: list[int] = field(default_factory=list)
    #: workers that ran or run checks of this bundle (they have its images)
    owners: list[Any] = field(default_factory=list)
    #: estimated seconds of ``todo``, as of ``sorted_at``
    todo_cost: float = 0.0
    #: ``_Costs.version`` when ``todo`` was last sorted and costed (-1: never)
    sorted_at: int = -1


class _Costs:
    """Estimated seconds of an item, learned from the durations workers report.

    ``version`` changes when an estimate moved enough to reorder work (a check's first report,
    or its rate off by more than :data:`_REORDER` from what the queues were sorted by), not on
    every report: sorting every bundle's queue on every report would cost the controller more
    than it saves.
    """

    def __init__(self) -> None:
        #: check name -> (seconds, migrations) summed over completed items
        self.learned: dict[str, tuple[float, int]] = {}
        self.plain: tuple[float, int] = (0.0, 0)
        self.version = 0
        #: check name -> seconds per migration, as of ``version``
        self._rates: dict[str, float] = {}

    def rate(self, name: str) -> float:
        """Seconds per migration of check ``name`` (as of ``version``)."""
        cached = self._rates.get(name)
        if cached is None:
            cached = self._rates[name] = self._current(name)
        return cached

    def _current(self, name: str) -> float:
        hit = self.learned.get(name)
        if hit is not None and hit[1] > 0:
            return hit[0] / hit[1]
        return PRIOR_WEIGHTS.get(name, 1.0) * self._scale()

    def _scale(self) -> float:
        """Seconds per migration of prior weight 1, from the checks with known durations."""
        ratios = sorted(
            (s / n) / PRIOR_WEIGHTS.get(name, 1.0)
            for name, (s, n) in self.learned.items()
            if n > 0 and s > 0
        )
        return ratios[len(ratios) // 2] if ratios else DEFAULT_SCALE

    def check(self, name: str, migrations: int) -> float:
        return self.rate(name) * max(1, migrations)

    def plain_seconds(self) -> float:
        s, n = self.plain
        return s / n if n else DEFAULT_PLAIN_SECONDS

    def add(self, name: str | None, migrations: int, seconds: float) -> None:
        if name is None:
            s, n = self.plain
            self.plain = (s + max(0.0, seconds), n + 1)
            return
        first = name not in self.learned
        s, n = self.learned.get(name, (0.0, 0))
        self.learned[name] = (s + max(0.0, seconds), n + max(1, migrations))
        before = self._rates.get(name)
        now = self._current(name)
        if first or before is None or abs(now - before) > _REORDER * max(before, 1e-9):
            self.version += 1
            self._rates.clear()


class BundleScheduling:
    """An xdist scheduler (``xdist.scheduler.Scheduling``): see the module docstring."""

    def __init__(
        self,
        config: pytest.Config,
        log: Producer | None = None,
        facts: BundleFacts | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from xdist.workermanage import parse_tx_spec_config  # type: ignore[import-untyped]

        self.config = config
        self.numnodes = len(parse_tx_spec_config(config))
        self.log: Any = log.bundlesched if log is not None else (lambda *args: None)
        self.maxschedchunk: int | None = config.getoption("maxschedchunk", None)
        self.facts: BundleFacts = facts if facts is not None else _NoFacts()
        self.node2collection: dict[WorkerController, list[str]] = {}
        self.node2pending: dict[WorkerController, list[int]] = {}
        self.collection: list[str] | None = None
        self.costs = _Costs()
        self.groups: dict[str, _Group] = {}
        #: the groups with checks not sent yet, in collection order
        self._open: list[_Group] = []
        #: index -> (group, check name) for check items
        self.item_group: dict[int, tuple[_Group, str]] = {}
        #: tests that are not dosqlite checks, not sent yet, in collection order
        self.plain: list[int] = []
        self._clock = clock
        #: when the item a worker runs now (its first pending one) started
        self._started: dict[WorkerController, float] = {}

    # ------------------------------------------------------------------ the Scheduling protocol
    @property
    def nodes(self) -> list[WorkerController]:
        return list(self.node2pending)

    @property
    def collection_is_completed(self) -> bool:
        return len(self.node2collection) >= self.numnodes

    @property
    def tests_finished(self) -> bool:
        if not self.collection_is_completed or self._has_todo():
            return False
        return all(len(p) < _HOLD for p in self.node2pending.values())

    @property
    def has_pending(self) -> bool:
        return self._has_todo() or any(self.node2pending.values())

    def add_node(self, node: WorkerController) -> None:
        assert node not in self.node2pending
        self.node2pending[node] = []

    def add_node_collection(self, node: WorkerController, collection: Sequence[str]) -> None:
        assert node in self.node2pending
        # a node added later (a restarted worker) must collect what the others did
        if self.collection is not None and list(collection) != self.collection:
            other = next(iter(self.node2collection))
            self.log(_diff(self.collection, list(collection), other, node))
            return
        self.node2collection[node] = list(collection)

    def mark_test_complete(
        self, node: WorkerController, item_index: int, duration: float = 0
    ) -> None:
        self.node2pending[node].remove(item_index)
        self._started[node] = self._clock()  # its next item starts now
        entry = self.item_group.get(item_index)
        if entry is None:
            self.costs.add(None, 0, duration)
        else:
            group, name = entry
            self.costs.add(name, group.migrations, duration)
        self._fill_all(first=node)

    def mark_test_pending(self, item: str) -> None:
        assert self.collection is not None
        self._requeue([self.collection.index(item)])
        self._fill_all()

    def remove_pending_tests_from_node(
        self, node: WorkerController, indices: Sequence[int]
    ) -> None:
        raise NotImplementedError()  # this scheduler never sends "steal"

    def remove_node(self, node: WorkerController) -> str | None:
        pending = self.node2pending.pop(node)
        for group in self.groups.values():
            if node in group.owners:
                group.owners.remove(node)
        if not pending:
            return None
        assert self.collection is not None
        crashitem = self.collection[pending.pop(0)]
        self._requeue(pending)
        self._fill_all()
        return crashitem

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:  # a node added later: give it work
            self._fill_all()
            return
        if not self._same_collections():
            self.log("**Different tests collected, aborting run**")
            return
        self.collection = next(iter(self.node2collection.values()))
        if self.maxschedchunk is None:
            self.maxschedchunk = len(self.collection)
        for index, nodeid in enumerate(self.collection):
            key = check_key(nodeid)
            if key is None:
                self.plain.append(index)
                continue
            anchor, name = key
            group = self.groups.get(anchor)
            if group is None:
                group = self.groups[anchor] = _Group(
                    anchor, max(1, self.facts.migrations_of(anchor))
                )
            group.todo.append(index)
            self.item_group[index] = (group, name)
        self._open = list(self.groups.values())
        self._fill_all()

    # ------------------------------------------------------------------ choosing work
    def _has_todo(self) -> bool:
        return bool(self.plain) or any(g.todo for g in self._open)

    def _cost(self, index: int) -> float:
        entry = self.item_group.get(index)
        if entry is None:
            return self.costs.plain_seconds()
        group, name = entry
        return self.costs.check(name, group.migrations)

    def _refresh(self, group: _Group) -> None:
        """Heaviest first by the current estimates (stable: ties keep collection order)."""
        if group.sorted_at != self.costs.version:
            costs = {i: self._cost(i) for i in group.todo}
            group.todo.sort(key=lambda i: -costs[i])
            group.todo_cost = sum(costs.values())
            group.sorted_at = self.costs.version

    def _in_hand(self) -> tuple[float, dict[int, tuple[float, int]]]:
        """What the workers hold: estimated seconds left in all, and per group (by id) the
        seconds left and how many workers hold some of it."""
        now = self._clock()
        total = 0.0
        per: dict[int, tuple[float, int]] = {}
        for node, pending in self.node2pending.items():
            seen: set[int] = set()
            for position, index in enumerate(pending):
                left = self._cost(index)
                if position == 0:  # running since its predecessor finished
                    left = max(0.0, left - (now - self._started.get(node, now)))
                total += left
                entry = self.item_group.get(index)
                if entry is not None:
                    key = id(entry[0])
                    seconds, workers = per.get(key, (0.0, 0))
                    per[key] = (seconds + left, workers + (key not in seen))
                    seen.add(key)
        return total, per

    def _pick(self, node: WorkerController) -> list[int]:
        """The next items for ``node`` (empty: nothing worth sending it).

        In this order: the heaviest check of a bundle another worker has that it would still be
        at when all the other work could be done (a bottleneck: one large bundle, or the last
        one); the heaviest check of the node's own bundles; the largest bundle nobody started;
        other tests; at the end, another worker's bundle when helping beats waiting for it
        even after building its images once more.
        """
        self._open = [g for g in self._open if g.todo]
        for group in self._open:
            self._refresh(group)
        held, per = self._in_hand()
        workers = sum(1 for n in self.node2pending if not n.shutting_down) or 1
        everything = held + sum(g.todo_cost for g in self._open)
        share = (everything + len(self.plain) * self.costs.plain_seconds()) / workers
        warmup = self._warmups()
        foreign: list[tuple[float, _Group]] = []  # (seconds until its workers are done, group)
        own: _Group | None = None
        fresh: _Group | None = None
        for group in self._open:
            if node in group.owners:
                if own is None or self._cost(group.todo[0]) > self._cost(own.todo[0]):
                    own = group
            elif not group.owners:
                if fresh is None or group.todo_cost > fresh.todo_cost:
                    fresh = group
            else:
                seconds, holders = per.get(id(group), (0.0, 0))
                foreign.append(((group.todo_cost + seconds) / max(1, holders), group))
        best: tuple[float, _Group] | None = None
        for finish, group in foreign:
            excess = finish - share - warmup(group)
            if excess > 0 and (best is None or excess > best[0]):
                best = (excess, group)
        if best is None:
            group_or_none = own or fresh
            if group_or_none is not None:
                return [self._take(group_or_none, node)]
            if self.plain:
                return self._take_plain()
            for finish, group in foreign:
                gain = finish - warmup(group) - self._cost(group.todo[0])
                if gain > 0 and (best is None or gain > best[0]):
                    best = (gain, group)
        if best is None:
            return []
        return [self._take(best[1], node)]

    def _warmups(self) -> Callable[[_Group], float]:
        """What starting on a bundle costs a worker that has not run any of its checks."""
        rate: list[float] = []  # per migration, computed when first needed

        def warmup(group: _Group) -> float:
            built = self.facts.images_seconds_of(group.key)
            if built is None:  # per migration as in the bundles built so far, else the prior
                if not rate:
                    known = sorted(
                        seconds / g.migrations
                        for g in self.groups.values()
                        if (seconds := self.facts.images_seconds_of(g.key)) is not None
                    )
                    rate.append(known[len(known) // 2] if known else self.costs.rate(WARMUP_CHECK))
                built = rate[0] * group.migrations
            return WARMUP_FACTOR * built

        return warmup

    def _take(self, group: _Group, node: WorkerController) -> int:
        if node not in group.owners:
            group.owners.append(node)
        index = group.todo.pop(0)
        group.todo_cost = max(0.0, group.todo_cost - self._cost(index))
        return index

    def _take_plain(self) -> list[int]:
        nodes = max(1, len(self.node2pending))
        chunk = max(1, len(self.plain) // nodes // 4)
        if self.maxschedchunk is not None:
            chunk = min(chunk, max(1, self.maxschedchunk))
        taken, self.plain[:chunk] = self.plain[:chunk], []
        return taken

    def _requeue(self, indices: Sequence[int]) -> None:
        """Items a worker will not run (it crashed): back to the front of their queues."""
        plain: list[int] = []
        for index in indices:
            entry = self.item_group.get(index)
            if entry is None:
                plain.append(index)
            else:
                group = entry[0]
                group.todo.insert(0, index)
                group.sorted_at = -1
                if group not in self._open:
                    self._open.append(group)
        self.plain[:0] = plain

    def _fill_all(self, first: WorkerController | None = None) -> None:
        order = list(self.node2pending)
        if first is not None and first in self.node2pending:
            order.remove(first)
            order.insert(0, first)
        for node in order:
            self._fill(node)

    def _fill(self, node: WorkerController) -> None:
        """Keep ``node`` holding two items; shut it down when nothing is worth sending it."""
        if node.shutting_down or self.collection is None:
            return
        pending = self.node2pending[node]
        while len(pending) < _HOLD:
            indices = self._pick(node)
            if not indices:
                break
            if not pending:
                self._started[node] = self._clock()
            pending.extend(indices)
            node.send_runtest_some(indices)
        if len(pending) < _HOLD:
            # it runs what it holds and leaves: whatever is left belongs to busier workers,
            # for whom it is cheaper to finish it than for this one to start on it
            node.shutdown()

    def _same_collections(self) -> bool:
        items = list(self.node2collection.items())
        first_node, first = items[0]
        same = True
        for node, collection in items[1:]:
            msg = _diff(first, collection, first_node, node)
            if msg:
                same = False
                self.log(msg)
                report = pytest.CollectReport(
                    nodeid=node.gateway.id, outcome="failed", longrepr=msg, result=[]
                )
                self.config.hook.pytest_collectreport(report=report)
        return same


def _diff(a: list[str], b: list[str], node_a: WorkerController, node_b: WorkerController) -> str:
    from xdist.report import report_collection_diff  # type: ignore[import-untyped]

    return str(report_collection_diff(a, b, node_a.gateway.id, node_b.gateway.id) or "")


class XdistHooks:
    """Registered only when pytest-xdist is installed (its hooks are unknown otherwise)."""

    def __init__(self, dsession: DosqliteSession) -> None:
        self.dsession = dsession

    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Producer) -> Any:
        ds = self.dsession
        if not ds.settings.enabled or config.getvalue("dist") != "load":
            return None  # xdist's own choice
        return BundleScheduling(config, log, ds)
