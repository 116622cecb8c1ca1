"""services/ingest: HIS change events in.

Consumes the Debezium topics of the HIS database, turns each change into canonical HIS events with the HIS
mapping file (yibao.hisevents), drops duplicates by stable event id (inbox), and publishes the canonical events
keyed by HIS visit id through the outbox. Malformed or unmappable changes are parked on the dead-letter topic
with their reason, source topic/partition/offset and original bytes; nothing else stops.
"""
