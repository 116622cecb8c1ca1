"""Errors the simulator raises on purpose.

Two kinds of refusal exist on a real platform and the simulator keeps them apart:

* :class:`PlatformRefusal` — the business layer said no; it becomes ``infcode -1`` with ``err_msg``;
* :class:`GatewayRefusal` — the gateway in front of the platform said no (bad signature, stale timestamp,
  unknown paasid, reused nonce); it becomes an HTTP error status, the way a gateway answers.

Messages name the transaction, field and rule; they never carry personal data (certno, names).
"""

from __future__ import annotations

from yibao.core.errors import ConfigurationError, InputError, YibaoError

__all__ = ["SimulatorError", "PlatformRefusal", "GatewayRefusal", "SimulatorConfigError", "MobilePayRefusal"]


class SimulatorError(YibaoError):
    """Base of the simulator's own errors."""

    code = "simulator"


class PlatformRefusal(InputError):
    """A business refusal: answered as ``infcode -1`` with this message as ``err_msg``."""

    code = "platform_refusal"

    def __init__(self, infno: str, message: str) -> None:
        self.infno = infno
        self.err_msg = f"[{infno}] {message}"[:200]
        super().__init__(self.err_msg)


class MobilePayRefusal(InputError):
    """A mobile-pay refusal: answered with a non-zero ``code``, ``success: false`` and this message."""

    code = "mobilepay_refusal"

    def __init__(self, message: str, *, status: int = 400) -> None:
        self.status = status
        super().__init__(message[:200])


class GatewayRefusal(InputError):
    """A gateway refusal: answered with an HTTP status (401/403) and a short JSON body."""

    code = "gateway_refusal"

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


class SimulatorConfigError(ConfigurationError):
    """The simulator's settings (faults, keys, policy) cannot be used."""

    code = "simulator_config"
