"""The worker lifecycle state machine: every allowed move accepted, forbidden ones raise, RETIRED is terminal."""

from __future__ import annotations

import itertools

import pytest

from tts_ops.supervisor.states import ALLOWED, LIVE, IllegalTransition, WorkerState, check_transition

S = WorkerState
ALLOWED_PAIRS = sorted(((a, b) for a, targets in ALLOWED.items() for b in targets), key=lambda p: (p[0].value, p[1].value))
FORBIDDEN_PAIRS = [(a, b) for a, b in itertools.product(S, S) if b not in ALLOWED[a]]


def test_every_state_has_an_entry():
    assert set(ALLOWED) == set(S)


@pytest.mark.parametrize("current, new", ALLOWED_PAIRS, ids=lambda s: s.value)
def test_allowed_transition_is_accepted(current, new):
    check_transition(current, new)


@pytest.mark.parametrize("current, new", [
    (S.STARTING, S.DRAINING),    # never ready, so nothing to drain
    (S.STARTING, S.BACKOFF),     # must pass through EXITED
    (S.READY, S.STARTING),
    (S.READY, S.RETIRED),        # retiring a live worker must stop it first
    (S.DRAINING, S.READY),       # no un-draining
    (S.STOPPING, S.READY),
    (S.STOPPING, S.RETIRED),
    (S.EXITED, S.STARTING),      # the policy must decide (BACKOFF/FAILED) first
    (S.EXITED, S.READY),
    (S.BACKOFF, S.READY),
    (S.FAILED, S.READY),
    (S.FAILED, S.BACKOFF),
    (S.READY, S.READY),          # self-moves are not transitions
    (S.RETIRED, S.STARTING),
], ids=lambda s: s.value)
def test_sample_of_forbidden_transitions_raise(current, new):
    with pytest.raises(IllegalTransition, match=f"from {current.value} to {new.value}"):
        check_transition(current, new)


def test_all_forbidden_transitions_raise():
    assert len(FORBIDDEN_PAIRS) == len(S) ** 2 - len(ALLOWED_PAIRS)
    for current, new in FORBIDDEN_PAIRS:
        with pytest.raises(IllegalTransition):
            check_transition(current, new)


@pytest.mark.parametrize("new", list(S), ids=lambda s: s.value)
def test_retired_is_terminal(new):
    assert ALLOWED[S.RETIRED] == frozenset()
    with pytest.raises(IllegalTransition):
        check_transition(S.RETIRED, new)


def test_retired_reachable_only_after_the_process_is_gone():
    assert {a for a, targets in ALLOWED.items() if S.RETIRED in targets} == {S.EXITED, S.BACKOFF, S.FAILED}


def test_live_states_are_those_with_a_process():
    assert LIVE == {S.STARTING, S.READY, S.DRAINING, S.STOPPING}


def test_illegal_transition_is_a_runtime_error():
    assert issubclass(IllegalTransition, RuntimeError)
