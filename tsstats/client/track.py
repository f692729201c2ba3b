"""``tsstats.track``: measure a block or a function of a benchmark script through the running service.

    with tsstats.track(models=["resnet50"], name="imagenet val", items=50_000) as run:
        with run.phase("warm-up"):
            ...
        run.report(accuracy=76.1, speed=812.0)
    print(run.energy_j, run.carbon_g, run.record["sci"])

The block becomes a comparison, running from its first line, naming this process (its children count); on exit
it is ``completed``, ``failed`` (an exception: its type and message are the error, and it is raised on) or
``cancelled`` (KeyboardInterrupt). The service reads the energy counters at the block's own edges. Without a
service the script runs all the same: one warning line, ``run.measured`` is False, unless ``required=True``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from tsstats.client.service import ServiceClient, ServiceRefused, ServiceUnreachable, warn

F = TypeVar("F", bound=Callable[..., Any])
MAX_ERROR = 4000


class TsstatsError(ValueError):
    """A bad argument of ``track`` or ``report``, or the service refused the run (the field is named)."""


class TsstatsUnavailable(ConnectionError):
    """``required=True`` and no service answered."""


def running_body(models: list[str], name: str | None, items: float | None,
                 metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The body that opens a measured run of this process (and its children): ``tsstats.track``'s and
    ``tsstats run``'s."""
    body: dict[str, Any] = {"models": models, "status": "running", "pids": [os.getpid()]}
    if metadata is not None:
        body["metadata"] = metadata
    if name is not None:
        body["name"] = name
    if items is not None:
        body["items"] = items
    return body


def ended_body(status: str, error: str | None, reported: dict[str, Any]) -> dict[str, Any]:
    """The body that ends a measured run: its status, the error that ended it (cut to ``MAX_ERROR``) and the
    results reported."""
    body: dict[str, Any] = {"status": status, **reported}
    if error:
        body["error"] = error[:MAX_ERROR]
    return body


def _check_number(name: str, value: Any, low: float, high: float, low_open: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TsstatsError(f"{name} must be a finite number, not {value!r}")
    if value < low or value > high or (low_open and value == low):
        raise TsstatsError(f"{name} must be {'greater than' if low_open else 'at least'} {low:g} and at most "
                           f"{high:g}, not {value!r}")
    return float(value)


class Phase:
    """A named window inside a run; its figures are set once it has ended."""

    def __init__(self, name: str):
        self.name = name
        self.id: int | None = None
        self.record: dict[str, Any] | None = None
        self.energy_j: float | None = None
        self.carbon_g: float | None = None
        self.duration_s: float | None = None


class Run:
    """One measured run: created by ``track``, finished when its block ends."""

    def __init__(self, service: ServiceClient, models: list[str], name: str | None, items: float | None,
                 metadata: dict[str, Any], required: bool):
        self.service = service
        self.models, self.name, self.items, self.metadata, self.required = models, name, items, metadata, required
        self.id: int | None = None
        self.measured = False
        self.record: dict[str, Any] | None = None
        self.energy_j: float | None = None
        self.carbon_g: float | None = None
        self.duration_s: float | None = None
        self._reported: dict[str, float] = {}
        self._phases: list[Phase] = []
        self._started = 0.0

    def report(self, accuracy: float | None = None, speed: float | None = None, latency_ms: float | None = None,
               items: float | None = None) -> None:
        """Results of the run, sent with its end: accuracy in %, speed as the dashboard draws it (FPS, items/s),
        the mean model response time in ms, and the items processed (prompts, images, tokens)."""
        for key, value in (("accuracy", _check_number("accuracy", accuracy, 0.0, 100.0)),
                           ("speed", _check_number("speed", speed, 0.0, 1e15)),
                           ("latencyMs", _check_number("latency_ms", latency_ms, 0.0, 1e12)),
                           ("items", _check_number("items", items, 0.0, 1e15, low_open=True))):
            if value is not None:
                self._reported[key] = value

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        """A named window inside the run (phases nest); its time, energy and carbon are in ``record["phases"]``."""
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise TsstatsError(f"phase name must be a string of 1 to 200 characters, not {name!r}")
        phase = Phase(name)
        if self.measured and self.id is not None:
            body: dict[str, Any] = {"name": name}
            if self._phases and self._phases[-1].id is not None:
                body["parent"] = self._phases[-1].id
            phase.id = self._call("POST", f"/api/comparisons/{self.id}/phases", body, "id")
        self._phases.append(phase)
        status = "completed"
        try:
            yield phase
        except KeyboardInterrupt:
            status = "cancelled"
            raise
        except BaseException:
            status = "failed"
            raise
        finally:
            self._phases.pop()
            if phase.id is not None and self.measured:
                phase.record = self._call("PATCH", f"/api/comparisons/{self.id}/phases/{phase.id}",
                                          {"status": status})
                if phase.record is not None:
                    phase.energy_j, phase.carbon_g = phase.record["energyJ"], phase.record["carbonG"]
                    phase.duration_s = phase.record["durationS"]

    def _call(self, method: str, path: str, body: dict[str, Any], key: str | None = None) -> Any:
        """A call during the run: a service gone away is a warning and ends the measuring, never the script."""
        try:
            answer = self.service.call(method, path, body)
        except ServiceUnreachable as error:
            warn(f"{error}; this run's figures are missing")
            self.measured = False
            return None
        except ServiceRefused as error:
            warn(f"{error}; this run's figures may be incomplete")
            return None
        return answer.get(key) if key is not None and isinstance(answer, dict) else answer

    def _start(self) -> None:
        self._started = time.perf_counter()
        try:
            self.record = self.service.call("POST", "/api/comparisons",
                                            running_body(self.models, self.name, self.items, self.metadata))
        except ServiceUnreachable as error:
            if self.required:
                raise TsstatsUnavailable(f"{error} (required=True)") from None
            warn(f"{error}; this run is not measured")
            return
        except ServiceRefused as error:
            raise TsstatsError(str(error)) from None
        self.id, self.measured = self.record["id"] if self.record else None, True

    def _finish(self, status: str, error: str | None) -> None:
        self.duration_s = time.perf_counter() - self._started
        if not self.measured or self.id is None:
            return
        record = self._call("PATCH", f"/api/comparisons/{self.id}", ended_body(status, error, self._reported))
        if record is None:
            return
        self.record = record
        self.energy_j, self.carbon_g = record.get("energyJ"), record.get("carbonG")
        if record.get("durationS") is not None:
            self.duration_s = record["durationS"]


class Tracker:
    """What ``track`` returns: a context manager (``with ... as run``) and a decorator (a run per call)."""

    def __init__(self, service: ServiceClient, models: list[str], name: str | None, items: float | None,
                 metadata: dict[str, Any], required: bool):
        self._arguments = (service, models, name, items, metadata, required)
        self._runs: list[Run] = []

    def __enter__(self) -> Run:
        run = Run(*self._arguments)
        run._start()
        self._runs.append(run)
        return run

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _trace: Any) -> None:
        run = self._runs.pop()
        if kind is None:
            run._finish("completed", None)
        elif issubclass(kind, KeyboardInterrupt):
            run._finish("cancelled", "KeyboardInterrupt")
        else:
            run._finish("failed", f"{kind.__name__}: {error}")

    def __call__(self, function: F) -> F:
        @functools.wraps(function)
        def measured(*args: Any, **kwargs: Any) -> Any:
            with self:
                return function(*args, **kwargs)

        return measured  # type: ignore[return-value]


def track(models: list[str] | tuple[str, ...] | None = None, name: str | None = None, items: float | None = None,
          metadata: dict[str, Any] | None = None, *, required: bool = False, url: str | None = None,
          token: str | None = None, token_file: str | None = None, study: str | None = None) -> Tracker:
    """Measure a block (``with track(...) as run``) or each call of a function (``@track(...)``) as a run of the
    service at ``url`` (default ``TSSTATS_URL``, else http://127.0.0.1:8000) with ``token``, else the one in the
    file ``token_file`` (default ``TSSTATS_TOKEN``, else the file ``TSSTATS_TOKEN_FILE``). A service that refuses
    the token (401) is as one that is not there: the run is not measured, with one warning (``required=True``:
    ``TsstatsUnavailable``)."""
    if models is None:
        models = []
    if isinstance(models, str) or not isinstance(models, (list, tuple)) \
            or not all(isinstance(model, str) and 1 <= len(model) <= 200 for model in models):
        raise TsstatsError(f"models must be a list of model names (strings of 1 to 200 characters), not {models!r}")
    if len(models) > 32:
        raise TsstatsError(f"models must hold at most 32 names, not {len(models)}")
    if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 200):
        raise TsstatsError(f"name must be a string of 1 to 200 characters, not {name!r}")
    checked_items = _check_number("items", items, 0.0, 1e15, low_open=True)
    if metadata is not None and not isinstance(metadata, dict):
        raise TsstatsError(f"metadata must be a dict, not {type(metadata).__name__}")
    if study is not None:
        if not isinstance(study, str) or not 1 <= len(study) <= 200:
            raise TsstatsError(f"study must be a name of 1 to 200 characters, not {study!r}")
        metadata = {**(metadata or {}), "study": study}  # a run of a named study, as tsstats compare's trials
    if not isinstance(required, bool):
        raise TsstatsError(f"required must be True or False, not {required!r}")
    try:
        service = ServiceClient.from_environment(url, token, token_file)
    except ValueError as error:
        raise TsstatsError(str(error)) from None
    return Tracker(service, list(models), name, checked_items, dict(metadata or {}), required)
