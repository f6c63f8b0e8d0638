"""One contract, both network drivers: the simulated network, and LSO running the
playbooks against the FRR namespace lab. Same intents, same observable outcomes."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from netweave.cli.harness import lab
from netweave.provisioner.adapters.db import metadata
from netweave.provisioner.adapters.lso import LsoDriver, outcome_of_callback
from netweave.provisioner.adapters.sim import SimNetwork
from netweave.provisioner.domain.intent import AnyIntent, Intent
from netweave.provisioner.ports import JobOutcome, JobSpec, Operation
from netweave.runtime.db import Database
from tests.fixtures.lso import CallbackReceiver, running_receiver
from tests.fixtures.prereq import missing
from tests.integration.test_playbooks import CIRCUIT, LINKS, NODES, PORTS

ROOT = Path(__file__).parents[2]
LAB = "nwcontract"
INTENT: TypeAdapter[AnyIntent] = TypeAdapter(Intent)
SCENARIO = [INTENT.validate_python(i) for i in (*NODES, *LINKS, *PORTS, CIRCUIT)]


@dataclass
class Network:
    """A driver under test, with the few things a test does to the network behind it."""

    name: str
    run_job: Callable[[JobSpec], Awaitable[JobOutcome]]
    change_by_hand: Callable[[], Awaitable[None]]
    # The lab really has no eth99; the simulator is told to refuse the next change.
    make_next_change_fail: Callable[[], Awaitable[None]]

    async def run(
        self, operation: Operation, intent: AnyIntent, previous: AnyIntent | None = None
    ) -> JobOutcome:
        return await self.run_job(JobSpec(str(uuid.uuid4()), operation, intent, previous, uuid.uuid4().hex))


async def _sim(tmp_path: Path) -> tuple[Network, Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'sim.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)

    async def run_job(job: JobSpec) -> JobOutcome:
        async with db.session() as session, session.begin():
            outcome = await SimNetwork(session).run(job)
        assert outcome is not None
        return outcome

    async def change_by_hand() -> None:
        async with db.session() as session, session.begin():
            await SimNetwork(session).drift("ams-pe", "interface eth3 mtu", 1400)

    async def refuse_next() -> None:
        async with db.session() as session, session.begin():
            await SimNetwork(session).arm_fault("ams-pe", 1, "interface eth99 does not exist")

    return Network("sim", run_job, change_by_hand, refuse_next), db


@pytest.fixture(scope="module")
def lab_for_contract(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.geteuid() != 0:
        missing("the lab needs root (network namespaces, veth pairs, FRR)")
    directory = tmp_path_factory.mktemp("contract-lab")
    data = yaml.safe_load((ROOT / "clab" / "netweave.clab.yml").read_text())
    data["name"] = LAB
    topology = directory / f"{LAB}.clab.yml"
    topology.write_text(yaml.safe_dump(data, sort_keys=False))
    state = directory / "state"
    quiet: lab.Progress = lambda _m: None  # noqa: E731
    lab.down(LAB, topology_path=topology, state_dir_path=state, progress=quiet)
    lab.up(topology, state_dir_path=state, progress=quiet)
    try:
        yield state
    finally:
        lab.down(LAB, state_dir_path=state, progress=quiet)


def _lso_network(lso_url: str, receiver: CallbackReceiver) -> Network:
    driver = LsoDriver(lso_url, callback_base=receiver.url("").rstrip("/"), lab=LAB)

    async def run_job(job: JobSpec) -> JobOutcome:
        started = await driver.run(job)
        if started is not None:
            return started
        path = f"provisioning/lso/jobs/{job.job_id}/callback/{job.callback_token}"
        [posted] = await asyncio.to_thread(receiver.wait_for, path, 1, 180.0)
        return outcome_of_callback(posted.body, job.operation)

    async def change_by_hand() -> None:
        namespace = lab.namespace_name(LAB, "ams-pe")
        proc = await asyncio.create_subprocess_exec(
            "ip", "-n", namespace, "link", "set", "eth3", "mtu", "1400"
        )
        assert await proc.wait() == 0

    async def nothing_to_arm() -> None:
        return None

    return Network("lso", run_job, change_by_hand, nothing_to_arm)


@pytest.fixture(params=["sim", "lso"])
async def network(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Network]:
    if request.param == "sim":
        net, db = await _sim(tmp_path)
        try:
            yield net
        finally:
            await db.dispose()
        return
    request.getfixturevalue("lab_for_contract")
    lso_factory = request.getfixturevalue("lso_factory")
    instance = lso_factory(ROOT / "ansible")
    with running_receiver() as receiver:
        yield _lso_network(instance.url, receiver)


async def test_the_scenario_is_applied_validated_drifts_heals_and_goes_away(network: Network) -> None:
    for intent in SCENARIO:
        applied = await network.run("apply", intent)
        assert applied.succeeded, f"{network.name}: {intent.kind}: {applied.output[-1500:]}"
    verdicts = await asyncio.gather(*(network.run("validate", i) for i in SCENARIO))
    for intent, verdict in zip(SCENARIO, verdicts, strict=True):
        assert verdict.succeeded, f"{intent.kind}: {verdict.output[-800:]}"
        assert not verdict.differences, f"{intent.kind}: {verdict.differences}"

    await network.change_by_hand()
    port = next(i for i in SCENARIO if i.kind == "port" and getattr(i, "device", "") == "ams-pe")
    drifted = await network.run("validate", port)
    assert drifted.succeeded
    assert drifted.differences, f"{network.name} did not see the MTU changed by hand"
    assert any("ams-pe" in d for d in drifted.differences)
    assert (await network.run("apply", port)).succeeded, "re-provisioning repairs the drift"
    assert not (await network.run("validate", port)).differences

    for intent in reversed(SCENARIO):
        removed = await network.run("remove", intent)
        assert removed.succeeded, f"{network.name}: remove {intent.kind}: {removed.output[-1500:]}"
    gone = await network.run("validate", SCENARIO[0])
    assert gone.differences, "after removal the node's configuration is missing"


async def test_a_change_the_network_refuses_fails_with_the_device_named(network: Network) -> None:
    bad_port: Any = INTENT.validate_python({**PORTS[0], "interface": "eth99"})
    await network.make_next_change_fail()
    outcome = await network.run("apply", bad_port)
    assert not outcome.succeeded
    assert "ams-pe" in outcome.output
    assert "eth99" in outcome.output
