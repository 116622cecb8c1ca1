"""Counter metrics. Labels are bounded vocabularies: infno, status, channel, action — never a person or an id."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = ["QUERIES", "QUERY_SECONDS", "BATCH_ROWS", "SLIPS"]

QUERIES = Counter("yibao_counter_queries_total", "Queries answered, by transaction, channel and answer status",
                  ["infno", "channel", "status"])
QUERY_SECONDS = Histogram("yibao_counter_query_seconds", "Time to answer a query, by transaction and source",
                          ["infno", "source"], buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
BATCH_ROWS = Counter("yibao_counter_batch_rows_total", "核酸 batch rows by outcome (imported, duplicate, bad, "
                     "settled, rejected, parked)", ["outcome"])
SLIPS = Counter("yibao_counter_slips_total", "Settlement slips served, by format", ["format"])
