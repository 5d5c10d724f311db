"""The stored responses (`/v1/responses`' previous_response_id) on both back ends: written off the request path,
read back by another store (another worker or replica) from the database, deleted for good."""

from __future__ import annotations

from gateway.calllog.responses import ResponseStore, StoredResponse
from tests.integration.storage.conftest import Target


def stored(n: int) -> StoredResponse:
    return StoredResponse(
        id=f"resp_{n}",
        model="m",
        request_id=f"req-{n}",
        history=[{"type": "message", "role": "user", "content": "before"}],
        input=[{"type": "message", "role": "user", "content": f"turn {n}"}],
        response={"id": f"resp_{n}", "object": "response", "output": [{"type": "message", "content": []}]},
    )


async def test_a_response_is_read_back_from_the_database_by_another_store(target: Target) -> None:
    writer = ResponseStore(target.settings, engine_factory=target.engine_factory)
    await writer.put(stored(1))
    assert (await writer.get("resp_1")) == stored(1)  # from memory at once, before the row is written
    await writer.close()  # waits for the background write
    reader = ResponseStore(target.settings, engine_factory=target.engine_factory)
    try:
        again = await reader.get("resp_1")
        assert again == stored(1)
        assert again is not None and [i["content"] for i in again.conversation()] == ["before", "turn 1", []]
        assert await reader.get("resp_missing") is None
        assert await reader.delete("resp_1") is True
        assert await reader.get("resp_1") is None
        assert await reader.delete("resp_1") is False
    finally:
        await reader.close()
    fresh = ResponseStore(target.settings, engine_factory=target.engine_factory)
    try:
        assert await fresh.get("resp_1") is None
    finally:
        await fresh.close()


async def test_memory_keeps_only_the_newest(target: Target) -> None:
    store = ResponseStore(target.settings, capacity=2, engine_factory=target.engine_factory)
    try:
        for n in range(4):
            await store.put(stored(n))
        assert list(store._recent) == ["resp_2", "resp_3"]
        await store.close()
        assert await store.get("resp_0") == stored(0)  # evicted from memory, still in the database
    finally:
        await store.close()


async def test_a_delete_right_after_the_put_is_not_undone_by_the_pending_write(target: Target) -> None:
    store = ResponseStore(target.settings, engine_factory=target.engine_factory)
    await store.put(stored(7))  # its row is written in the background
    assert await store.delete("resp_7") is True
    await store.close()
    fresh = ResponseStore(target.settings, engine_factory=target.engine_factory)
    try:
        assert await fresh.get("resp_7") is None
    finally:
        await fresh.close()
