"""``yibao sim``: run the platform simulator on loopback until interrupted.

    yibao sim --gateway tif --seed 7 --population 500 --fault 2207:commit_then_timeout:0.1 \
              --callback-url http://127.0.0.1:8080/mobilepay/callback
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from yibao.core.logs import configure_logging

from .errors import SimulatorConfigError
from .server import Simulator
from .settings import GatewayKind, SimulatorSettings

__all__ = ["add_arguments", "run", "settings_from_args"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="platform API port (default 7070)")
    parser.add_argument("--admin-port", type=int, default=None, help="admin API port (default 7071)")
    parser.add_argument("--gateway", choices=[g.value for g in GatewayKind], default=None,
                        help="gateway authentication in front of the platform (default none)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the population and the faults")
    parser.add_argument("--population", type=int, default=None, help="number of persons known to 1101")
    parser.add_argument("--fault", action="append", default=[], metavar="TARGET:KIND:PROB[:PARAM]",
                        help="a fault rule, repeatable (e.g. 2207:commit_then_timeout:0.1, *:latency:1:20-80)")
    parser.add_argument("--callback-url", default=None, help="hospital URL for mobile-pay settlement callbacks")
    parser.add_argument("--fixmedins-code", action="append", default=[], help="an institution the platform knows")
    parser.add_argument("--hospital-public-key", default=None, help="encrypted gateway: hospital SM2 public key hex")
    parser.add_argument("--mp-hospital-public-key", default=None, help="mobile pay: hospital SM2 public key hex")
    parser.add_argument("--wi-hospital-public-key", default=None, help="work injury: hospital SM2 public key hex")


def settings_from_args(args: argparse.Namespace) -> SimulatorSettings:
    overrides: dict[str, Any] = {}
    for attr, field in (("host", "host"), ("port", "port"), ("admin_port", "admin_port"), ("gateway", "gateway"),
                        ("seed", "seed"), ("population", "population_size"), ("callback_url", "callback_url"),
                        ("hospital_public_key", "hospital_public_key_hex"),
                        ("mp_hospital_public_key", "mp_hospital_public_key_hex"),
                        ("wi_hospital_public_key", "wi_hospital_public_key_hex")):
        value = getattr(args, attr, None)
        if value is not None:
            overrides[field] = value
    if getattr(args, "fault", None):
        overrides["faults"] = list(args.fault)
    if getattr(args, "fixmedins_code", None):
        overrides["fixmedins_codes"] = list(args.fixmedins_code)
    return SimulatorSettings(**overrides)


async def _serve(settings: SimulatorSettings) -> None:
    async with Simulator(settings) as sim:
        print(f"platform {sim.url}  admin {sim.admin_url}  gateway {settings.gateway.value}  "
              f"persons {len(sim.ledger.persons)}  platform public key {sim.platform_public_key_hex}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def run(args: argparse.Namespace) -> int:
    configure_logging("simulator", json_lines=False)
    try:
        settings = settings_from_args(args)
        asyncio.run(_serve(settings))
    except SimulatorConfigError as exc:
        print(f"yibao sim: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
