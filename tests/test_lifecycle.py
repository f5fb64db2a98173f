"""The work-order state machine (layers.lifecycle): every (status, action) pair, allowed or refused.

The pairs are generated from the module's own table AND checked against an expectation written here by hand from
the issue's lifecycle, so a wrong line in the table fails a test instead of being copied into it.
"""
from __future__ import annotations

import itertools

import pytest

from layers import lifecycle
from layers.lifecycle import ACTIONS, MAX_REOPENS, STATUSES, TRANSITIONS, TransitionRefused, transition

# Written by hand from issue 5: received → dispatched → accepted → handled → feedback → evaluated → closed, reopen
# (unsatisfied: back to the unit), re-dispatch / reject (not theirs), cancel (duplicate/invalid), escalate.
EXPECTED = {
    "received": {"dispatch": "dispatched", "cancel": "cancelled", "escalate": "received"},
    "dispatched": {"accept": "accepted", "reject": "received", "redispatch": "dispatched", "cancel": "cancelled",
                   "escalate": "dispatched"},
    "accepted": {"handle": "handled", "redispatch": "dispatched", "cancel": "cancelled", "escalate": "accepted"},
    "handled": {"reply": "feedback"},
    "feedback": {"evaluate": "evaluated", "reopen": "accepted", "close": "closed"},
    "evaluated": {"close": "closed"},
    "closed": {},
    "cancelled": {},
}
APPLICABLE_ACTIONS = [a for a in ACTIONS if a != "file"]
ALL_PAIRS = list(itertools.product(STATUSES, APPLICABLE_ACTIONS))


def test_the_table_is_the_hand_written_lifecycle():
    expected = {(s, a): t for s, actions in EXPECTED.items() for a, t in actions.items()}
    assert TRANSITIONS == expected
    assert set(EXPECTED) == set(STATUSES)


@pytest.mark.parametrize(("status", "action"), ALL_PAIRS, ids=[f"{s}-{a}" for s, a in ALL_PAIRS])
def test_every_pair(status, action):
    expected = EXPECTED[status].get(action)
    if expected is None:
        with pytest.raises(TransitionRefused) as refused:
            transition(status, action)
        message = str(refused.value)
        # The reason names the action and the status, and says what is allowed instead.
        assert f"cannot {action} an order that is {status}" in message
        assert "allowed here:" in message
        assert refused.value.status == status and refused.value.action == action
    else:
        step = transition(status, action)
        assert (step.from_status, step.action, step.to_status) == (status, action, expected)


def test_allowed_and_refused_pairs_cover_everything():
    allowed = [(s, a) for s, a in ALL_PAIRS if (s, a) in TRANSITIONS]
    refused = [(s, a) for s, a in ALL_PAIRS if (s, a) not in TRANSITIONS]
    assert len(allowed) == sum(len(v) for v in EXPECTED.values()) == 17
    assert len(allowed) + len(refused) == len(STATUSES) * len(APPLICABLE_ACTIONS)


def test_final_statuses_say_why():
    with pytest.raises(TransitionRefused, match=r"a closed order is final\); allowed here: none"):
        transition("closed", "reopen")
    with pytest.raises(TransitionRefused, match="a cancelled order is final"):
        transition("cancelled", "dispatch")


def test_reopen_limit():
    assert transition("feedback", "reopen", reopen_count=MAX_REOPENS - 1).to_status == "accepted"
    with pytest.raises(TransitionRefused, match=f"already reopened {MAX_REOPENS} times"):
        transition("feedback", "reopen", reopen_count=MAX_REOPENS)


def test_unknown_status_and_action_are_named():
    with pytest.raises(TransitionRefused, match="unknown status 'lost'"):
        transition("lost", "dispatch")
    with pytest.raises(TransitionRefused, match="unknown action 'teleport'"):
        transition("received", "teleport")
    with pytest.raises(TransitionRefused, match="unknown action 'file'"):
        transition("received", "file")  # intake creates an order, it is never applied to one


def test_allowed_actions_follow_the_table():
    for status in STATUSES:
        assert lifecycle.allowed_actions(status) == list(EXPECTED[status])


def test_actions_stamp_existing_stage_columns():
    from layers.specs import ORDERS

    names = set(ORDERS.column_names)
    for action in ACTIONS.values():
        assert action.stamps is None or action.stamps in names, action.name
        assert set(action.clears) <= names, action.name
