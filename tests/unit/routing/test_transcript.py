"""The bounded transcript: head and tail of what a call carried, its full length, and a token estimate."""

from __future__ import annotations

import random

from adapters.tokens import count_tokens
from routing.transcript import Transcript, cut_marker, head_and_tail


def test_text_that_fits_is_kept_whole() -> None:
    t = Transcript(100)
    for piece in ("Hello", ", ", "world"):
        t.append(piece)
    assert t.text() == "Hello, world" and not t.cut and t.length == 12 and t.omitted == 0


def test_no_cap_keeps_everything() -> None:
    t = Transcript(0)
    t.append("x" * 10_000)
    assert t.text() == "x" * 10_000 and not t.cut


def test_any_split_keeps_the_same_head_and_tail_as_the_whole_text() -> None:
    rng = random.Random(19)
    text = "".join(rng.choice("abc def, ghi.") for _ in range(5000))
    for cap in (1, 2, 7, 64, 1000, 4999, 5000, 6000):
        t = Transcript(cap)
        i = 0
        while i < len(text):
            n = rng.randint(0, 300)
            t.append(text[i : i + n])
            i += n
        assert t.length == len(text)
        assert t.text() == head_and_tail(text, cap), cap
        assert t.cut == (len(text) > cap)
        assert t.kept == min(cap, len(text))


def test_held_text_stays_bounded_for_a_huge_stream() -> None:
    t = Transcript(1000)
    for _ in range(100_000):
        t.append("token ")
    t.append("y" * 1_000_000)  # one huge piece is cut before it is held
    assert t.length == 1_600_000 and t.cut
    assert len(t.text()) == 1000 + len(cut_marker(t.omitted))
    assert t.text().endswith("y" * 500)


def test_the_token_estimate_counts_exactly_when_nothing_was_cut_and_scales_when_it_was() -> None:
    text = "one two, three. " * 200
    whole = Transcript(0)
    whole.append(text)
    assert whole.estimate_tokens() == count_tokens(text)
    cut = Transcript(800)
    for word in text.split(" "):
        cut.append(word + " ")
    assert abs(cut.estimate_tokens() - count_tokens(text)) <= count_tokens(text) * 0.05
