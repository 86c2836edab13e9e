"""How the officer drives the glasses: keys on a terminal, a local HTTP API for the paired
phone (answers, selection, the phone's fix), a one-button serial remote.

Every input goes through a :class:`Controller` (the agent), so all three are held to the same
rules: unknown notifications, information-only ones and bad answers are refused the same way.
The HTTP API is the box's only listening socket: bound to 127.0.0.1 by default, a bearer token
on every request, a bounded body, JSON only.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import select
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.glasses.config import ButtonInput, HttpInput
from edge.glasses.serial_port import SerialDevice
from edge.glasses.service import RefusedError
from edge.glasses.view import Pose
from edge.protocol import DispatchAnswer, OfficerAnswer
from edge.validators import MessageId, utcnow

log = logging.getLogger(__name__)


class Controller(Protocol):
    """What inputs drive (the agent); refusals are :class:`RefusedError`."""

    def answer(self, notify_id: str | None, answer: OfficerAnswer, note: str = ""
               ) -> DispatchAnswer: ...

    def select(self, delta: int) -> str | None: ...

    def state(self) -> dict[str, Any]: ...

    def phone_fix(self, pose: Pose) -> None: ...


KEY_ANSWERS: dict[str, OfficerAnswer] = {
    "a": OfficerAnswer.ACKNOWLEDGE,
    "o": OfficerAnswer.ON_MY_WAY,
    "r": OfficerAnswer.ARRIVED,
    "v": OfficerAnswer.VERIFY,
    "x": OfficerAnswer.REJECT,
    "b": OfficerAnswer.NEED_BACKUP,
}
KEY_MOVES = {"n": 1, "p": -1}


def handle_key(key: str, controller: Controller) -> bool:
    """Act on one key press (the terminal's or a window sink's); False for an unbound key or
    an answer the agent refused (logged)."""
    key = key.lower()
    if key in KEY_MOVES:
        controller.select(KEY_MOVES[key])
        return True
    answer = KEY_ANSWERS.get(key)
    if answer is None:
        return False
    try:
        controller.answer(None, answer)
    except RefusedError as err:
        log.info("key %r: %s", key, err)
        return False
    return True


class KeyReader:
    """Single key presses from the controlling terminal (cbreak mode, restored on stop).
    Reads the file descriptor itself: a buffered text stream would hide keys from select."""

    def __init__(self, controller: Controller, fd: int | None = None) -> None:
        self.controller = controller
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved: Any = None

    def start(self) -> None:
        if not os.isatty(self.fd):
            log.warning("keys input enabled but stdin is not a terminal; ignoring it")
            return
        import termios
        import tty

        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        self._thread = threading.Thread(target=self._run, name="glasses-keys", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if not ready:
                continue
            data = os.read(self.fd, 16)
            if not data:
                return  # the terminal went away
            for key in data.decode("utf-8", "replace"):
                handle_key(key, self.controller)


# -- the local HTTP API -------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnswerBody(_Body):
    notify_id: MessageId
    answer: OfficerAnswer
    note: Annotated[str, Field(max_length=500)] = ""


class SelectBody(_Body):
    delta: Annotated[int, Field(ge=-100, le=100)]


class PositionBody(_Body):
    lon: Annotated[float, Field(ge=-180, le=180)]
    lat: Annotated[float, Field(ge=-90, le=90)]
    heading_deg: Annotated[float, Field(ge=0, lt=360)] | None = None
    accuracy_m: Annotated[float, Field(ge=0, le=100_000)] | None = None


REFUSAL_STATUS: dict[str, HTTPStatus] = {
    "unknown_notify": HTTPStatus.NOT_FOUND,
    "nothing_selected": HTTPStatus.NOT_FOUND,
    "not_a_dispatch": HTTPStatus.CONFLICT,
    "position_source": HTTPStatus.CONFLICT,
    "outbox_full": HTTPStatus.SERVICE_UNAVAILABLE,
}


class _HttpError(Exception):
    def __init__(self, status: HTTPStatus, error: str, *, close: bool = False,
                 **extra: Any) -> None:
        super().__init__(error)
        self.status = status
        self.body: dict[str, Any] = {"error": error, **extra}
        self.close = close


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise _HttpError(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed")


MIN_TOKEN_CHARS = 16  # shorter is guessable: no protection


def read_token(config: HttpInput, environ: Mapping[str, str] | None = None) -> str:
    """The local API's bearer token from ``token_file``, else from ``$token_env``. Raises
    ValueError (missing, too short) or OSError (unreadable file)."""
    if config.token_file is not None:
        token = config.token_file.read_text(encoding="utf-8").strip()
        where = str(config.token_file)
    else:
        env = os.environ if environ is None else environ
        token, where = env.get(config.token_env, "").strip(), f"${config.token_env}"
        if not token:
            raise ValueError(f"the local API needs a token: set inputs.http.token_file or "
                             f"{where} (or inputs.http.enabled: false)")
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"the API token in {where} is shorter than {MIN_TOKEN_CHARS} characters")
    return token


class _Handler(BaseHTTPRequestHandler):
    api: ClassVar[LocalApi]
    timeout = 5  # a client that stalls mid-request loses its thread after this
    server_version = "gridward-glasses"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        log.debug("api %s", format % args)

    def do_GET(self) -> None:
        self.api.handle(self, "GET")

    def do_POST(self) -> None:
        self.api.handle(self, "POST")

    def do_PUT(self) -> None:
        self.api.handle(self, "PUT")

    def do_DELETE(self) -> None:
        self.api.handle(self, "DELETE")


class _BoundedServer(ThreadingHTTPServer):
    """At most ``max_connections`` served at once; more are closed unread (a client holding
    connections open cannot pile up threads on the box)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 max_connections: int) -> None:
        super().__init__(address, handler, bind_and_activate=False)
        self._slots = threading.BoundedSemaphore(max_connections)
        self._busy = 0
        self._busy_lock = threading.Lock()
        self.turned_away = 0

    @property
    def busy(self) -> int:
        """Connections being served now."""
        return self._busy

    def _count(self, delta: int) -> None:
        with self._busy_lock:
            self._busy += delta

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.turned_away += 1
            self.shutdown_request(request)
            return
        self._count(1)
        try:
            super().process_request(request, client_address)
        except Exception:
            self._count(-1)
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._count(-1)
            self._slots.release()


class LocalApi:
    """GET /v1/state, POST /v1/answer, /v1/select, /v1/position; JSON in and out."""

    def __init__(self, config: HttpInput, controller: Controller, token: str, *,
                 now: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.controller = controller
        self._token = token.encode("utf-8")
        self._now = now
        self.counters: Counter[str] = Counter()
        handler = type("GlassesApiHandler", (_Handler,), {"api": self})
        self._server = _BoundedServer((config.bind, config.port), handler,
                                      config.max_connections)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def connections(self) -> int:
        return self._server.busy

    def health(self) -> dict[str, float]:
        refused = sum(v for k, v in self.counters.items() if k.startswith("refused_"))
        return {"api_requests": float(self.counters["requests"]),
                "api_refused": float(refused + self._server.turned_away),
                "api_unauthorised": float(self.counters["refused_401"])}

    def start(self) -> None:
        self._server.server_bind()
        self._server.server_activate()
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.2,),
                                        name="glasses-api", daemon=True)
        self._thread.start()
        log.info("local API on %s:%d", self.config.bind, self.port)
        if not ipaddress.ip_address(str(self._server.server_address[0])).is_loopback:
            log.warning("the local API listens on %s, not only on this box: keep its token "
                        "secret and the network trusted", self.config.bind)

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    # -- request handling ---------------------------------------------------------------------

    def handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        self.counters["requests"] += 1
        status, body = HTTPStatus.OK, {}
        try:
            body = self._route(req, method)
        except _HttpError as err:
            status, body = err.status, err.body
            req.close_connection = req.close_connection or err.close
        except Exception:  # one bad request must not take the API down
            log.exception("local API error")
            status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal"}
        if status >= HTTPStatus.BAD_REQUEST:
            self.counters[f"refused_{int(status)}"] += 1
        data = json.dumps(body).encode("utf-8")
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.send_header("Cache-Control", "no-store")
        if status == HTTPStatus.UNAUTHORIZED:
            req.send_header("WWW-Authenticate", "Bearer")
        req.end_headers()
        req.wfile.write(data)

    def _authorised(self, req: BaseHTTPRequestHandler) -> bool:
        header = req.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8"), self._token)

    def _route(self, req: BaseHTTPRequestHandler, method: str) -> dict[str, Any]:
        if not self._authorised(req):
            raise _HttpError(HTTPStatus.UNAUTHORIZED, "unauthorised", close=True)
        path = req.path.split("?", 1)[0]
        if path == "/v1/state":
            _allow(method, "GET")
            return self.controller.state()
        routes: dict[str, Callable[[Any], dict[str, Any]]] = {
            "/v1/answer": self._answer, "/v1/select": self._select,
            "/v1/position": self._position}
        handler = routes.get(path)
        if handler is None:
            raise _HttpError(HTTPStatus.NOT_FOUND, "not_found")
        _allow(method, "POST")
        data = self._json(req)
        try:
            return handler(data)
        except ValidationError as err:
            problems = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]}
                        for e in err.errors()]
            raise _HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "invalid",
                             problems=problems) from err
        except RefusedError as err:
            raise _HttpError(REFUSAL_STATUS.get(err.code, HTTPStatus.CONFLICT),
                             err.code) from err

    def _json(self, req: BaseHTTPRequestHandler) -> Any:
        length_text = req.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            raise _HttpError(HTTPStatus.LENGTH_REQUIRED, "length_required", close=True)
        length = int(length_text)
        if length > self.config.max_body_bytes:
            # Not read: the connection is closed instead of draining a huge body.
            raise _HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large", close=True)
        raw = req.rfile.read(length)
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            raise _HttpError(HTTPStatus.BAD_REQUEST, "bad_json") from err

    def _answer(self, data: Any) -> dict[str, Any]:
        body = AnswerBody.model_validate(data)
        sent = self.controller.answer(body.notify_id, body.answer, body.note)
        return {"ok": True, "answer_id": sent.id, "dispatch_id": sent.dispatch_id}

    def _select(self, data: Any) -> dict[str, Any]:
        body = SelectBody.model_validate(data)
        return {"ok": True, "selected": self.controller.select(body.delta)}

    def _position(self, data: Any) -> dict[str, Any]:
        body = PositionBody.model_validate(data)
        self.controller.phone_fix(Pose(lon=body.lon, lat=body.lat, fix_at=self._now(),
                                       heading_deg=body.heading_deg,
                                       accuracy_m=body.accuracy_m))
        return {"ok": True}


# -- the one-button remote ----------------------------------------------------------------------


class TapDetector:
    """Presses in, gestures out: one press = "tap" once the double-tap window has passed
    without a second one; two presses inside it = "double". Sans-IO: the caller passes time."""

    def __init__(self, double_tap_s: float) -> None:
        self.double_tap_s = double_tap_s
        self._first: float | None = None

    def press(self, at: float) -> str | None:
        if self._first is not None and at - self._first <= self.double_tap_s:
            self._first = None
            return "double"
        gesture = self.due(at)
        self._first = at
        return gesture

    def due(self, at: float) -> str | None:
        if self._first is not None and at - self._first > self.double_tap_s:
            self._first = None
            return "tap"
        return None


class SerialButton(SerialDevice):
    """A remote that sends a line (or a lone byte) per press on a serial port: tap =
    acknowledge the selected notification, double tap = the next one."""

    QUIET_S: ClassVar[float] = 0.05  # a press without a newline ends after this much silence

    def __init__(self, config: ButtonInput, controller: Controller, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("button", config.port, config.baudrate, read_timeout_s=self.QUIET_S)
        self.config = config
        self.controller = controller
        self.taps = TapDetector(config.double_tap_s)
        self._clock = clock
        self.counters: Counter[str] = Counter()

    def health(self) -> dict[str, float]:
        return {"button_taps": float(self.counters["tap"]),
                "button_double_taps": float(self.counters["double"]),
                "button_connected": 1.0 if self.connected else 0.0}

    def gesture(self, gesture: str | None) -> None:
        if gesture is None:
            return
        self.counters[gesture] += 1
        if gesture == "double":
            self.controller.select(1)
            return
        try:
            self.controller.answer(None, OfficerAnswer.ACKNOWLEDGE)
        except RefusedError as err:
            self.counters["refused"] += 1
            log.info("button tap: %s", err)

    def _read(self, port: Any) -> None:
        pending = False
        while not self._stop.is_set():
            data: bytes = port.read(64)
            now = self._clock()
            for byte in data:
                if byte in b"\r\n":
                    if pending:
                        self.gesture(self.taps.press(now))
                    pending = False
                else:
                    pending = True
            if not data and pending:
                self.gesture(self.taps.press(now))
                pending = False
            self.gesture(self.taps.due(now))
