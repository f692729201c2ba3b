"""What the stats show of comparisons, kept current write by write (writer thread): counts by status, the averages of
the completed, the number of models, the activity of those finished within the activity window, and the offsets'
total.

A write of a comparison gives its row as it was and as it is (``TallyRow``, from the reads the write makes anyway:
``records.current_status`` before, the ``RETURNING`` of its insert or update after); once its transaction has
committed, ``ComparisonTally.apply`` takes each old row's part out and puts the new one's in: O(1) a write (O(models)
for the models it names), whatever the table holds. A transaction that rolled back is never applied, so nothing is
undone. The tally is built in one pass over the table at start and after a step of the wall clock moved stamped
times (``changed``).

The activity window is counted by whole seconds of ``finished_ms``: a second's outcomes are summed in one bucket,
and buckets older than the window are dropped as it slides (taken out of the running sum of those held, so a build
adds nothing up), so memory is bounded by the window's seconds, not by the comparisons.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from tsstats.comparisons.validation import FINISHED
from tsstats.core.units import MS_PER_S
from tsstats.figures import formulas
from tsstats.figures.moment import ComparisonCounts, ComparisonFigures
from tsstats.storage.sql import Connection, first

TALLY_COLUMNS = ("status, models, accuracy, speed, latency_ms, items, started_ms, finished_ms, created_ms, fair, "
                 "energy_kwh, carbon_kg, embodied_g")
OUTCOME_FIELDS = len(formulas.Outcomes.__dataclass_fields__)


@dataclass(frozen=True)
class TallyRow:
    """What the stats and the models table count of one comparison."""

    status: str
    models: tuple[str, ...]
    accuracy: float | None
    speed: float | None
    latency_ms: float | None
    items: float | None
    started_ms: int | None
    finished_ms: int | None
    created_ms: int = 0
    fair: bool | None = None
    energy_kwh: float | None = None
    carbon_kg: float | None = None
    embodied_g: float | None = None

    @classmethod
    def of(cls, row: tuple) -> TallyRow:
        """From a row of ``TALLY_COLUMNS``."""
        status, models, *rest = row
        return cls(status, tuple(models), *rest)

    def outcome(self) -> tuple[float, ...] | None:
        """Its part of ``formulas.Outcomes`` once finished (field by field), else None."""
        if self.status not in FINISHED or self.finished_ms is None:
            return None
        completed = self.status == "completed"
        ran = completed and self.started_ms is not None and self.finished_ms > self.started_ms
        return (1.0, float(self.latency_ms is not None), self.latency_ms or 0.0, float(completed),
                float(self.status == "failed"),
                (self.accuracy or 0.0) if completed else 0.0, float(completed and self.accuracy is not None),
                (self.speed or 0.0) if completed else 0.0, float(completed and self.speed is not None),
                (self.items or 0.0) if ran else 0.0,
                (self.finished_ms - (self.started_ms or 0)) / MS_PER_S if ran and self.items is not None else 0.0)


class ComparisonTally:
    """What the stats show of comparisons and offsets (writer thread)."""

    def __init__(self, activity_window_s: float):
        self.window_ms = activity_window_s * MS_PER_S
        self.statuses: Counter[str] = Counter()
        self.verdicts: Counter[str] = Counter()  # the finished by verdict: fair, unfair, unjudged
        self.models: Counter[str] = Counter()
        self.accuracy = [0.0, 0]  # sum and count over the completed that reported one
        self.speed = [0.0, 0]
        self.seconds: dict[int, list[float]] = {}  # finished second -> its outcomes, field by field
        self.held = [0.0] * OUTCOME_FIELDS  # the sum over the seconds held, kept as they change
        self.offsets_kg = 0.0
        self.stale = True  # rebuild from the table before the next figures
        self.rebuilds = 0  # passes over the table since start
        self.shown = ComparisonFigures()

    # -- writes ---------------------------------------------------------------------------------------------
    def apply(self, rows: list[tuple[TallyRow | None, TallyRow | None]], offsets_kg: float) -> None:
        """A committed transaction's comparisons, each as it was and as it is, and the offsets it added."""
        for before, after in rows:
            self._count(before, -1)
            self._count(after, +1)
        self.offsets_kg += offsets_kg

    def changed(self) -> None:
        """Rows changed outside the write path (a step of the wall clock moved them): rebuild."""
        self.stale = True

    def _count(self, row: TallyRow | None, sign: int) -> None:
        if row is None:
            return
        self.statuses[row.status] += sign
        if row.status in FINISHED:
            self.verdicts[verdict(row.fair)] += sign
        for model in set(row.models):
            self.models[model] += sign
            if self.models[model] <= 0:
                del self.models[model]
        if row.status == "completed":
            for total, value in ((self.accuracy, row.accuracy), (self.speed, row.speed)):
                if value is not None:
                    total[0] += sign * value
                    total[1] += sign
        self._count_outcome(row, sign)

    def _count_outcome(self, row: TallyRow, sign: int) -> None:
        outcome = row.outcome()
        if outcome is not None:
            assert row.finished_ms is not None  # an outcome is a finished row's
            second = self.seconds.setdefault(row.finished_ms // 1000, [0.0] * OUTCOME_FIELDS)
            for index, value in enumerate(outcome):
                second[index] += sign * value
                self.held[index] += sign * value

    # -- figures --------------------------------------------------------------------------------------------
    def refresh(self, con: Connection, now_ms: float) -> None:
        """The figures of now: rebuilt from the table when stale, else from the tally (no query)."""
        if self.stale:
            self.rebuild(con, now_ms)
        cut_s = math.floor((now_ms - self.window_ms) / 1000)
        for second in [second for second in self.seconds if second <= cut_s]:
            for index, value in enumerate(self.seconds.pop(second)):
                self.held[index] -= value
        outcomes = _outcomes(self.held) if self.seconds else formulas.Outcomes()
        accuracy_sum, accuracy_n = self.accuracy
        speed_sum, speed_n = self.speed
        self.shown = ComparisonFigures(
            counts=ComparisonCounts(running=self.statuses["running"], queued=self.statuses["queued"],
                                    completed=self.statuses["completed"], models=len(self.models),
                                    accuracy_pct=accuracy_sum / accuracy_n if accuracy_n else 0.0,
                                    speed=speed_sum / speed_n if speed_n else 0.0,
                                    fair=self.verdicts["fair"], unfair=self.verdicts["unfair"],
                                    unjudged=self.verdicts["unjudged"]),
            activity=formulas.comparison_activity(outcomes), offsets_kg=self.offsets_kg)

    def rebuild(self, con: Connection, now_ms: float) -> None:
        """Everything from the table: one pass (at start, and after a step of the wall clock)."""
        self.statuses = Counter(dict(con.execute("SELECT status, count(*) FROM comparisons GROUP BY status")
                                     .fetchall()))
        self.verdicts = Counter(dict(con.execute(
            "SELECT CASE WHEN fair THEN 'fair' WHEN NOT fair THEN 'unfair' ELSE 'unjudged' END, count(*) "
            "FROM comparisons WHERE status IN ('completed', 'failed', 'cancelled') GROUP BY 1").fetchall()))
        self.models = Counter(dict(con.execute(
            "SELECT model, count(*) FROM (SELECT DISTINCT id, unnest(models) AS model FROM comparisons) "
            "GROUP BY model").fetchall()))
        row = first(con.execute("SELECT coalesce(sum(accuracy), 0), count(accuracy), coalesce(sum(speed), 0), "
                                "count(speed) FROM comparisons WHERE status = 'completed'").fetchall())
        self.accuracy, self.speed = [float(row[0]), int(row[1])], [float(row[2]), int(row[3])]
        self.seconds = {}
        self.held = [0.0] * OUTCOME_FIELDS
        for values in con.execute(f"SELECT {TALLY_COLUMNS} FROM comparisons WHERE finished_ms > ? AND status IN "
                                  f"('completed', 'failed', 'cancelled')",
                                  [int(now_ms - self.window_ms) // 1000 * 1000]).fetchall():
            self._count_outcome(TallyRow.of(values), +1)
        self.offsets_kg = float(first(con.execute("SELECT coalesce(sum(kg), 0) FROM offsets").fetchall())[0])
        self.stale = False
        self.rebuilds += 1


def verdict(fair: bool | None) -> str:
    """A finished run's verdict on its conditions, as the stats count it."""
    return "unjudged" if fair is None else "fair" if fair else "unfair"


def _outcomes(summed: list[float]) -> formulas.Outcomes:
    """The window's outcomes from the fields summed over its seconds (counts back to whole numbers)."""
    count = [round(summed[index]) for index in (0, 1, 3, 4, 6, 8)]
    return formulas.Outcomes(finished=count[0], with_latency=count[1], latency_sum_ms=summed[2], completed=count[2],
                             failed=count[3], accuracy_sum=summed[5], with_accuracy=count[4], speed_sum=summed[7],
                             with_speed=count[5], items=summed[9], items_s=summed[10])
