"""tsstats: a small, fast metrics service for a workstation; ``tsstats.track`` measures a benchmark's runs
through it and ``tsstats.compare`` compares callables over repeated, interleaved trials (standard library only:
importing tsstats loads neither DuckDB, Sanic nor NumPy)."""

from tsstats.client.study import StudyResult, compare
from tsstats.client.track import Phase, Run, TsstatsError, TsstatsUnavailable, track

__version__ = "0.1.0"
__all__ = ["Phase", "Run", "StudyResult", "TsstatsError", "TsstatsUnavailable", "__version__", "compare", "track"]
