"""``netweave events``: follow the bus, list and replay dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import nats
import nats.errors
import nats.js.errors
import typer
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.manager import JetStreamManager
from rich.table import Table

from netweave.cli.common import (
    EXIT_OK,
    EXIT_UNREACHABLE,
    DataDirOpt,
    NatsPassword,
    NatsServer,
    NatsUser,
    Output,
    OutputFormat,
    Refused,
    Unreachable,
    console,
    endpoints,
    err,
    print_json,
    run,
)
from netweave.cli.settings import bus_login
from netweave.contracts.envelope import CloudEvent
from netweave.contracts.permissions import ADMIN_USER
from netweave.contracts.streams import DEAD_LETTER_PREFIX, DEADLETTER, PREFIX

app = typer.Typer(help="Events on the bus: follow them live; dead letters.", no_args_is_help=True)
dlq_app = typer.Typer(help="Messages a consumer gave up on: list them, replay them.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")

DEFAULT_SUBJECT = f"{PREFIX}.>"
DLQ_SUBJECTS = f"{DEAD_LETTER_PREFIX}.>"


class _Problems:
    """What the connection reports asynchronously (a denied subscription, a lost server)."""

    def __init__(self) -> None:
        self.failed = asyncio.Event()
        self.message = ""
        self.unreachable = False

    async def on_error(self, exc: Exception) -> None:
        if "permissions violation" in str(exc):
            self._fail(f"the bus refused: {exc}", unreachable=False)

    async def on_disconnect(self) -> None:
        self._fail("lost the connection to NATS", unreachable=True)

    def _fail(self, message: str, *, unreachable: bool) -> None:
        if not self.failed.is_set():
            self.message, self.unreachable = message, unreachable
            self.failed.set()


@contextlib.asynccontextmanager
async def connect(
    url: str, login: tuple[str, str] | None, problems: _Problems | None = None
) -> AsyncIterator[Client]:
    """One connection, no reconnecting: a command that loses the bus says so and ends."""
    options: dict[str, Any] = {
        "servers": [u.strip() for u in url.split(",") if u.strip()],
        "name": "netweave-cli",
        "connect_timeout": 3,
        # nats-py otherwise retries an unreachable server for two minutes before saying so.
        "allow_reconnect": False,
        "max_reconnect_attempts": 1,
    }
    if login is not None:
        options.update(user=login[0], password=login[1])
    if problems is not None:
        options.update(error_cb=problems.on_error, disconnected_cb=problems.on_disconnect)
    else:
        options.update(error_cb=_quiet)
    try:
        nc = await nats.connect(**options)
    except nats.errors.NoServersError:
        raise Unreachable(f"cannot reach NATS at {url}; is the stack running (`netweave up`)?") from None
    except (OSError, TimeoutError) as exc:
        raise Unreachable(f"cannot reach NATS at {url}: {exc}") from None
    except nats.errors.Error as exc:
        who = login[0] if login else "without credentials"
        raise Refused(f"NATS at {url} refused the login ({who}): {exc}") from None
    try:
        yield nc
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


async def _quiet(exc: Exception) -> None:
    # Failures surface as exceptions from the call that met them; no second report.
    return None


@contextlib.contextmanager
def bus_errors(what: str) -> Iterator[None]:
    """A JetStream refusal or silence, as a message for the operator (exit 1)."""
    try:
        yield
    except (nats.errors.TimeoutError, TimeoutError):
        # A request the login may not make gets no answer at all: the server drops it.
        raise Refused(
            f"{what}: NATS did not answer; is this login allowed to do that? (replaying needs {ADMIN_USER})"
        ) from None
    except (nats.js.errors.Error, nats.errors.Error) as exc:
        raise Refused(f"{what}: {exc}") from None


# ----------------------------------------------------------------------------- tail


def event_line(subject: str, data: bytes) -> str:
    """time, type, NATS subject, correlation id: one line per message, greppable."""
    try:
        event = CloudEvent.from_json(data)
    except ValueError:
        return _foreign_line(subject, data)
    when = event.time.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"{when}  {event.type}  {subject}  {event.correlationid or '-'}"


def _foreign_line(subject: str, data: bytes) -> str:
    try:
        record = json.loads(data)
    except ValueError:
        record = None
    if isinstance(record, dict) and "consumer" in record and "reason" in record:
        return f"{record.get('failed_at', '-')}  dead-letter  {subject}  {record['reason'].splitlines()[0]}"
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"{now}  (not a CloudEvent)  {subject}  -"


def event_json(subject: str, data: bytes) -> Any:
    """The envelope as it travelled; what is no JSON comes with its subject, as text."""
    try:
        return json.loads(data)
    except ValueError:
        return {"nats_subject": subject, "undecodable": data.decode(errors="replace")}


async def _tail(
    url: str, login: tuple[str, str] | None, subject: str, count: int | None, output: OutputFormat
) -> int:
    problems = _Problems()
    stop = asyncio.Event()
    seen = 0

    async def on_message(msg: Msg) -> None:
        nonlocal seen
        if stop.is_set():
            return
        if output is OutputFormat.json:
            print_json(event_json(msg.subject, msg.data))
        else:
            print(event_line(msg.subject, msg.data), flush=True)
        seen += 1
        if count is not None and seen >= count:
            stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with connect(url, login, problems) as nc:
        await nc.subscribe(subject, cb=on_message)
        await nc.flush()
        # The server reports a denied subscription just after the flush.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(problems.failed.wait(), 0.2)
        if not problems.failed.is_set():
            err.print(f"following {subject} on {url}; Ctrl-C stops", highlight=False)
        await asyncio.wait(
            {asyncio.create_task(stop.wait()), asyncio.create_task(problems.failed.wait())},
            return_when=asyncio.FIRST_COMPLETED,
        )
    if problems.failed.is_set() and not stop.is_set():
        if problems.unreachable:
            raise Unreachable(f"{problems.message} at {url}")
        raise Refused(problems.message)
    return EXIT_OK


@app.command("tail")
def tail(
    subject: Annotated[
        str, typer.Option("--subject", help="NATS subject pattern, e.g. netweave.order.>")
    ] = DEFAULT_SUBJECT,
    count: Annotated[int | None, typer.Option("--count", min=1, help="stop after this many")] = None,
    output: Output = OutputFormat.table,
    nats_url: NatsServer = None,
    nats_user: NatsUser = None,
    nats_password: NatsPassword = None,
) -> None:
    """Print events as they happen: time, type, subject, correlation id (the order)."""
    ep = endpoints(nats=nats_url, nats_user=nats_user, nats_password=nats_password)
    # Reading needs no login: an anonymous connection is the read-only observer.
    login = (ep.nats_user, ep.nats_password) if ep.nats_user and ep.nats_password else None
    run(lambda: _tail(ep.nats, login, subject, count, output))


# ----------------------------------------------------------------------------- dead letters


@dataclass(frozen=True)
class DeadLetter:
    sequence: int
    record: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"sequence": self.sequence, **self.record}


def _record(data: bytes | None) -> dict[str, Any]:
    try:
        record = json.loads(data or b"")
    except ValueError:
        record = None
    return record if isinstance(record, dict) else {"raw": (data or b"").decode(errors="replace")}


async def read_dead_letters(jsm: JetStreamManager) -> list[DeadLetter]:
    info = await jsm.stream_info(DEADLETTER.name)
    found: list[DeadLetter] = []
    cursor = max(1, info.state.first_seq)
    while True:
        try:
            msg = await jsm.get_msg(DEADLETTER.name, seq=cursor, subject=DLQ_SUBJECTS, next=True)
        except nats.js.errors.NotFoundError:
            return found
        if msg.seq is None:
            return found
        found.append(DeadLetter(msg.seq, _record(msg.data)))
        cursor = msg.seq + 1


def dead_letters_table(letters: list[DeadLetter]) -> Table:
    table = Table(title=f"dead letters ({len(letters)})")
    for column in ("seq", "failed at", "consumer", "subject", "from", "tries", "reason"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        r = letter.record
        table.add_row(
            str(letter.sequence),
            str(r.get("failed_at", ""))[:19],
            str(r.get("consumer", "")),
            str(r.get("subject", "")),
            f"{r.get('stream', '')}:{r.get('stream_sequence', '')}",
            str(r.get("deliveries", "")),
            str(r.get("reason", r.get("raw", ""))).splitlines()[0] if r else "",
        )
    return table


@dlq_app.command("list")
def dlq_list(
    output: Output = OutputFormat.table,
    nats_url: NatsServer = None,
    data_dir: DataDirOpt = None,
    nats_user: NatsUser = None,
    nats_password: NatsPassword = None,
) -> None:
    """List dead letters: which consumer gave up on what, when and why."""
    ep = endpoints(nats=nats_url, data_dir=data_dir, nats_user=nats_user, nats_password=nats_password)

    async def work() -> int:
        # The read-only observer may read the stream too; the admin login is used when at hand.
        async with connect(ep.nats, bus_login(ep)) as nc:
            with bus_errors("reading the dead letters"):
                letters = await read_dead_letters(nc.jsm())
        if output is OutputFormat.json:
            print_json([letter.as_json() for letter in letters])
        else:
            console.print(dead_letters_table(letters))
        return EXIT_OK

    run(work)


@dataclass(frozen=True)
class Replayed:
    sequence: int
    subject: str
    stream: str
    stream_sequence: int
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "subject": self.subject,
            "stream": self.stream,
            "stream_sequence": self.stream_sequence,
            "note": self.note,
        }


async def _original(jsm: JetStreamManager, record: dict[str, Any]) -> tuple[bytes, dict[str, str], str]:
    """The dead-lettered message as it was first published, headers included, when still stored."""
    try:
        msg = await jsm.get_msg(str(record["stream"]), seq=int(record["stream_sequence"]))
    except nats.js.errors.NotFoundError:
        text = str(record.get("message", ""))
        return text.encode(), {}, "the original is gone from its stream: replayed the dead letter's copy"
    return msg.data or b"", dict(msg.headers or {}), ""


async def replay_one(nc: Client, sequence: int) -> Replayed:
    """Publish a dead letter to its original subject, then remove it from the dead letters."""
    jsm = nc.jsm()
    try:
        dead = await jsm.get_msg(DEADLETTER.name, seq=sequence)
    except nats.js.errors.NotFoundError:
        raise Refused(f"there is no dead letter {sequence}") from None
    record = _record(dead.data)
    if not {"subject", "stream", "stream_sequence"} <= set(record):
        raise Refused(f"dead letter {sequence} names no original subject; not replayed")
    data, headers, note = await _original(jsm, record)
    # JetStream drops a publish whose Nats-Msg-Id it saw within the duplicate window, so
    # the original id could swallow the replay; one derived from this dead letter still
    # makes a second replay of it (say, after a crash before the removal) a duplicate.
    original_id = headers.get("Nats-Msg-Id") or str(record["subject"])
    headers["Nats-Msg-Id"] = f"{original_id}.replay.{sequence}"
    ack = await nc.jetstream().publish(str(record["subject"]), data, headers=headers, timeout=5)
    await jsm.delete_msg(DEADLETTER.name, sequence)
    if ack.duplicate:
        note = "already replayed before: removed from the dead letters only"
    return Replayed(sequence, str(record["subject"]), ack.stream, ack.seq, note)


@dlq_app.command("replay")
def dlq_replay(
    sequence: Annotated[
        int | None, typer.Argument(metavar="SEQ", help="the dead letter's sequence (see `dlq list`)")
    ] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="every dead letter, oldest first")] = False,
    output: Output = OutputFormat.table,
    nats_url: NatsServer = None,
    data_dir: DataDirOpt = None,
    nats_user: NatsUser = None,
    nats_password: NatsPassword = None,
) -> None:
    """Republish dead letters to their original subjects with their original headers; needs bus-admin."""
    if (sequence is None) == (not replay_all):
        err.print("name one dead letter (SEQ) or --all")
        raise typer.Exit(EXIT_UNREACHABLE)
    ep = endpoints(nats=nats_url, data_dir=data_dir, nats_user=nats_user, nats_password=nats_password)
    login = bus_login(ep)
    if login is None:
        err.print(
            f"replaying needs the {ADMIN_USER} login: run where `netweave up` keeps its data "
            "(--data-dir), or give --nats-user/--nats-password"
        )
        raise typer.Exit(1)

    named = [sequence] if sequence is not None else []

    async def work() -> int:
        async with connect(ep.nats, login) as nc:
            with bus_errors("reading the dead letters"):
                letters = await read_dead_letters(nc.jsm()) if replay_all else []
            wanted = [letter.sequence for letter in letters] if replay_all else named
            for seq in wanted:
                with bus_errors(f"replaying dead letter {seq}"):
                    replayed = await replay_one(nc, seq)
                if output is OutputFormat.json:
                    print_json(replayed.as_json())
                else:
                    console.print(
                        f"dead letter {seq} → {replayed.subject} "
                        f"({replayed.stream}:{replayed.stream_sequence})"
                        + (f"; {replayed.note}" if replayed.note else "")
                    )
        return EXIT_OK

    run(work)
