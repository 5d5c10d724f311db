from __future__ import annotations

from gateway.calllog.sqlite_bulk import CHUNK_SIZES, chunks


def test_a_batch_is_cut_into_a_few_fixed_statement_sizes() -> None:
    for rows in (0, 1, 7, 8, 9, 63, 500, 512, 1_000, 5_000):
        parts = chunks(rows)
        assert sum(size for _, size in parts) == rows
        assert [start for start, _ in parts] == [sum(size for _, size in parts[:i]) for i in range(len(parts))]
        assert {size for _, size in parts} <= set(CHUNK_SIZES)
    # 1,000 = 512 + 7 x 64 + 5 x 8: largest first, so a batch costs few statements
    assert chunks(1_000) == [(0, 512), *((512 + 64 * i, 64) for i in range(7)), *((960 + 8 * i, 8) for i in range(5))]
