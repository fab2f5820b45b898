"""The HTTP fleet's slot accounting, driven directly: no network, no event loop."""

from __future__ import annotations

from partisim.serve.executors.slots import Seat, SlotBook


def _ids(book: SlotBook, seats: list[Seat], n: int, task: str = "t") -> list[str | None]:
    out = []
    for i in range(n):
        seat = book.place(f"{task}{i}", seats)
        out.append(seat.id if seat else None)
    return out


def test_the_seat_with_most_free_slots_wins_and_ties_share_the_work() -> None:
    book = SlotBook()
    seats = [Seat("a", 2, True), Seat("b", 4, True)]
    assert _ids(book, seats, 6) == ["b", "b", "a", "b", "a", "b"]
    assert book.place("full", seats) is None
    assert (book.inflight["a"], book.inflight["b"]) == (2, 4)
    book.release("a", 1)
    assert book.free(seats[0]) == 1 and book.dispatched["a"] == 2  # a finished run still counts as given
    placed = book.place("again", seats)
    assert placed is not None and placed.id == "a"


def test_unplace_undoes_a_placement() -> None:
    book = SlotBook()
    seats = [Seat("a", 1, True)]
    seat = book.place("x", seats)
    assert seat is not None and book.free(seats[0]) == 0
    book.unplace(seat.id, seat.need)
    assert book.free(seats[0]) == 1 and book.dispatched["a"] == 0


def test_an_unusable_seat_has_no_free_slots_and_gets_nothing() -> None:
    book = SlotBook()
    seats = [Seat("a", 8, False), Seat("b", 1, True)]
    assert book.free(seats[0]) == 0
    assert _ids(book, seats, 2) == ["b", None]


def test_a_verification_never_goes_to_the_original_worker() -> None:
    book = SlotBook()
    seats = [Seat("a", 4, True), Seat("b", 1, True)]
    first = book.place("v1", seats, exclude="a")
    assert first is not None and first.id == "b"
    assert book.place("v2", seats, exclude="a") is None  # b is full; a is not an option
    lonely = [Seat("a", 4, True)]
    assert book.place("v3", lonely, exclude="a") is not None  # one worker only: it may check itself


def test_a_retry_avoids_the_failed_worker_while_another_is_alive() -> None:
    book = SlotBook()
    seats = [Seat("a", 4, True), Seat("b", 1, True)]
    first = book.place("r1", seats, avoid="a")
    assert first is not None and first.id == "b"
    assert book.place("r2", seats, avoid="a") is None  # waits for b rather than going back to a
    dead_b = [Seat("a", 4, True), Seat("b", 1, False)]
    again = book.place("r3", dead_b, avoid="a")
    assert again is not None and again.id == "a"


def test_suspension_lasts_until_the_worker_is_seen_again() -> None:
    book = SlotBook()
    book.suspend("a", at=100.0)
    assert book.suspended("a", last_seen=None) and book.suspended("a", last_seen=99.0)
    assert book.suspended("b", last_seen=None) is False
    assert book.suspended("a", last_seen=100.5) is False
    assert book.suspended("a", last_seen=None) is False  # lifted for good


def test_a_big_task_holds_its_worker_for_the_round_then_gets_it() -> None:
    book = SlotBook()
    one = [Seat("a", 2, True, need=1)]
    small = book.place("first", one)
    assert small is not None  # one of a's two slots in use
    book.round_start()
    big = [Seat("a", 2, True, need=2)]
    assert book.place("big", big) is None  # needs both: a is held for it
    assert book.open(one[0]) == 0 and book.open(one[0], "big") == 1
    assert book.place("later", one) is None  # the free slot stays for the big task
    book.round_start()
    assert book.place("big", big) is None  # nothing freed yet: held again
    book.release("a", 1)
    placed = book.place("big", big)
    assert placed is not None and placed.need == 2 and book.inflight["a"] == 2
