"""Errors of the reconciliation service: leaves of :class:`yibao.core.errors.ReconciliationError`.

Each names what is wrong (the file and line, the run, the rule) and never personal data: the 3202 result file
carries psn_no, so a message about a row gives its line number and setl_id only.
"""

from __future__ import annotations

from yibao.core.access import AuthError, NotAuthenticated, PermissionDenied
from yibao.core.errors import InputError, ReconciliationError

__all__ = [
    "ReconciliationError",
    "ResultFileError",
    "RunRefused",
    "RunNotFound",
    "ApprovalError",
    "RunBusy",
    "RepairError",
    "BadCommand",
    "ForgedCommand",
    "AuthError",
    "NotAuthenticated",
    "PermissionDenied",
    "FourEyesViolation",
]


class ResultFileError(ReconciliationError):
    """The 3202 result file (9102) is unreadable: not a zip, a JSON error inside, a malformed row."""

    code = "recon_result_file"


class RunRefused(ReconciliationError):
    """A run overlaps a run still going for the same days; ``holder`` is that run's id."""

    code = "recon_overlap"

    def __init__(self, message: str, *, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class RunNotFound(ReconciliationError):
    code = "recon_run_not_found"


class ApprovalError(ReconciliationError):
    """An approval that cannot be recorded (nothing awaits approval, no approver named, a run in progress)."""

    code = "recon_approval"


class RunBusy(ApprovalError):
    """The run (or another run holding one of its days) is still going: decide again when it has finished."""

    code = "recon_run_busy"


class RepairError(ReconciliationError):
    """A repair could not be applied; the difference stays open with this reason."""

    code = "recon_repair"


class BadCommand(InputError):
    """A message on the command topic (or an HTTP request) that is not a valid command."""

    code = "recon_bad_command"


class ForgedCommand(BadCommand):
    """A command whose signature, signer, timestamp or nonce does not hold: parked, never acted on."""

    code = "recon_command_refused"


class FourEyesViolation(ApprovalError):
    """The approver of a repair is the one who requested the run that found it: refused (403 over HTTP)."""

    code = "four_eyes"
    status = 403
