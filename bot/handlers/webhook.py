"""Our own webhook server (PTB's custom-webhook pattern): the secret is checked before a byte of the body is read,
bodies are capped, duplicates are dropped by the application, and `/healthcheck` answers for load balancers.

Several workers can serve one webhook URL: they share RAHNUMA_WEBHOOK_SECRET (required whenever a webhook URL is
set), and only one of them needs to call setWebhook (`rahnuma run --no-set-webhook` for the others).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import Any

import tornado.httpserver
import tornado.web
from telegram import Update

from bot.handlers.context import RahnumaApplication

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY_BYTES = 1 << 20  # a Telegram update is a few KB; nothing legitimate comes near 1 MiB


@tornado.web.stream_request_body
class UpdateHandler(tornado.web.RequestHandler):
    def initialize(self, telegram_app: RahnumaApplication, secret: str, max_body: int) -> None:
        self.telegram_app = telegram_app
        self.secret = secret
        self.max_body = max_body
        self.chunks: list[bytes] = []
        self.size = 0

    def prepare(self) -> None:
        """Headers only: a wrong secret is refused before the body is read, an oversized body before it arrives."""
        if self.request.method != "POST":
            raise tornado.web.HTTPError(405)
        given = self.request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            raise tornado.web.HTTPError(403)
        declared = self.request.headers.get("Content-Length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            raise tornado.web.HTTPError(413)
        set_max_body_size = getattr(self.request.connection, "set_max_body_size", None)
        if set_max_body_size is not None:
            set_max_body_size(self.max_body)

    def data_received(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_body:
            raise tornado.web.HTTPError(413)
        self.chunks.append(chunk)

    async def post(self) -> None:
        try:
            data = json.loads(b"".join(self.chunks))
            update = Update.de_json(data, self.telegram_app.bot)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("Ignoring a malformed webhook body: %s", type(exc).__name__)
            raise tornado.web.HTTPError(400) from None
        if update is None:
            raise tornado.web.HTTPError(400)
        await self.telegram_app.update_queue.put(update)
        self.set_status(200)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, tornado.web.HTTPError):
            log.info("Webhook request refused with %s", value.status_code)
        else:
            super().log_exception(typ, value, tb)


class HealthHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("ok")


def make_app(application: RahnumaApplication, *, path: str, secret: str, max_body: int = MAX_BODY_BYTES) -> Any:
    return tornado.web.Application(
        [
            (
                rf"/{path.strip('/')}",
                UpdateHandler,
                {"telegram_app": application, "secret": secret, "max_body": max_body},
            ),
            (r"/healthcheck", HealthHandler),
        ],
        log_function=lambda handler: None,
    )


async def serve(
    application: RahnumaApplication, *, listen: str, port: int, path: str, secret: str, stop: asyncio.Event
) -> None:
    """Serve until `stop` is set; the application must be started (its update queue is being consumed)."""
    server = tornado.httpserver.HTTPServer(
        make_app(application, path=path, secret=secret), max_body_size=MAX_BODY_BYTES, xheaders=True
    )
    server.listen(port, address=listen)
    log.info("Webhook server listening on %s:%s/%s", listen, port, path.strip("/"))
    try:
        await stop.wait()
    finally:
        server.stop()
        await server.close_all_connections()
