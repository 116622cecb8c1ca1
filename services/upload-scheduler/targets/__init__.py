"""Where records go: the national platform and the other targets of the tenders (seeds 002, 004), each **data**
(targets.yaml: its transactions, their fields, how a lost answer is resolved, how it words a duplicate) plus a
**small adapter** (where it lives, its auth and envelope, how its answers read) behind the engine's
:class:`~yibao.chains.ports.PlatformClient`:

* :mod:`.catalog` — the scheduler's catalog: the national one with every target's transactions, so the engine
  resolves a target's lost answer exactly as a national one (its ``lost_answer``) and the steps validate a target
  record before sending it (its ``input`` fields);
* :mod:`.router` — the client the engine holds: national infnos to the national client, ``ZF.*`` to the 自费
  platform, ``YMT.*`` to 一码通, ``DRG.*`` to the DRG platform, ``YQ.*``/``FLU.*``/``FEVER.*`` to the surveillance
  platforms;
* :mod:`.http` — what the adapters share (the JSON envelope, outcomes classified as the national client does);
* :mod:`.zifei`, :mod:`.yimatong`, :mod:`.drg`, :mod:`.surveillance` — the adapters.
"""

from yibao.upload_scheduler.targets.catalog import build_catalog, load_targets
from yibao.upload_scheduler.targets.router import build_client

__all__ = ["build_catalog", "build_client", "load_targets"]
