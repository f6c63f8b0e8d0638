"""What the provisioner's handlers need: a network driver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from netweave.provisioner.domain.intent import AnyIntent

Operation = Literal["apply", "remove", "validate"]


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    operation: Operation
    intent: AnyIntent
    previous: AnyIntent | None = None
    callback_token: str | None = None


@dataclass(frozen=True)
class JobOutcome:
    succeeded: bool
    output: str
    differences: tuple[str, ...] = ()


class NetworkDriver(Protocol):
    """The simulated network, or LSO running Ansible on the lab.

    ``run`` returns the outcome when the driver knows it at once (the simulator), or
    None when the job was started and its outcome arrives later (LSO's callback).
    """

    name: str

    async def run(self, job: JobSpec) -> JobOutcome | None: ...
