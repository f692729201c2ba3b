"""What the stats show of comparisons: counts by status, averages of the completed, and the activity of those
finished within the window, reloaded when a write changed them (sampler thread)."""

from __future__ import annotations

from tsstats.comparisons.records import offsets_total
from tsstats.core.units import MS_PER_S
from tsstats.figures import formulas
from tsstats.figures.moment import ComparisonCounts, ComparisonFigures
from tsstats.storage.sql import Connection, first


def comparison_counts(con: Connection) -> ComparisonCounts:
    counts = dict(con.execute("SELECT status, count(*) FROM comparisons GROUP BY status").fetchall())
    averages = first(con.execute(
        "SELECT coalesce(avg(accuracy), 0), coalesce(avg(speed), 0) FROM comparisons "
        "WHERE status = 'completed'").fetchall())
    models = first(con.execute("SELECT count(DISTINCT model) FROM (SELECT unnest(models) AS model FROM comparisons)"
                               ).fetchall())[0]
    return ComparisonCounts(running=counts.get("running", 0), queued=counts.get("queued", 0),
                            completed=counts.get("completed", 0), models=models, accuracy_pct=float(averages[0]),
                            speed=float(averages[1]))


def outcomes_since(con: Connection, since_ms: float) -> formulas.Outcomes:
    """Counts of the comparisons finished after ``since_ms``."""
    row = first(con.execute(
        "SELECT count(*), count(latency_ms), coalesce(sum(latency_ms), 0), "
        "count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'), "
        "coalesce(sum(accuracy) FILTER (WHERE status = 'completed'), 0), "
        "count(accuracy) FILTER (WHERE status = 'completed'), "
        "coalesce(sum(speed) FILTER (WHERE status = 'completed'), 0), "
        "count(speed) FILTER (WHERE status = 'completed'), "
        "coalesce(sum(items) FILTER (WHERE status = 'completed' AND finished_ms > started_ms), 0), "
        "coalesce(sum(finished_ms - started_ms) FILTER (WHERE status = 'completed' AND items IS NOT NULL "
        "AND finished_ms > started_ms), 0) / 1000.0 "
        "FROM comparisons WHERE finished_ms > ? AND status IN ('completed', 'failed', 'cancelled')",
        [int(since_ms)]).fetchall())
    return formulas.Outcomes(int(row[0]), int(row[1]), float(row[2]), int(row[3]), int(row[4]), float(row[5]),
                             int(row[6]), float(row[7]), int(row[8]), float(row[9]), float(row[10]))


class ComparisonFiguresCache:
    """What the stats show of comparisons and offsets (writer thread). Reloaded when a build needs it after a
    write, or when the last load is older than REFRESH_MS (the activity window slides): a burst of writes costs
    one reload per build, not one per write, and nothing is held per comparison."""

    REFRESH_MS = 10_000

    def __init__(self, activity_window_s: float):
        self.window_ms = activity_window_s * MS_PER_S
        self.shown = ComparisonFigures()
        self.dirty = True
        self.loaded_ms: float | None = None

    def changed(self) -> None:
        """A write happened: reload before the next build."""
        self.dirty = True

    def refresh(self, con: Connection, now_ms: float) -> None:
        if not self.dirty and self.loaded_ms is not None and now_ms - self.loaded_ms < self.REFRESH_MS:
            return
        self.shown = ComparisonFigures(
            counts=comparison_counts(con),
            activity=formulas.comparison_activity(outcomes_since(con, now_ms - self.window_ms)),
            offsets_kg=offsets_total(con))
        self.dirty, self.loaded_ms = False, now_ms
