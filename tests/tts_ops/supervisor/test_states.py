"""The worker lifecycle state machine: every allowed move accepted, forbidden ones raise, RETIRED is terminal.

The expected table is written out by hand below (not derived from ``ALLOWED``): a change to the production table
fails ``test_production_table_is_the_pinned_one`` and must be made here too, on purpose."""

from __future__ import annotations

import itertools

import pytest

from tts_ops.supervisor.states import ALLOWED, LIVE, IllegalTransition, WorkerState, check_transition

S = WorkerState
# The lifecycle, by state value: current -> the states it may move to. Everything else is forbidden.
EXPECTED: dict[str, set[str]] = {
    "starting": {"ready", "stopping", "exited"},
    "ready": {"draining", "stopping", "exited"},
    "draining": {"stopping", "exited"},
    "stopping": {"exited"},
    "exited": {"backoff", "failed", "retired"},
    "backoff": {"starting", "retired"},
    "failed": {"starting", "retired"},
    "retired": set(),
}
STATES = list(EXPECTED)
ALLOWED_PAIRS = [(a, b) for a in STATES for b in sorted(EXPECTED[a])]
FORBIDDEN_PAIRS = [(a, b) for a, b in itertools.product(STATES, STATES) if b not in EXPECTED[a]]


def pair_id(pair: tuple[str, str]) -> str:
    return f"{pair[0]}->{pair[1]}"


def test_pinned_table_is_well_formed():
    assert len(ALLOWED_PAIRS) == 16 and len(FORBIDDEN_PAIRS) == 8 * 8 - 16
    assert all(b in EXPECTED for targets in EXPECTED.values() for b in targets)


def test_states_are_the_pinned_ones():
    assert [state.value for state in S] == STATES


def test_production_table_is_the_pinned_one():
    assert {a.value: {b.value for b in targets} for a, targets in ALLOWED.items()} == EXPECTED


@pytest.mark.parametrize("pair", ALLOWED_PAIRS, ids=pair_id)
def test_allowed_transition_is_accepted(pair):
    current, new = pair
    check_transition(S(current), S(new))


@pytest.mark.parametrize("pair", FORBIDDEN_PAIRS, ids=pair_id)
def test_forbidden_transition_raises(pair):
    current, new = pair
    with pytest.raises(IllegalTransition, match=f"^worker cannot go from {current} to {new}$"):
        check_transition(S(current), S(new))


@pytest.mark.parametrize("pair", [
    ("starting", "draining"),   # never ready, so nothing to drain
    ("starting", "backoff"),    # must pass through EXITED
    ("ready", "retired"),       # retiring a live worker must stop it first
    ("draining", "ready"),      # no un-draining
    ("exited", "starting"),     # the policy must decide (BACKOFF/FAILED) first
    ("ready", "ready"),         # self-moves are not transitions
], ids=pair_id)
def test_the_moves_that_matter_most_are_forbidden(pair):
    assert pair in FORBIDDEN_PAIRS


@pytest.mark.parametrize("new", STATES)
def test_retired_is_terminal(new):
    with pytest.raises(IllegalTransition):
        check_transition(S.RETIRED, S(new))


def test_retired_reachable_only_after_the_process_is_gone():
    assert {a for a, targets in EXPECTED.items() if "retired" in targets} == {"exited", "backoff", "failed"}


def test_live_states_are_those_with_a_process():
    assert LIVE == {S.STARTING, S.READY, S.DRAINING, S.STOPPING}


def test_illegal_transition_is_a_runtime_error():
    assert issubclass(IllegalTransition, RuntimeError)
