"""The `jobledger` command line: serve the stack, run the demo, and drive jobs."""

import asyncio
import contextlib
import json
import logging
import re
import signal
import socket
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import httpx
import psycopg
import typer
import uvicorn
import yaml
from eventsourcing.persistence import PersistenceError
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from api.app import VERSION, build_app, in_process_client
from api.bootstrap import ALL_ROLES, Role, running_stack
from api.catalog_io import SEED_CATALOG, Entries, read_catalog_file
from api.catalog_routes import PATHS
from domain.envelope import EventEnvelope
from domain.permissions import ProjectRole, User
from domain.statuses import FINAL
from handlers.relay import ForeignStreams
from infra.asyncapi import bus_document
from infra.bus import event_subject, jetstream
from infra.embedded_nats import exclusive
from infra.event_feed import events
from infra.event_store import EventStore, open_event_store
from infra.read_store import ReadStore
from infra.settings import Settings
from infra.users import UserExists, Users, fingerprint
from projections.audit_export import (
    ExportFormat,
    check_export,
    format_of,
    jobs_of_project,
    write_export,
)
from projections.replay import replay
from projections.time_travel import view_as_of
from projections.verification import verify as verify_read_store
from projections.view_diff import in_zone, point_of, view_changes

app = typer.Typer(help="jobledger: an event-sourced job system on NATS JetStream.")
console = Console()

UrlOption = Annotated[
    str | None,
    typer.Option(help="URL of a running `jobledger serve`; default: its address, else embedded"),
]


def main() -> None:
    try:
        app()
    except (PersistenceError, psycopg.Error) as error:
        # A PostgreSQL event store that cannot be reached or used: its own words, one line.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        typer.echo(f"Cannot use the event store of JOBLEDGER_EVENT_STORE: {reason}", err=True)
        sys.exit(1)
    except OSError as error:
        # A data dir or file this environment does not allow: say which, without a traceback.
        if error.filename is None:
            raise
        typer.echo(f"Cannot use {error.filename}: {error.strerror}", err=True)
        sys.exit(1)


def run(coroutine: Callable[[], Awaitable[None]]) -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(coroutine())  # type: ignore[arg-type]
        except ForeignStreams as error:
            fail(str(error))


SHUTDOWN_GRACE = 2  # seconds requests in flight get to finish when `serve` stops


def ensure_free(host: str, port: int) -> None:
    """Fail before starting anything when the API's address is taken."""
    with socket.socket() as probe:
        # As uvicorn binds: connections of an earlier run waiting to close do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            console.print(
                f"[red]{host}:{port} is not free ({error.strerror}); set JOBLEDGER_API_PORT"
            )
            raise typer.Exit(1) from None


class StreamClosingServer(uvicorn.Server):
    """Sets `closing` when a signal asks it to stop, so that live streams end and it stops
    without cutting them off."""

    def __init__(self, config: uvicorn.Config, closing: asyncio.Event) -> None:
        super().__init__(config)
        self.closing = closing
        self.loop = asyncio.get_running_loop()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.loop.call_soon_threadsafe(self.closing.set)  # from a signal handler
        super().handle_exit(sig, frame)


@app.command()
def serve() -> None:
    """Run everything in one process (embedded NATS unless JOBLEDGER_NATS_URL) until Ctrl-C."""
    settings = Settings()
    ensure_free(settings.api_host, settings.api_port)
    # A stop request ends the stack as Ctrl-C does: its roles stop and hand their work back.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    async def serving() -> None:
        async with running_stack(settings) as stack:
            config = uvicorn.Config(
                build_app(stack),
                host=settings.api_host,
                port=settings.api_port,
                log_level="info",
                # Live event streams never end by themselves: do not wait for them on a stop.
                timeout_graceful_shutdown=SHUTDOWN_GRACE,
            )
            console.print(
                f"jobledger on http://{settings.api_host}:{settings.api_port}/api/v2/jobs/"
            )
            await StreamClosingServer(config, stack.closing).serve()

    run(serving)


@app.command()
def demo(delay: Annotated[int, typer.Option(min=1, help="seconds the test job runs")] = 10) -> None:
    """Run the seed's test job "Trest" on the embedded stack, live, then show it and its history."""
    settings = Settings()

    async def demonstrating() -> None:
        async with running_stack(settings) as stack:
            await stack.save_catalog(SEED_CATALOG)
            async with in_process_client(stack, stack.users.operator_token()) as client:
                created = await call(
                    client.post(
                        "/api/v2/jobs/",
                        params={"start_now": "true"},
                        json={
                            "name": "Trest",
                            "delay": delay,
                            "limit": 100,
                            "shuffle": True,
                            "project_id": 16,
                            "source_image_collection_id": 5,
                            "pipeline_id": 1,
                        },
                    )
                )
                console.rule(f'Job #{created["id"]} "{created["name"]}"')
                feed = events(jetstream(stack.broker), event_subject(created["id"], ">"), 1, True)
                await show_live(feed, created["id"])
                console.rule("The job")
                console.print_json(data=await call(client.get(f"/api/v2/jobs/{created['id']}/")))
                console.rule("Its history")
                page = await call(client.get(f"/api/v2/jobs/{created['id']}/history/"))
                history = page["results"]
                print_history(history)

    run(demonstrating)


SETTLE = 0.5  # seconds to wait for the rest of the command that ended a job


async def show_live(feed: AsyncIterator[EventEnvelope], job_id: int | None) -> None:
    """Progress bars (per stage of one job, or per job) and log lines, as events arrive.

    Watching one job ends once it has ended; watching all jobs goes on until Ctrl-C.
    """
    bars: dict[tuple[int, str], TaskID] = {}
    ended = False
    columns = (
        TextColumn("{task.description:>20}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=console) as progress:

        def bar(key: tuple[int, str], name: str) -> TaskID:
            if key not in bars:
                bars[key] = progress.add_task(name, total=1.0, status="")
            return bars[key]

        while True:
            try:
                event = await asyncio.wait_for(anext(feed), SETTLE if ended else None)
            except (TimeoutError, StopAsyncIteration):
                return
            data = event.data
            if job_id is None:  # one bar per job, its summary
                summary = data.get("summary") or (data.get("progress") or {}).get("summary")
                if summary is not None:
                    progress.update(
                        bar((event.job_id, ""), f"job {event.job_id}"),
                        completed=summary["progress"],
                        status=summary["status"],
                    )
            else:
                for stage in stages_in(data):
                    progress.update(
                        bar((event.job_id, stage["key"]), stage["name"]),
                        completed=stage["progress"],
                        status=stage["status"],
                    )
            if event.type == "LogAppended":
                who = "" if job_id is not None else f"job {event.job_id}: "
                progress.console.print(
                    f"[dim]{event.occurred_at:%H:%M:%S}[/] {who}{data['message']}"
                )
            if event.type == "StatusChanged" and job_id is not None:
                ended = data["status"] in FINAL


def stages_in(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The stages an event carries: one that progressed, or all (created, retried, tallied)."""
    if "stage" in data:
        return [data["stage"]]
    stages: list[dict[str, Any]] = data.get("stages") or data.get("progress", {}).get("stages", [])
    return stages


async def server_sent_events(response: httpx.Response) -> AsyncIterator[tuple[str, EventEnvelope]]:
    """The ids and envelopes of a Server-Sent Events body, as they arrive."""
    event_id = ""
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            event_id = line[len("id: ") :]
        elif line.startswith("data: "):
            yield event_id, EventEnvelope.model_validate_json(line[len("data: ") :])


RECONNECT_DELAY = 1.0  # seconds between tries while `serve` is away


async def followed(client: httpx.AsyncClient, path: str) -> AsyncGenerator[EventEnvelope, None]:
    """The events of a live stream; when the connection ends (`serve` stopped or restarts),
    the stream again from after the last event seen (Last-Event-ID), so none is missed."""
    last_id = ""
    while True:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        try:
            async with client.stream("GET", path, timeout=None, headers=headers) as response:
                if response.is_error:
                    await response.aread()
                    console.print(f"[red]{response.status_code}[/] {response.text}")
                    raise typer.Exit(1)
                async for event_id, event in server_sent_events(response):
                    last_id = event_id
                    yield event
        except httpx.TransportError:
            pass
        console.print(f"[dim]no stream from {client.base_url}; reconnecting[/]")
        await asyncio.sleep(RECONNECT_DELAY)


def describe(event: dict[str, Any]) -> str:
    """One line that says what an event did."""
    data = event["data"]
    match event["type"]:
        case "JobCreated":
            return f'"{data["spec"]["name"]}" in project {data["spec"]["project_id"]}'
        case "StatusChanged":
            return f"{data['previous_status']} → {data['status']}"
        case "StageProgressed":
            stage = data["stage"]
            return f"{stage['key']} {stage['status']} {stage['progress']:.0%}"
        case "LogAppended":
            return f"{data['level']} {data['message']}"
        case "CommandRefused":
            return f"{data['command']}: {data['reason']}"
        case "JobRetried" | "CancelRequested":
            return f"attempt {data['attempt']}"
        case "JobClaimed":
            return f"attempt {data['attempt']} by {data['runner']}"
    return json.dumps(data, ensure_ascii=False)


def print_history(history: list[dict[str, Any]]) -> None:
    """One line per event: version, position, attempt, time, type, actor, command, what."""
    for event in history:
        console.print(
            f"{event['version']:>4} {event.get('position') or '':>6} a{event.get('attempt') or ''}"
            f" {event['occurred_at'][11:23]} [bold]{event['type']}[/] {event['actor']}"
            f" {event['causation_id'][:8]}  {describe(event)}",
            highlight=False,
        )


@contextlib.asynccontextmanager
async def api_client(url: str | None, embedded: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the running `serve`, or of an embedded stack started for this command."""
    settings = Settings()
    target = url or f"http://{settings.api_host}:{settings.api_port}"
    # Without a token of its own the CLI acts as this data dir's local operator.
    token = settings.token or Users(settings.users_path).operator_token()
    headers = {"Authorization": f"Token {token}"}
    async with httpx.AsyncClient(base_url=target, timeout=30, headers=headers) as client:
        try:
            await client.get("/api/v2/jobs/", params={"limit": 1})
        except httpx.TransportError:
            if url or not embedded:
                raise typer.BadParameter(f"no jobledger API answers at {target}") from None
        else:
            yield client
            return
    # Jobs queued here wait for a runner: the next `jobledger serve` runs them.
    try:
        lock_free(settings)
    except RuntimeError as error:
        console.print(f"[red]{error}[/]: give its address with --url or JOBLEDGER_API_PORT")
        raise typer.Exit(1) from None
    async with (
        running_stack(settings, ALL_ROLES - {Role.RUNNER}) as stack,
        in_process_client(stack, stack.users.operator_token()) as client,
    ):
        yield client


def lock_free(settings: Settings) -> None:
    """Fail at once when another process runs this data dir's embedded NATS server."""
    if settings.nats_url:
        return
    store = settings.data_dir / "nats"
    store.mkdir(parents=True, exist_ok=True)
    with exclusive(store):
        pass


async def call(request: Awaitable[httpx.Response]) -> Any:
    response = await request
    if response.is_error:
        console.print(f"[red]{response.status_code}[/] {response.text}")
        raise typer.Exit(1)
    return response.json()


def show_json(
    request: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]], url: str | None
) -> None:
    async def calling() -> None:
        async with api_client(url) as client:
            console.print_json(data=await call(request(client)))

    run(calling)


users = typer.Typer(help="Users, their tokens and their roles per project.")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
app.add_typer(users, name="users")


def user_line(user: User) -> str:
    roles = ", ".join(f"{project}: {role}" for project, role in sorted(user.roles.items()))
    return f"{user.email}{' (superuser)' if user.is_superuser else ''}  {roles}"


def token_line(user: User, store: Users) -> str:
    return f"  tokens: {', '.join(store.token_prefixes(user.email)) or 'none'}"


@users.command("add")
def add_user(
    email: str, superuser: Annotated[bool, typer.Option(help="may do everything")] = False
) -> None:
    """Add a user and print a new token for it."""
    if not EMAIL.fullmatch(email):
        fail(f"{email!r} is not an email address (name@domain)")
    store = Users(Settings().users_path)
    try:
        user = store.add_new(email, superuser)
    except UserExists:
        fail(f"{email} exists already; `jobledger users token {email}` prints another token")
    console.print(user_line(user))
    console.print(f"token: {store.new_token(email)}")


@contextlib.contextmanager
def known_user() -> Iterator[None]:
    """A user command about a user that does not exist says so in one line."""
    try:
        yield
    except KeyError as error:
        fail(f"{error.args[0]}; add it first with `jobledger users add`")


@users.command("token")
def new_token(email: str) -> None:
    """Print a new token for a user."""
    with known_user():
        print(Users(Settings().users_path).new_token(email))


@users.command("grant")
def grant(email: str, project: int, role: ProjectRole) -> None:
    """Give a user a role on a project: viewer, member, worker or owner."""
    with known_user():
        console.print(user_line(Users(Settings().users_path).grant(email, project, role)))


@users.command("revoke")
def revoke(email: str, project: int) -> None:
    """Take a user's role on a project away."""
    store = Users(Settings().users_path)
    with known_user():
        if project not in store.get(email).roles:
            fail(f"{email} has no role on project {project}")
        console.print(user_line(store.revoke(email, project)))


@users.command("revoke-token")
def revoke_token(
    prefix: Annotated[str, typer.Argument(help="the token's first 8 or more characters")],
) -> None:
    """Revoke one token: requests with it get 401 from then on."""
    if len(prefix) < 8:
        fail("give the token's first 8 characters at least")
    store = Users(Settings().users_path)
    matching = store.tokens_starting(prefix)
    if not matching:
        fail(f"no token starts with {prefix!r}; `jobledger users ls` shows them")
    if len(matching) > 1:
        fail(f"{len(matching)} tokens start with {prefix!r}; give more of the token to revoke one")
    email = store.revoke_token(matching[0])
    console.print(f"revoked {fingerprint(matching[0])} of {email}")


@users.command("remove")
def remove_user(email: str) -> None:
    """Remove a user with its tokens and roles."""
    with known_user():
        Users(Settings().users_path).remove(email)
    console.print(f"removed {email}")


@users.command("ls")
def list_users() -> None:
    """List users, their roles and their tokens (by their first 8 characters)."""
    store = Users(Settings().users_path)
    for user in store.all():
        console.print(user_line(user))
        console.print(token_line(user, store))


catalog = typer.Typer(help="The projects, collections, pipelines, ... that jobs refer to.")
app.add_typer(catalog, name="catalog")


@catalog.command("import")
def import_catalog(path: Path, url: UrlOption = None) -> None:
    """Add or replace catalog objects from a JSON or YAML file of kinds to lists of objects.

    The whole file is checked first: a bad object or reference saves nothing."""
    entries = catalog_file(path)

    async def importing() -> None:
        async with api_client(url) as client:
            counts = await call(client.post("/api/v2/catalog/", json=entries))
        console.print(", ".join(f"{count} {kind}" for kind, count in counts.items()))

    run(importing)


def catalog_file(path: Path) -> Entries:
    """The catalog a file holds; a file that cannot be read or parsed is a one-line error."""
    try:
        return read_catalog_file(path)
    except OSError as error:
        fail(f"Cannot read {path}: {error.strerror}")
    except UnicodeDecodeError as error:
        fail(f"Cannot read {path}: not {error.encoding} text (byte {error.start})")
    except yaml.YAMLError as error:
        fail(f"{path}: not valid YAML: {yaml_problem(error)}")
    except ValueError as error:  # not a mapping of kinds; the message names the file
        fail(str(error))


def yaml_problem(error: yaml.YAMLError) -> str:
    """What is wrong and where, in one line: PyYAML's message quotes the line over several."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"{error.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(error).split())


@catalog.command("show")
def show_catalog(url: UrlOption = None) -> None:
    """Print the catalog, every kind."""

    async def showing() -> None:
        async with api_client(url) as client:
            shown = {}
            for kind, path in PATHS.items():
                page = await call(client.get(f"/api/v2/{path}/", params={"limit": 10**9}))
                shown[kind] = page["results"]
        console.print_json(data=shown)

    run(showing)


@app.command()
def asyncapi() -> None:
    """Print the AsyncAPI document of the bus (YAML), as kept in docs/asyncapi.yaml."""
    # Keys sorted: FastStream's order of channels varies from run to run.
    document = bus_document(VERSION).to_jsonable()
    print(yaml.safe_dump(document, sort_keys=True, allow_unicode=True), end="")


@app.command()
def watch(
    job_id: Annotated[int | None, typer.Argument(help="a job; without it, every job")] = None,
    url: Annotated[
        str | None, typer.Option(help="URL of a running `jobledger serve`; default: its address")
    ] = None,
) -> None:
    """Follow a job live (progress per stage and its logs) until it ends, or every job."""
    path = f"/api/v2/jobs/{job_id}/events/" if job_id is not None else "/api/v2/events/"

    async def watching() -> None:
        # Only a running `serve` moves jobs, so there is nothing to watch without one.
        async with api_client(url, embedded=False) as client:
            feed = followed(client, path)
            async with contextlib.aclosing(feed):
                await show_live(feed, job_id)

    run(watching)


@app.command()
def create(
    name: Annotated[str, typer.Argument()],
    project: Annotated[int, typer.Option(help="project id")],
    delay: Annotated[int, typer.Option(help="seconds of a test job")] = 0,
    pipeline: Annotated[int | None, typer.Option(help="pipeline id")] = None,
    collection: Annotated[int | None, typer.Option(help="capture collection id")] = None,
    start_now: Annotated[bool, typer.Option(help="queue it at once")] = False,
    url: UrlOption = None,
) -> None:
    """Create a job."""
    body = {
        "name": name,
        "delay": delay,
        "project_id": project,
        "pipeline_id": pipeline,
        "source_image_collection_id": collection,
    }
    params = {"start_now": "true"} if start_now else {}
    show_json(lambda c: c.post("/api/v2/jobs/", json=body, params=params), url)


@app.command("run")
def run_job(job_id: int, url: UrlOption = None) -> None:
    """Queue a job."""
    show_json(lambda c: c.post(f"/api/v2/jobs/{job_id}/run/"), url)


@app.command()
def cancel(job_id: int, url: UrlOption = None) -> None:
    """Cancel a job."""
    show_json(lambda c: c.post(f"/api/v2/jobs/{job_id}/cancel/"), url)


@app.command()
def retry(job_id: int, url: UrlOption = None) -> None:
    """Run a job that ended again, as a new attempt."""
    show_json(lambda c: c.post(f"/api/v2/jobs/{job_id}/retry/"), url)


def as_of_params(as_of: str | None) -> dict[str, str]:
    """The query that asks for the job as it was: an integer is a version, anything else a time."""
    if as_of is None:
        return {}
    try:
        int(as_of)
    except ValueError:
        return {"as_of": as_of}
    return {"as_of_version": as_of}


@app.command()
def show(
    job_id: int,
    as_of: Annotated[
        str | None, typer.Option(help="as it was at this version, or ISO 8601 time")
    ] = None,
    url: UrlOption = None,
) -> None:
    """Show a job, now or as it was at an earlier version or time."""
    show_json(lambda c: c.get(f"/api/v2/jobs/{job_id}/", params=as_of_params(as_of)), url)


@app.command()
def ls(
    limit: Annotated[int, typer.Option()] = 20,
    offset: Annotated[int, typer.Option()] = 0,
    url: UrlOption = None,
) -> None:
    """List jobs, newest first."""

    async def listing() -> None:
        async with api_client(url) as client:
            page = await call(
                client.get("/api/v2/jobs/", params={"limit": limit, "offset": offset})
            )
        table = Table("id", "name", "status", "progress", "created", title=f"{page['count']} jobs")
        for job in page["results"]:
            summary = job["progress"]["summary"]
            table.add_row(
                str(job["id"]),
                job["name"],
                job["status"],
                f"{summary['progress']:.0%}",
                job["created_at"][:19],
            )
        console.print(table)

    run(listing)


@app.command()
def history(
    job_id: int,
    type: Annotated[str | None, typer.Option(help="only events of this type")] = None,
    attempt: Annotated[int | None, typer.Option(help="only this attempt's events")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time")] = None,
    url: UrlOption = None,
) -> None:
    """Show a job's events, in order, with the command that caused each."""
    given = {"type": type, "attempt": attempt, "since": since, "until": until}
    filters = {key: value for key, value in given.items() if value is not None}

    async def reading() -> None:
        async with api_client(url) as client:
            page = await call(client.get(f"/api/v2/jobs/{job_id}/history/", params=filters))
            print_history(page["results"])

    run(reading)


@app.command()
def rebuild(
    from_stream: Annotated[
        bool, typer.Option(help="replay JOBS_EVENTS instead of the event store")
    ] = False,
) -> None:
    """Build a new read model from the first event; the projection switches to it once it
    has caught up (at once in a running `serve`, else when one starts)."""
    settings = Settings()
    store = ReadStore(settings.read_store_path)
    file = store.new_generation()
    if from_stream:
        console.print(f"{file.name}: the projection fills it from the first event in JOBS_EVENTS")
    else:
        position = replay(open_event_store(settings), ReadStore(file))
        console.print(f"{file.name}: replayed the event store up to position {position}")
    store.offer(file)
    console.print(
        "The projection catches it up, compares it with the live read model and switches to it"
        " (a running `serve` at once, else the next one); the old file is then removed."
    )


@app.command()
def verify() -> None:
    """Replay every event of the data dir's event store into a fresh read model and compare it
    with the live one; exit 1 if they differ."""
    settings = Settings()
    events = open_event_store(settings)
    try:
        result = verify_read_store(events, ReadStore(settings.read_store_path))
    finally:
        events.close()
    for difference in result.differences:
        typer.echo(difference)
    if result.differences:
        typer.echo(f"{len(result.differences)} differences from a replay of every event")
        raise typer.Exit(1)
    typer.echo(
        f"The live read model equals a replay of every event"
        f" ({result.jobs} jobs, {result.log_lines} log lines and {result.catalog_objects}"
        " catalog objects compared)."
    )


def fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(1)


def histories_to_export(
    events: EventStore, job_id: int | None, project: int | None
) -> list[list[EventEnvelope]]:
    """One job's history, or those of every job that was ever in the project, by job id."""
    if job_id is not None and project is None:
        return [events.job_history(job_id)]
    if project is not None and job_id is None:
        job_ids = jobs_of_project(events.all_envelopes(), project)
        return [events.job_history(job) for job in job_ids]
    raise typer.BadParameter("give a job id or --project, one of them")


@app.command("export-history")
def export_history(
    job_id: Annotated[int | None, typer.Argument(help="the job; or give --project")] = None,
    project: Annotated[
        int | None, typer.Option(help="every job that was ever in this project, by id")
    ] = None,
    export_format: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.JSONL,
    output: Annotated[
        Path | None, typer.Option(help="the file to write; default: standard output")
    ] = None,
) -> None:
    """Export a job's events (or a project's jobs'), one a line, sealed by a SHA-256 chain;
    print the chain's head (event count and last hash) on standard error."""
    events = open_event_store(Settings())
    try:
        histories = histories_to_export(events, job_id, project)
    finally:
        events.close()
    if not any(histories):
        fail(f"Job {job_id} has no events." if project is None else f"No job in project {project}.")
    try:
        out = output.open("w", encoding="utf-8", newline="") if output else None
    except OSError as error:
        fail(f"Cannot write {output}: {error.strerror}")
    with out or contextlib.nullcontext(sys.stdout) as writing:
        head = write_export(
            (event for history in histories for event in history), export_format, writing
        )
    typer.echo(str(head), err=True)


@app.command("verify-export")
def verify_export(
    path: Path,
    expect_hash: Annotated[
        str | None, typer.Option(help="the chain head kept apart from the file")
    ] = None,
) -> None:
    """Recompute an export's SHA-256 chain (JSON Lines or CSV, by extension or content); exit 1
    at the first line that breaks it, or when its last hash is not --expect-hash."""
    try:
        text = path.read_bytes().decode()
    except OSError as error:
        fail(f"Cannot read {path}: {error.strerror}")
    except UnicodeDecodeError as error:
        fail(f"BROKEN: not UTF-8 text ({error})")
    check = check_export(text, format_of(path, text))
    if check.broken:
        fail(f"BROKEN: {check.broken}")
    last = check.head.last_hash
    if expect_hash is not None and last != expect_hash.strip().lower():
        fail(
            f"BROKEN: the chain ends at {last}, not at the expected {expect_hash}:"
            " lines were removed from the end, or the chain was rewritten"
        )
    typer.echo(f"OK: {check.head}")


@app.command()
def diff(job_id: int, before: str, after: str) -> None:
    """What changed in a job's view from BEFORE to AFTER (each a version, or an ISO 8601 time):
    one `path: old → new` line per changed field, then the log lines added."""
    settings = Settings()
    zone = ZoneInfo(settings.time_zone)
    try:
        points = [point_of(before, zone), point_of(after, zone)]
    except ValueError:
        raise typer.BadParameter("each side is a version or an ISO 8601 time") from None
    events = open_event_store(settings)
    try:
        history = events.job_history(job_id)
    finally:
        events.close()
    if not history:
        fail(f"Job {job_id} has no events.")
    last = history[-1].version
    views = []
    for value, (version, moment) in zip((before, after), points, strict=True):
        if version is not None and not 1 <= version <= last:
            fail(f"Job {job_id} has no version {version}; its last is {last}.")
        view = view_as_of(history, version, moment)
        if view is None:
            fail(f"Job {job_id} has no view at {value}: it did not exist yet, or was deleted.")
        views.append(in_zone(view, zone))
    changes = view_changes(views[0], views[1])
    for change in changes:
        typer.echo(change)
    if not changes:
        typer.echo("No difference.")
