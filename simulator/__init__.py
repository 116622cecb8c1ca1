"""yibao.simulator: a strict, stateful stand-in for the national 医保 platform and mobile pay 2.0.

Never imported by a service. Started by ``yibao sim`` or in-process by tests::

    async with Simulator(SimulatorSettings(port=0, admin_port=0)) as sim:
        ...  # talk to sim.url; inspect sim.admin_url

See README.md beside this file for the rules it enforces and the codes it answers.
"""

from .settings import GatewayKind, SimulatorSettings
from .server import Simulator

__all__ = ["Simulator", "SimulatorSettings", "GatewayKind"]
