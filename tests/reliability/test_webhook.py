"""Our webhook server (bot/handlers/webhook.py) under attack and under Telegram's retries (defect 16).

The real `serve()` runs in this process on a free port, in front of the production Application.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.core.conversation import Conversation
from bot.handlers import webhook
from bot.handlers.context import RahnumaApplication
from storage.db import Database
from tests.helpers import events_of
from tests.reliability import figures
from tests.reliability.doubles import ScriptedTelegram, text_update
from tests.reliability.test_telegram import SAIMA, SAIMA_PERSON

SECRET = "reliability-webhook-secret_0123456789"
PATH = "tg-hook"
FIFTY_MB = 50 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def webhook_url(application: RahnumaApplication) -> AsyncIterator[str]:
    """`webhook.serve()` on a free port, the application started (its update queue consumed); stopped afterwards,
    which waits until every update taken in has been handled."""
    port = free_port()
    stop = asyncio.Event()
    await application.start()
    server = asyncio.create_task(
        webhook.serve(application, listen="127.0.0.1", port=port, path=PATH, secret=SECRET, stop=stop)
    )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(f"{url}/healthcheck")).text == "ok":
                    break
            await asyncio.sleep(0.01)
    try:
        yield f"{url}/{PATH}"
    finally:
        stop.set()
        await server
        if application.running:
            await application.stop()


async def post_body(url: str, headers: dict[str, str], size: int, *, chunked: bool = False) -> tuple[int, int, float]:
    """POST a `size`-byte body in 64 KiB pieces, as fast as the server takes it; returns (HTTP status, bytes the
    server let us send before answering or closing, seconds until the answer); status 0 when the server closed the
    connection without an answer."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = [f"POST /{PATH} HTTP/1.1", f"Host: {host}", "Content-Type: application/json", length]
    head += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    started = time.perf_counter()
    piece = b"[" * 65536
    sent = 0

    async def send() -> None:
        nonlocal sent
        with contextlib.suppress(ConnectionError):
            while sent < size:
                writer.write(b"10000\r\n" + piece + b"\r\n" if chunked else piece)
                await writer.drain()
                sent += len(piece)

    sender = asyncio.create_task(send())
    try:
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    except ConnectionError:
        status_line = b""
    elapsed = time.perf_counter() - started
    sender.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sender
    writer.transport.abort()
    return (int(status_line.split()[1]) if status_line else 0), sent, elapsed


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("secret", [None, "wrong-secret"], ids=["no-secret", "wrong-secret"])
async def test_an_unauthenticated_50_mb_body_is_refused_before_it_is_read(
    webhook_url: str, telegram: ScriptedTelegram, secret: str | None, chunked: bool
) -> None:
    """Defect 16: a 50 MB body without the secret was read in full before the 403. Now the secret is checked on the
    headers: 403 at once, the upload cut off, memory flat, nothing handled."""
    headers = {webhook.SECRET_HEADER: secret} if secret else {}
    tracemalloc.start()
    try:
        status, sent, elapsed = await post_body(webhook_url, headers, FIFTY_MB, chunked=chunked)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    figures.record(
        f"webhook 50 MB unauthenticated ({'chunked' if chunked else 'content-length'})",
        f"{status} in {elapsed * 1000:.0f} ms, {sent / 2**20:.1f} MB accepted before the cut, "
        f"peak traced memory {peak / 2**20:.2f} MB",
    )
    assert status == 403
    assert elapsed < 1.0, f"the 403 took {elapsed:.2f} s"
    assert sent < FIFTY_MB // 4, f"{sent / 2**20:.1f} MB were accepted before the refusal"
    assert peak < 8 * 2**20, f"memory grew by {peak / 2**20:.1f} MB while refusing"
    assert telegram.calls == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_an_authenticated_oversized_body_is_refused_with_413(webhook_url: str, chunked: bool) -> None:
    """With the right secret, a body over 1 MiB is still refused without being kept: 413 when its length is declared;
    a chunked body gets tornado's 400 and the connection is closed once it passes 1 MiB (or the client sees only the
    close, when its write races the answer)."""
    status, sent, _ = await post_body(webhook_url, {webhook.SECRET_HEADER: SECRET}, FIFTY_MB, chunked=chunked)
    assert status in ((400, 0) if chunked else (413,))
    assert sent < FIFTY_MB // 4


async def test_a_webhook_update_delivered_twice_is_handled_once(
    webhook_url: str,
    application: RahnumaApplication,
    telegram: ScriptedTelegram,
    conversation: Conversation,
    db: Database,
) -> None:
    """Defect 16: Telegram redelivers an update when our 200 is late; the replay was handled twice. Through the
    real webhook server: both deliveries get 200, the update is handled once (one reply, one pair of events)."""
    update = text_update(application, SAIMA, "how do I withdraw my money from fiverr").to_dict()
    headers = {webhook.SECRET_HEADER: SECRET}
    async with httpx.AsyncClient() as http:
        answers = [await http.post(webhook_url, json=update, headers=headers) for _ in range(2)]
        malformed = await http.post(webhook_url, content=b"{not json", headers=headers)
    await application.stop()  # waits until every update taken in has been handled

    assert [a.status_code for a in answers] == [200, 200] and malformed.status_code == 400
    assert len(telegram.sent()) == 1
    kinds = [e.kind for e in await events_of(conversation, db, SAIMA_PERSON)]
    assert kinds == ["message", "reply"]


async def test_the_healthcheck_answers_without_a_secret(webhook_url: str) -> None:
    async with httpx.AsyncClient() as http:
        health = await http.get(webhook_url.rsplit("/", 1)[0] + "/healthcheck")
        get_hook = await http.get(webhook_url, headers={webhook.SECRET_HEADER: SECRET})
    assert (health.status_code, health.text) == (200, "ok")
    assert get_hook.status_code == 405
