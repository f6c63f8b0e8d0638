"""What the ``orders``, ``subscriptions`` and ``events`` commands share: options, output, exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console

from netweave.cli.client import ApiRefused
from netweave.cli.settings import ConfigError, Endpoints, resolve

# Exit codes (docs/cli.md): scripts tell a refusal from an outage from a failed order.
EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_UNREACHABLE = 2
EXIT_ORDER_NOT_COMPLETED = 3
EXIT_TIMEOUT = 4
EXIT_INTERRUPTED = 130

console = Console()
err = Console(stderr=True)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


class Refused(Exception):
    """The bus or a check said no; the message says why (exit 1)."""


class Unreachable(Exception):
    """Nothing answered at the endpoint; the message names it (exit 2)."""


Output = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="table (people) or json (scripts)", case_sensitive=False),
]
OrderApiUrl = Annotated[
    str | None,
    typer.Option("--order-api", help="order API base URL (env NETWEAVE_ORDER_API_URL)", show_default=False),
]
SubscriptionsUrl = Annotated[
    str | None,
    typer.Option(
        "--subscriptions",
        help="subscriptions service URL (env NETWEAVE_SUBSCRIPTIONS_URL)",
        show_default=False,
    ),
]
NatsServer = Annotated[
    str | None, typer.Option("--nats", help="NATS URL (env NETWEAVE_NATS_URL)", show_default=False)
]
Token = Annotated[
    str | None,
    typer.Option("--token", help="bearer token for the APIs (env NETWEAVE_TOKEN)", show_default=False),
]
DataDirOpt = Annotated[
    str | None,
    typer.Option(
        "--data-dir",
        help="the embedded stack's directory, for its bus-admin login (env NETWEAVE_DATA_DIR)",
        show_default=False,
    ),
]
NatsUser = Annotated[
    str | None, typer.Option("--nats-user", help="(env NETWEAVE_NATS_USER)", show_default=False)
]
NatsPassword = Annotated[
    str | None, typer.Option("--nats-password", help="(env NETWEAVE_NATS_PASSWORD)", show_default=False)
]


def endpoints(**flags: str | None) -> Endpoints:
    try:
        return resolve(flags, os.environ)
    except ConfigError as exc:
        err.print(f"[red]configuration:[/] {exc}")
        raise typer.Exit(EXIT_UNREACHABLE) from None


def print_json(value: Any) -> None:
    """One JSON document on one line: what ``jq`` and ``json.loads`` per line expect."""
    print(json.dumps(value, ensure_ascii=False), flush=True)


def refusal_lines(exc: ApiRefused) -> list[str]:
    where = f" by {exc.url}" if exc.url else ""
    code = f" {exc.code}" if exc.code else ""
    lines = [f"refused{where} ({exc.status}{code}): {exc.reason}"]
    if exc.message and exc.message != exc.reason:
        lines.append(f"  {exc.message}")
    for detail in exc.details:
        problem = str(detail.get("problem") or json.dumps(detail))
        if problem in exc.reason or problem in (exc.message or ""):
            continue  # already said; details repeat it for machines
        field = ".".join(str(detail[k]) for k in ("item", "field") if detail.get(k))
        lines.append(f"  {field}: {problem}" if field else f"  {problem}")
    return lines


def unreachable_line(exc: httpx.RequestError) -> str:
    url = exc.request.url
    origin = f"{url.scheme}://{url.netloc.decode()}"
    detail = str(exc) or type(exc).__name__
    return (
        f"cannot reach {origin} ({detail}); is the stack running (`netweave up`), "
        "or does --order-api/--subscriptions name it?"
    )


def run(work: Callable[[], Coroutine[Any, Any, int]]) -> NoReturn:
    """Run a command's coroutine; turn the ways it can end into a message and an exit code."""
    try:
        code = asyncio.run(work())
    except ApiRefused as exc:
        for line in refusal_lines(exc):
            err.print(line, markup=False, highlight=False, soft_wrap=True)
        code = EXIT_REFUSED
    except httpx.RequestError as exc:
        err.print(unreachable_line(exc), markup=False, highlight=False, soft_wrap=True)
        code = EXIT_UNREACHABLE
    except Refused as exc:
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        code = EXIT_REFUSED
    except Unreachable as exc:
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        code = EXIT_UNREACHABLE
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`netweave events tail | head`): that is how such output ends.
        # Point stdout at /dev/null so flushing it at exit does not raise a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    raise typer.Exit(code)
