"""The publisher lifecycle: which transitions exist, and what each state refuses."""

from __future__ import annotations

import pytest

from eventwire._core.state import Lifecycle, State


def _at(*path: State) -> Lifecycle:
    life = Lifecycle()
    for state in path:
        assert life.move(state)
    return life


def test_a_publisher_starts_open_and_accepting() -> None:
    life = Lifecycle()
    assert life.state is State.OPEN
    assert (life.accepting, life.refusing, life.closed, life.abandoning) == (
        True,
        False,
        False,
        False,
    )


def test_a_close_goes_through_closing_and_abandoning_to_closed() -> None:
    life = _at(State.CLOSING)
    assert (life.accepting, life.refusing, life.closed, life.abandoning) == (
        False,
        True,
        True,
        False,
    )
    assert life.move(State.ABANDONING)
    assert life.abandoning
    assert life.move(State.CLOSED)
    assert (life.closed, life.abandoning) == (True, True)


@pytest.mark.parametrize(
    ("path", "to"),
    [
        ((State.CLOSING,), State.OPEN),
        ((State.CLOSED,), State.CLOSING),
        ((State.CLOSED,), State.ORPHANED),
        ((State.CLOSING,), State.INTAKE_STOPPED),
        ((State.FORKED,), State.CLOSED),
    ],
)
def test_a_transition_the_lifecycle_does_not_have_is_a_bug(
    path: tuple[State, ...], to: State
) -> None:
    life = _at(*path)
    with pytest.raises(RuntimeError, match=f"publisher lifecycle: {life.state.value} -> "):
        life.move(to)
    assert life.state is path[-1]


def test_a_move_to_the_current_state_or_from_another_is_no_change() -> None:
    life = _at(State.CLOSING)
    assert life.move(State.CLOSING) is False
    assert life.move(State.CLOSED, only_from=frozenset({State.OPEN})) is False
    assert life.state is State.CLOSING


def test_every_state_can_become_forked_and_forked_is_final() -> None:
    for state in State:
        if state in (State.OPEN, State.FORKED):
            continue
        life = Lifecycle()
        life.state = state
        assert life.move(State.FORKED)
        assert (life.forked, life.refusing, life.closed) == (True, True, True)
    for state in State:
        if state is not State.FORKED:
            with pytest.raises(RuntimeError):
                _at(State.FORKED).move(state)


def test_an_orphaned_publisher_refuses_but_can_still_close() -> None:
    life = _at(State.INTAKE_STOPPED, State.ORPHANED)
    assert (life.orphaned, life.refusing, life.closed) == (True, True, False)
    assert life.move(State.CLOSED)
