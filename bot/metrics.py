"""Prometheus metrics for one bot process: what was answered, what was refused, how fast.

Each Application gets its own registry rather than prometheus-client's global one, so several
bots in one process (the tests) never collide, and ``/metrics`` shows only this bot. With N
replicas, Prometheus scrapes each and sums; the counters are per process and start at zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from nothotdog.bot.line import Admission
from nothotdog.bot.outcomes import Judged, Outcome, Refusal
from nothotdog.bot.settings import TELEGRAM_MAX_FILE_MB

# Seconds. Downloads from Telegram take tens of milliseconds to seconds; VGG16 on a small CPU
# a few hundred milliseconds, more when photos queue for it.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class BotMetrics:
    """Told what happened (a photo answered or refused, a vote, a /why picture, a failure);
    counts it, and reads the line's gauges when Prometheus scrapes."""

    def __init__(
        self,
        *,
        labels: Iterable[str] = (),
        admission: Admission | None = None,
        model: dict[str, str] | None = None,
    ) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self._answered = Counter(
            "nothotdog_photos_answered", "Photos answered with a verdict.", ["verdict"], registry=r
        )
        for label in labels:  # so every verdict shows, at 0, before the first photo
            self._answered.labels(verdict=label)
        self._busy = _counter("busy_refusals", "Photos refused because the line was full or its "
                             "expected wait passed MAX_WAIT_S.", r)
        self._too_large = _counter("too_large_refusals", "Files refused as over MAX_FILE_MB (no "
                                  f"preview) or Telegram's {TELEGRAM_MAX_FILE_MB} MB.", r)
        self._unreadable = _counter(
            "unreadable_inputs", "Files that could not be decoded as an image.", r
        )
        self._votes = Counter("nothotdog_votes", "Feedback votes kept: was the verdict right?",
                             ["vote"], registry=r)  # fmt: skip
        self._errors = _counter("errors", "Updates whose handling failed with an error.", r)
        self._explained = _counter(
            "heatmaps_sent", "/why pictures sent (the command or the button).", r
        )
        self._download_seconds = _histogram("download", "Fetching the file from Telegram.", r)
        self._classify_seconds = _histogram("classify", "Decoding and inference.", r)
        self._total_seconds = _histogram("total", "From the update to the answer sent.", r)
        if admission is not None:
            _gauge("photos_in_flight", "Photos being downloaded or classified now.", r,
                   lambda: admission.in_flight)
            _gauge("photos_waiting", "Photos waiting in line for a place and memory.", r,
                   lambda: admission.waiting)
            _gauge("bytes_in_flight", "Bytes held in the memory budget now: files being "
                   "downloaded or decoded, and decodes.", r, lambda: admission.used)
            _gauge("memory_budget_bytes", "MEMORY_BUDGET_MB, in bytes.", r).set(admission.total)
        if model:
            Info("nothotdog_model", "The ONNX model this process serves.", registry=r).info(model)
        self._refusals = {Refusal.BUSY: self._busy, Refusal.TOO_LARGE: self._too_large,
                          Refusal.UNREADABLE: self._unreadable}  # fmt: skip

    def refused(self, reason: Refusal) -> None:
        self._refusals[reason].inc()

    def voted(self, right: bool) -> None:
        self._votes.labels(vote="right" if right else "wrong").inc()

    def sent_why(self) -> None:
        """A /why picture sent."""
        self._explained.inc()

    def failed(self) -> None:
        """An update whose handling failed with an error."""
        self._errors.inc()

    def observe(self, outcome: Outcome) -> None:
        """One picture answered; a verdict's time, from arrival to the answer sent."""
        if isinstance(outcome, Judged):
            self._answered.labels(verdict=outcome.verdict.label).inc()
            self._download_seconds.observe(outcome.download_s)
            self._classify_seconds.observe(outcome.decode_s + outcome.infer_s)
            self._total_seconds.observe(time.perf_counter() - outcome.started)


def _histogram(stage: str, what: str, registry: CollectorRegistry) -> Histogram:
    return Histogram(
        f"nothotdog_{stage}_seconds",
        f"{what} Answered photos only.",
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )


def _counter(name: str, what: str, registry: CollectorRegistry) -> Counter:
    return Counter(f"nothotdog_{name}", what, registry=registry)


def _gauge(
    name: str, what: str, registry: CollectorRegistry, read: Callable[[], float] | None = None
) -> Gauge:
    """A gauge, read from ``read`` at each scrape when given."""
    gauge = Gauge(f"nothotdog_{name}", what, registry=registry)
    if read is not None:
        gauge.set_function(read)
    return gauge
