"""services/his-writer: results back into HIS (``yibao worker his-writer``).

Consumes ``yibao.his.results.v1`` and writes every HisResult as one row of a table in the HIS's own database
(``yb_result`` by default), idempotent by the result's ``message_id``: HIS reads its answers where it keeps
everything else, with SQL, instead of from a Kafka topic. See README.md.
"""
