"""Streaming enforcement: a body wrapper that stops at the limit."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable

import triogate


def capped(limit: int) -> Callable[[AsyncIterable[bytes]], AsyncIterator[bytes]]:
    """A ``Body.wrap`` transform raising :class:`triogate.BodyTooLarge` when the bytes seen cross ``limit``.

    The chunk that crosses the limit is never passed on, so whoever reads the body
    (the upstream call, a plugin's ``body.read``) stops there and the core answers 413.
    """

    async def cap(source: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in source:
            seen += len(chunk)
            if seen > limit:
                raise triogate.BodyTooLarge(limit)
            yield chunk

    return cap
