"""services/ingest: HIS change events in.

Consumes the Debezium topics of the HIS database, turns each change into canonical HIS events with the HIS
mapping file (yibao.hisevents), drops duplicates by stable event id (inbox), and publishes the canonical events
keyed by HIS visit id through the outbox, in HIS commit order across the CDC topics (the events of a table read
ahead of a lagging one wait in ``ingest_held``: :mod:`yibao.ingest.ordering`). Malformed or unmappable changes are
parked on the dead-letter topic with their reason, source topic/partition/offset and original bytes; nothing else
stops.
"""
