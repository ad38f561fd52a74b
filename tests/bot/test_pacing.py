"""The pacer keeps bulk sends under Telegram's limits: evenly spaced slots, one message a second per chat, never
more than the rate in any one second, live replies counted first, retry_after waited out. Time is a fake here."""

from __future__ import annotations

from bot.delivery.pacing import Pacer


class ManualTime:
    """A monotonic clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


def pacer_at(rate: float, time: ManualTime) -> Pacer:
    return Pacer(rate, monotonic=time.monotonic, sleep=time.sleep)


async def test_bulk_sends_to_different_chats_leave_evenly_spaced_at_the_rate() -> None:
    time = ManualTime()
    pacer = pacer_at(4, time)
    moments = []
    for chat in range(1, 6):
        await pacer.acquire(chat)
        moments.append(time.now)
    assert [round(b - a, 3) for a, b in zip(moments, moments[1:], strict=False)] == [0.25] * 4


async def test_a_second_message_to_the_same_person_waits_a_second() -> None:
    time = ManualTime()
    pacer = pacer_at(100, time)
    await pacer.acquire(42)
    first = time.now
    await pacer.acquire(42)
    assert time.now - first >= 1.0


async def test_sends_held_after_their_slot_never_leave_more_than_the_rate_in_one_second() -> None:
    """Sends whose go-ahead took a while leave together; the gate lets `rate` of them through per second."""
    time = ManualTime()
    pacer = pacer_at(3, time)
    left = []
    for _ in range(7):
        await pacer.gate()
        left.append(time.now)
    assert left == [100.0, 100.0, 100.0, 101.0, 101.0, 101.0, 102.0]


async def test_a_live_reply_goes_first_and_bulk_takes_the_next_slot() -> None:
    time = ManualTime()
    pacer = pacer_at(2, time)
    pacer.note_live()
    await pacer.acquire(7)
    assert time.now == 100.5


async def test_a_live_reply_counts_within_the_second_it_left() -> None:
    time = ManualTime()
    pacer = pacer_at(2, time)
    pacer.note_live()
    await pacer.gate()
    assert time.now == 100.0
    await pacer.gate()  # the live reply and one bulk send filled the second
    assert time.now == 101.0


async def test_retry_after_pauses_bulk_sending() -> None:
    time = ManualTime()
    pacer = pacer_at(10, time)
    pacer.pause(30)
    await pacer.acquire(1)
    assert time.now >= 130.0
