"""The lifecycle of a work order as a pure state machine: statuses, actions and the one table of allowed
transitions.

    received → dispatched → accepted → handled → feedback → evaluated → closed
                   ↑  │ reject (not ours: back to the dispatch center)
                   └──┘ redispatch (from dispatched or accepted, to another department)
    feedback → accepted   reopen: the citizen is unsatisfied, the order goes back to the handling unit
    feedback → closed     close: nobody evaluated it in time
    received | dispatched | accepted → cancelled   cancel: a duplicate or invalid request (a reason is required)
    received | dispatched | accepted → (same)      escalate: to supervision (督办); the status does not change

Everything here is data plus one function, :func:`transition`, with no database: :mod:`layers.workorders` applies
it and writes the result. The table is declared once (:data:`TRANSITIONS`); the UI asks :func:`allowed_actions` which
buttons to show, the Open311 layer maps :data:`STATUSES` to open/closed with :data:`OPEN_STATUSES`.

>>> transition("received", "dispatch").to_status
'dispatched'
>>> transition("closed", "reopen")
Traceback (most recent call last):
...
layers.lifecycle.TransitionRefused: cannot reopen an order that is closed (a closed order is final); allowed here: none
"""
from __future__ import annotations

from dataclasses import dataclass

STATUSES = ("received", "dispatched", "accepted", "handled", "feedback", "evaluated", "closed", "cancelled")
"""Every status an order can have, in lifecycle order."""

FINAL_STATUSES = frozenset({"closed", "cancelled"})
OPEN_STATUSES = frozenset(STATUSES) - FINAL_STATUSES
"""Statuses of orders still in the loop (Open311's ``open``); the final ones are Open311's ``closed``."""

UNHANDLED_STATUSES = frozenset({"received", "dispatched", "accepted"})

RESPONSE_HOURS = 24
"""The first response: an order is dispatched within this many hours of intake (24-hour quick response)."""
"""Statuses whose clock runs against the deadline: nothing has been handled yet (or the order was reopened)."""

MAX_REOPENS = 2
"""An unsatisfied evaluation reopens an order at most this many times; after that the answer is recorded
(``evaluate`` with ``satisfied=False``) and supervision closes the order."""


@dataclass(frozen=True)
class Action:
    """One thing an operator (or the citizen, or the clock) does to an order."""

    name: str
    label: str
    label_zh: str
    actor_role: str          # who normally does it: intake | dispatch | unit | citizen | supervision
    stamps: str | None       # the ``<stage>_at`` column it sets to the action's time (None: none)
    clears: tuple[str, ...] = ()  # the columns it empties (a reopen clears the handling that did not satisfy)
    note_required: bool = False   # a reason is required (reject, redispatch, cancel, escalate)
    needs_department: bool = False  # takes a department (dispatch may also find it in the list)


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("file", "File", "受理", "intake", "received_at"),
    Action("dispatch", "Dispatch", "分拨", "dispatch", "dispatched_at", needs_department=True),
    Action("redispatch", "Re-dispatch", "改派", "dispatch", "dispatched_at", clears=("accepted_at",),
           note_required=True, needs_department=True),
    Action("reject", "Reject (not ours)", "退回", "unit", None, clears=("dispatched_at", "accepted_at"),
           note_required=True),
    Action("accept", "Accept", "签收", "unit", "accepted_at"),
    Action("handle", "Mark handled", "办结处置", "unit", "handled_at"),
    Action("reply", "Reply to the citizen", "反馈", "unit", "feedback_at"),
    Action("evaluate", "Evaluate", "评价", "citizen", "evaluated_at"),
    Action("reopen", "Reopen (unsatisfied)", "不满意重办", "citizen", "evaluated_at",
           clears=("handled_at", "feedback_at")),
    Action("close", "Close", "办结归档", "supervision", "closed_at"),
    Action("cancel", "Cancel", "作废", "dispatch", "closed_at", note_required=True),
    Action("escalate", "Escalate to supervision", "督办", "supervision", "supervised_at", note_required=True),
)}
"""Every action, declared once. ``file`` creates an order; it is never applied to an existing one."""

TRANSITIONS: dict[tuple[str, str], str] = {
    ("received", "dispatch"): "dispatched",
    ("received", "cancel"): "cancelled",
    ("received", "escalate"): "received",
    ("dispatched", "accept"): "accepted",
    ("dispatched", "reject"): "received",
    ("dispatched", "redispatch"): "dispatched",
    ("dispatched", "cancel"): "cancelled",
    ("dispatched", "escalate"): "dispatched",
    ("accepted", "handle"): "handled",
    ("accepted", "redispatch"): "dispatched",
    ("accepted", "cancel"): "cancelled",
    ("accepted", "escalate"): "accepted",
    ("handled", "reply"): "feedback",
    ("feedback", "evaluate"): "evaluated",
    ("feedback", "reopen"): "accepted",
    ("feedback", "close"): "closed",
    ("evaluated", "close"): "closed",
}
"""(status, action) → the status after it. A pair that is not here is refused."""

_WHY_NOT = {
    "closed": "a closed order is final",
    "cancelled": "a cancelled order is final",
}


class TransitionRefused(ValueError):
    """An action that the lifecycle does not allow in the order's status (or whose condition does not hold).

    ``reason`` is the English text (API answers, logs); ``message_id`` and ``params`` (with ``status`` and
    ``action``) say the same as a message id with its values, so that a screen in another language can say it in its own words (dashboard/i18n.py)."""

    def __init__(self, status: str, action: str, reason: str, message_id: str | None = None, **params):
        self.status, self.action, self.reason = status, action, reason
        self.message_id, self.params = message_id, params
        super().__init__(reason)


@dataclass(frozen=True)
class Transition:
    from_status: str
    action: str
    to_status: str


def allowed_actions(status: str) -> list[str]:
    """The actions allowed in ``status``, in declaration order (what the UI offers).

    >>> allowed_actions("feedback")
    ['evaluate', 'reopen', 'close']
    """
    return [action for (state, action) in TRANSITIONS if state == status]


def transition(status: str, action: str, *, reopen_count: int = 0) -> Transition:
    """The transition ``action`` makes from ``status``; raises :class:`TransitionRefused` naming both when the
    table does not allow it, or when an order has been reopened :data:`MAX_REOPENS` times already."""
    if status not in STATUSES:
        raise TransitionRefused(status, action, f"unknown status {status!r}; statuses: {', '.join(STATUSES)}")
    if action not in ACTIONS or action == "file":
        known = ", ".join(a for a in ACTIONS if a != "file")
        raise TransitionRefused(status, action, f"unknown action {action!r}; actions: {known}")
    target = TRANSITIONS.get((status, action))
    if target is None:
        why = _WHY_NOT.get(status)
        allowed = ", ".join(allowed_actions(status)) or "none"
        raise TransitionRefused(status, action, f"cannot {action} an order that is {status}"
                                                f"{f' ({why})' if why else ''}; allowed here: {allowed}",
                                "refusal.final" if why else "refusal.not_allowed",
                                allowed=tuple(allowed_actions(status)))
    if action == "reopen" and reopen_count >= MAX_REOPENS:
        raise TransitionRefused(status, action, f"cannot reopen an order already reopened {reopen_count} times "
                                                f"(at most {MAX_REOPENS}); record the evaluation instead",
                                "refusal.reopen_limit", count=reopen_count, limit=MAX_REOPENS)
    return Transition(status, action, target)
