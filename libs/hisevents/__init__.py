"""yibao.hisevents: HIS database changes (Debezium CDC records) in, canonical HIS events out.

Pure library, no broker: the ingest service calls :class:`Ingestor` for each CDC record.

* :mod:`.models`     — the canonical events (pydantic, discriminated on ``type``), ``parse_event``;
* :mod:`.debezium`   — decoding Debezium records of every common shape into a ChangeEvent or a Skip;
* :mod:`.mapping`    — HIS mapping files (one per vendor, YAML): loading and validation
  (:mod:`.mapping_spec` the file format, :mod:`.mapping_rules` the compiled rules, :mod:`.transforms` values);
* :mod:`.connect_types` — Kafka Connect / Debezium value encodings (decimals, temporal types);
* :mod:`.eventid`    — the stable event id that makes CDC duplicates recognisable;
* :mod:`.ingest`     — ``Ingestor(mapping).ingest(topic, partition, offset, key, value)``.
"""

from yibao.hisevents.debezium import ChangeEvent, Skip, decode
from yibao.hisevents.ingest import Ingestor, IngestResult
from yibao.hisevents.mapping import HisMapping, available_mappings, load_mapping, mapping_from_dict
from yibao.hisevents.models import EVENT_TYPES, HisEvent, HisEventBase, parse_event

__all__ = [
    "ChangeEvent",
    "Skip",
    "decode",
    "IngestResult",
    "Ingestor",
    "HisMapping",
    "available_mappings",
    "load_mapping",
    "mapping_from_dict",
    "EVENT_TYPES",
    "HisEvent",
    "HisEventBase",
    "parse_event",
]
