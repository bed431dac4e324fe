"""The playground's web server: the page's static files and one WebSocket per page.

Protocol (JSON text messages; every reply has a ``type``):

page → server: ``{"type": "play"}``, ``"pause"``, ``"step"``, ``"reset"``,
``{"type": "settings", "settings": {key: value, ...}}`` (the URL hash's keys),
``{"type": "upload_csv", "name": "data.csv", "data": base64}``,
``{"type": "load_model", "data": base64}``, ``"export_model"``, ``"export_markdown"``.

server → page: ``state`` (settings, data, network; after every change, with a frame),
``frame`` (epoch, scores, weights, every unit's δ, grids, new loss-curve points; at most
:data:`FPS` a second while playing), ``step`` (every δ and Δw of the last step, with the
explanation's lines for one example), ``model_file`` / ``markdown`` (downloads), ``error``
(``message``; ``kind`` "diverged", "bad_message" or "bad_input"). A message the server cannot
use gets an error frame and changes nothing; the connection and the server stay up.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import FileResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from deltaprop.data.datasets import Dataset
from deltaprop.errors import DataError, ModelFileError, TrainingDivergedError
from deltaprop.explain.render import render
from deltaprop.playground import files, frames
from deltaprop.playground.session import Session
from deltaprop.playground.settings import Settings

log = logging.getLogger("deltaprop.playground")
STATIC = resources.files("deltaprop.playground") / "static"
FPS = 30
# Of each frame's period, the share spent training (the rest draws the frame and sends it).
TRAINING_SHARE = 0.6
MAX_MESSAGE_BYTES = 16 * 2**20


class BadMessage(ValueError):
    """A message that is not JSON, not an object, or of no known type."""


def _decode(data: object, what: str) -> bytes:
    if not isinstance(data, str):
        raise BadMessage(f"{what}: expected the file's bytes as base64 text")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadMessage(f"{what}: the file's bytes are not valid base64") from None


class Connection:
    """One page's socket and its run: messages in, frames out, Play as an asyncio task whose
    training chunks run in a worker thread so that the socket keeps answering."""

    def __init__(self, socket: WebSocket, session: Session) -> None:
        self.socket, self.session = socket, session
        self.lock = asyncio.Lock()  # one user of the session at a time
        self.task: asyncio.Task | None = None
        self.stopping = False
        self.sent = (session.curve_version, 0)  # the curve as the page has it

    # ---------------------------------------------------------------- sending
    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send_text(json.dumps(message, allow_nan=False, default=_jsonable))

    def _frame(self, running: bool) -> dict[str, Any]:
        version, count = self.sent
        since = count if version == self.session.curve_version else 0
        self.sent = (self.session.curve_version, len(self.session.curve))
        return frames.frame(self.session, running=running, since=since)

    def _state(self) -> dict[str, Any]:
        message = frames.description(self.session)
        self.sent = (self.session.curve_version, len(self.session.curve))
        return message

    async def error(self, message: str, kind: str) -> None:
        log.warning("playground: %s: %s", kind.replace("_", " "), message)
        await self.send({"type": "error", "kind": kind, "message": message})

    # ---------------------------------------------------------------- Play
    @property
    def playing(self) -> bool:
        return self.task is not None and not self.task.done()

    def _chunk(self, seconds: float) -> dict[str, Any]:
        self.session.train_for(seconds, self.session.settings.speed)
        self.session.record_point()
        return self._frame(running=True)

    async def _play(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / FPS
        while not self.stopping:
            started = loop.time()
            async with self.lock:
                try:
                    message = await asyncio.to_thread(self._chunk, period * TRAINING_SHARE)
                except TrainingDivergedError as exc:
                    self.session.record_point()
                    await self.error(str(exc), "diverged")
                    await self.send(self._frame(running=False))
                    return
                except Exception as exc:  # a bug: say so on the page and keep serving
                    log.exception("playground: training failed")
                    await self.send({"type": "error", "kind": "internal", "message": str(exc)})
                    return
            await self.send(message)
            await asyncio.sleep(max(0.0, period - (loop.time() - started)))

    async def pause(self) -> None:
        """Stop Play after the chunk it is training (never in the middle of one: the worker
        thread would go on using the session)."""
        if self.task is not None:
            self.stopping = True
            try:
                await self.task
            except Exception:  # the page went away while a frame was being sent
                log.debug("playground: Play ended with the connection")
            finally:
                self.task, self.stopping = None, False

    # ---------------------------------------------------------------- commands
    async def handle(self, text: str) -> None:
        try:
            message = json.loads(text)
        except (json.JSONDecodeError, TypeError):
            raise BadMessage(f"not JSON: {text[:80]!r}") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise BadMessage(f'expected an object with a "type". Received: {text[:80]!r}')
        kind = message["type"]
        handler = getattr(self, f"on_{kind}", None) if kind in COMMANDS else None
        if handler is None:
            raise BadMessage(f"unknown message type {kind!r}; known: {', '.join(COMMANDS)}")
        await handler(message)

    async def on_play(self, message: dict) -> None:
        if not self.playing:
            self.task = asyncio.create_task(self._play())

    async def on_pause(self, message: dict) -> None:
        await self.pause()
        await self.send(self._frame(running=False))

    async def _stopped(self, work, *args: Any) -> Any:
        """Pause, then run ``work`` in a worker thread with the session to itself."""
        await self.pause()
        async with self.lock:
            return await asyncio.to_thread(work, *args)

    async def _change(self, work, *args: Any) -> None:
        """Pause, make the change (a ValueError changes nothing), send the new state."""

        def change() -> dict[str, Any]:
            work(*args)
            return self._state()

        await self.send(await self._stopped(change))

    async def on_step(self, message: dict) -> None:
        def step() -> tuple[dict, dict]:
            record = self.session.step()
            self.session.record_point()
            return frames.step_record(self.session, record), self._frame(running=False)

        try:
            step_message, frame = await self._stopped(step)
        except TrainingDivergedError as exc:
            await self.error(str(exc), "diverged")
            await self.send(self._frame(running=False))
            return
        await self.send(step_message)
        await self.send(frame)

    async def on_reset(self, message: dict) -> None:
        await self._change(self.session.reset)

    async def on_settings(self, message: dict) -> None:
        values = message.get("settings")
        if not isinstance(values, dict):
            raise BadMessage(f'"settings" must be an object. Received: {values!r}')
        await self._change(self.session.change, values)

    async def on_upload_csv(self, message: dict) -> None:
        content = _decode(message.get("data"), "upload_csv")
        name = str(message.get("name") or "upload.csv")
        await self._change(self.session.load_csv, name, content)

    async def on_load_model(self, message: dict) -> None:
        content = _decode(message.get("data"), "load_model")
        await self._change(files.load_model, self.session, content)

    async def on_export_model(self, message: dict) -> None:
        async with self.lock:
            content = await asyncio.to_thread(files.model_bytes, self.session)
        await self.send(
            {
                "type": "model_file",
                "name": f"playground-{self.session.problem.name.removesuffix('.csv')}.safetensors",
                "data": base64.b64encode(content).decode("ascii"),
            }
        )

    async def on_export_markdown(self, message: dict) -> None:
        step = self.session.last_step
        if step is None or step.trace is None:
            raise ValueError(
                "no step of one example to explain yet: press Step with batch size 1 "
                "(the seed's online loop) first"
            )
        await self.send(
            {"type": "markdown", "name": "step.md", "text": render(step.trace, "markdown")}
        )

    # ---------------------------------------------------------------- the socket
    async def serve(self) -> None:
        await self.send(self._state())
        while True:
            try:
                text = await self.socket.receive_text()
            except (WebSocketDisconnect, KeyError, RuntimeError):
                break
            try:
                await self.handle(text)
            except BadMessage as exc:
                await self.error(str(exc), "bad_message")
            except (ValueError, DataError, ModelFileError, OSError) as exc:
                await self.error(str(exc), "bad_input")
        await self.pause()


COMMANDS = (
    "play",
    "pause",
    "step",
    "reset",
    "settings",
    "upload_csv",
    "load_model",
    "export_model",
    "export_markdown",
)


def _jsonable(value: object) -> Any:
    """Numbers NumPy hands back (float32, int64) as plain JSON numbers; NaN and inf as null."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"not JSON serialisable: {type(value).__name__}") from None
    return number if number == number and abs(number) != float("inf") else None


def _same_origin(socket: WebSocket) -> bool:
    """A page of another site may not drive this server: the socket's Origin (sent by every
    browser) must be the server's own host."""
    origin = socket.headers.get("origin")
    if origin is None:
        return True  # not a browser (tests, scripts): the host check still applies
    return urlsplit(origin).netloc == socket.headers.get("host")


def create_app(
    settings: Settings | None = None,
    upload: Dataset | None = None,
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    """The Starlette app; each page that connects gets its own :class:`Session`, started
    from ``settings`` on ``upload`` (a data set given with ``--data``) if given."""

    async def index(request: Any) -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    async def socket(ws: WebSocket) -> None:
        if not _same_origin(ws):
            await ws.close(code=1008)
            log.warning("playground: refused a socket from origin %s", ws.headers.get("origin"))
            return
        await ws.accept()
        session = await asyncio.to_thread(Session, settings, upload)
        await Connection(ws, session).serve()

    hosts = allowed_hosts or ["127.0.0.1", "localhost", "testserver"]
    return Starlette(
        routes=[
            Route("/", index),
            WebSocketRoute("/ws", socket),
            Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
    )
