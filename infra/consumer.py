"""A durable pull consumer that hands its messages over in batches, in stream order."""

from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig


async def consume_batches(
    js: JetStreamContext,
    subject: str,
    durable: str,
    stream: str,
    handle: Callable[[list[Msg]], Awaitable[None]],
    batch_size: int = 500,
    ack_wait: float = 30.0,
) -> None:
    """Fetch what is waiting (up to `batch_size`) and hand it to `handle`, forever.

    nats-py returns a partial batch as soon as messages are there, so a quiet stream costs
    one round trip per message and a busy one fills whole batches.
    """
    subscription = await js.pull_subscribe(
        subject,
        durable=durable,
        stream=stream,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait, max_deliver=-1),
    )
    try:
        while True:
            try:
                messages = await subscription.fetch(batch_size, timeout=5.0)
            except (NatsTimeoutError, TimeoutError):  # nats-py raises either
                continue
            await handle(messages)
    finally:
        await subscription.unsubscribe()
