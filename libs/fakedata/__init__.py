"""yibao.fakedata: synthetic data for the demo, the tests, the bench and the platform simulator.

* :mod:`.people`  — ``population(seed, size)``: deterministic insured people (valid certno checksums); the
  platform simulator answers 1101 from the same function, so the fake HIS's patients exist on the platform;
* :mod:`.his`     — ``generate_day(seed, ...)``: a day of the example HIS's activity as Debezium records
  (``RawCdcMessage``), in any common Debezium shape (:class:`~.cdc.CdcShape`), with optional faults and
  duplicates;
* :mod:`.cdc`     — the Debezium/Kafka Connect encoder behind it; :mod:`.his_tables`, :mod:`.his_catalog` —
  the example HIS's tables and what the fake hospital offers.

Nothing here is real: names, certnos and phone numbers are generated; never feed them to a real platform.
"""

from yibao.fakedata.cdc import CdcShape, RawCdcMessage
from yibao.fakedata.his import FAULT_KINDS, generate_day, generated_topics
from yibao.fakedata.people import Person, population

__all__ = ["CdcShape", "RawCdcMessage", "FAULT_KINDS", "generate_day", "generated_topics", "Person", "population"]
