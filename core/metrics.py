"""Prometheus metrics: messages in and out, answers by intent, outbox results and
latencies. Served at ``/metrics`` (with outbox and broadcast gauges read at scrape time)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES_IN = Counter("kigen_messages_in_total", "Things residents did, per channel", ["channel"])
REPLIES = Counter("kigen_replies_total", "Replies by what Kigen did", ["channel", "intent"])
REPLIES_DEFERRED = Counter(
    "kigen_replies_deferred_total",
    "Answers the platform did not take at once, queued for the delivery job",
    ["channel"],
)
OUTBOX_RESULTS = Counter(
    "kigen_outbox_results_total", "Outbox deliveries by outcome", ["channel", "kind", "outcome"]
)
DELIVERY_LATENCY = Histogram(
    "kigen_delivery_latency_seconds",
    "From the moment a message was due to the platform's answer",
    ["channel"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
WEBHOOK_SECONDS = Histogram(
    "kigen_webhook_seconds",
    "Time to handle a webhook request",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def intent_label(intent: str) -> str:
    """A bounded label: the FAQ entry or the kind of reply (``faq:ext_window``,
    ``reminder``...)."""
    return intent if intent.startswith("faq:") else intent.split(":", 1)[0]
