"""The metrics of ``/metrics`` pushed to an OpenTelemetry collector over OTLP/HTTP (protobuf), every
``otlp_interval`` seconds, on a thread of its own (``tsstats-otlp``), through the OpenTelemetry SDK and its OTLP
exporter (the ``otlp`` extra: ``pip install 'tsstats[otlp]'``), imported only when ``otlp_endpoint`` is set.

Each push renders the same families as a scrape (``prometheus.FiguresCollector``) and hands them to the SDK as
observable instruments: counters stay cumulative counters, gauges gauges (the request histogram stays
Prometheus' alone). Where OpenTelemetry's semantic conventions name a figure it goes under that name with their
attributes (``SEMANTIC``: ``hw.energy``, ``hw.power``, ``hw.temperature``, ``hw.gpu.utilization``,
``system.cpu.utilization``, ``system.cpu.time``, ``system.memory.utilization``, ``process.memory.usage``); every
other figure keeps its Prometheus name and labels, its unit from the name's suffix. The resource says
``service.name`` tsstats, its version and ``host.name`` (``host_name``, else the machine's).

A collector that does not answer costs one failed export per interval (the exporter's own timeout, at most 10 s,
on this thread): the service, its sampler and its routes go on, the failure is logged once, and the next push
that succeeds says so. The push reads the database only for the per-model series, on a cursor of its own.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tsstats.api.prometheus import FiguresCollector, Scrape
from tsstats.core.settings import Settings, StartupError

log = logging.getLogger("tsstats.otlp")
EXTRA = "pip install 'tsstats[otlp]'"
EXPORT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Semantic:
    """A family under OpenTelemetry's name: its unit, its labels renamed to attributes, attributes it adds."""

    name: str
    unit: str
    renamed: dict[str, str] = field(default_factory=dict)
    added: dict[str, str] = field(default_factory=dict)


SEMANTIC: dict[str, Semantic] = {
    "tsstats_energy_joules": Semantic("hw.energy", "J", {"component": "hw.type"}, {"hw.id": "machine"}),
    "tsstats_power_watts": Semantic("hw.power", "W", {"component": "hw.type"}, {"hw.id": "machine"}),
    "tsstats_gpu_temperature_celsius": Semantic("hw.temperature", "Cel", {"gpu": "hw.id", "name": "hw.name"},
                                                {"hw.type": "gpu"}),
    "tsstats_cpu_temperature_celsius": Semantic("hw.temperature", "Cel", {"sensor": "hw.id"}, {"hw.type": "cpu"}),
    "tsstats_gpu_utilization_ratio": Semantic("hw.gpu.utilization", "1", {"gpu": "hw.id", "name": "hw.name"},
                                              {"hw.type": "gpu"}),
    "tsstats_cpu_usage_ratio": Semantic("system.cpu.utilization", "1"),
    "tsstats_cpu_seconds": Semantic("system.cpu.time", "s", {"mode": "cpu.mode"}),
    "tsstats_memory_usage_ratio": Semantic("system.memory.utilization", "1"),
    "tsstats_self_resident_memory_bytes": Semantic("process.memory.usage", "By"),
}
UNIT_OF_SUFFIX = (("_joules", "J"), ("_watts", "W"), ("_seconds", "s"), ("_bytes", "By"), ("_ratio", "1"),
                  ("_hertz", "Hz"), ("_celsius", "Cel"), ("_grams", "g"), ("_grams_per_kwh", "g/kWh"))


def semantic_of(family: str) -> Semantic:
    """The name, unit and attributes a family is pushed under."""
    if family in SEMANTIC:
        return SEMANTIC[family]
    unit = next((unit for suffix, unit in UNIT_OF_SUFFIX if family.endswith(suffix)), "1")
    return Semantic(family, unit)


@dataclass(frozen=True)
class OtlpConfig:
    """Where and how often to push, and who this is."""

    endpoint: str
    headers: dict[str, str]
    interval_s: float
    host_name: str
    version: str

    @classmethod
    def of(cls, settings: Settings, version: str) -> OtlpConfig:
        headers = dict(header.split("=", 1) for header in settings.otlp_headers)
        return cls(settings.otlp_endpoint, headers, settings.otlp_interval, settings.host_name or socket.gethostname(),
                   version)


def require_sdk() -> None:
    """Raise ``StartupError`` saying what to install when the OpenTelemetry SDK or its exporter is missing."""
    try:
        import opentelemetry.exporter.otlp.proto.http.metric_exporter  # noqa: F401
        import opentelemetry.sdk.metrics  # noqa: F401
    except ImportError as error:
        raise StartupError(f"otlp_endpoint is set but the OpenTelemetry SDK is not installed ({error}): {EXTRA}") \
            from None


@dataclass(frozen=True)
class Observed:
    """One family's values as a push observes them: (attributes, value) pairs, and whether it is a counter."""

    counter: bool
    unit: str
    description: str
    points: list[tuple[dict[str, str], float]]


def observations(scrape: Scrape) -> dict[str, Observed]:
    """The families of a scrape under their pushed names (two families may share one: ``hw.temperature``)."""
    found: dict[str, Observed] = {}
    for family in FiguresCollector(scrape).collect():
        if family.type not in ("counter", "gauge"):
            continue
        semantic = semantic_of(family.name)
        names = (family.name, family.name + "_total")
        points = [({semantic.renamed.get(label, label): value for label, value in sample.labels.items()}
                   | semantic.added, float(sample.value)) for sample in family.samples if sample.name in names]
        held = found.setdefault(semantic.name, Observed(family.type == "counter", semantic.unit,
                                                        family.documentation, []))
        held.points.extend(points)
    return found


class OtlpPush:
    """Pushes what ``scrape()`` gives (None: nothing yet) every interval until closed (its own thread)."""

    def __init__(self, config: OtlpConfig, scrape: Callable[[], Scrape | None]):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.resources import Resource

        self.config = config
        self.scrape = scrape
        self.reader = InMemoryMetricReader()
        resource = Resource.create({"service.name": "tsstats", "service.version": config.version,
                                    "host.name": config.host_name})
        self.provider = MeterProvider(resource=resource, metric_readers=[self.reader])
        self.meter = self.provider.get_meter("tsstats", config.version)
        self.exporter = OTLPMetricExporter(endpoint=config.endpoint, headers=config.headers,
                                           timeout=min(EXPORT_TIMEOUT_S, config.interval_s))
        self.pushes = 0
        self.failures = 0  # in a row
        self.last_error: str | None = None
        self._observed: dict[str, Observed] = {}
        self._instruments: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tsstats-otlp", daemon=True)

    def start(self) -> OtlpPush:
        log.info("pushing metrics over OTLP to %s every %g s", self.config.endpoint, self.config.interval_s)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop pushing (a push under way ends within the exporter's timeout) and release the SDK."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(EXPORT_TIMEOUT_S + 2)
        self.exporter.shutdown()
        self.provider.shutdown()

    def _run(self) -> None:
        while not self._stop.wait(self.config.interval_s):
            try:
                self.push_once()
            except Exception as error:  # the push never takes the service down
                self._failed(f"{type(error).__name__}: {error}")

    def push_once(self) -> bool:
        """Render and export once; whether the collector took it."""
        from opentelemetry.sdk.metrics.export import MetricExportResult

        scrape = self.scrape()
        if scrape is None:
            return False
        self._observed = observations(scrape)
        for name, observed in self._observed.items():
            if name not in self._instruments:
                self._instruments[name] = self._instrument(name, observed)
        data = self.reader.get_metrics_data()
        if data is None:
            return False
        result = self.exporter.export(data, timeout_millis=min(EXPORT_TIMEOUT_S, self.config.interval_s) * 1000)
        if result is not MetricExportResult.SUCCESS:
            self._failed(f"the collector at {self.config.endpoint} did not take the push")
            return False
        if self.failures:
            log.warning("OTLP pushes to %s resumed after %d failed", self.config.endpoint, self.failures)
        self.pushes += 1
        self.failures, self.last_error = 0, None
        return True

    def _failed(self, error: str) -> None:
        if not self.failures:
            log.warning("OTLP push failed (%s); trying again every %g s", error, self.config.interval_s)
        self.failures += 1
        self.last_error = error

    def _instrument(self, name: str, observed: Observed) -> Any:
        create = self.meter.create_observable_counter if observed.counter else self.meter.create_observable_gauge
        return create(name, callbacks=[self._callback(name)], unit=observed.unit, description=observed.description)

    def _callback(self, name: str) -> Callable[[Any], Iterable[Any]]:
        """What the SDK calls to observe ``name``: the values of the push under way."""
        from opentelemetry.metrics import Observation

        def observe(options: Any) -> Iterable[Any]:
            held = self._observed.get(name)
            return [] if held is None else [Observation(value, attributes) for attributes, value in held.points]

        return observe
