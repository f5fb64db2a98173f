"""Incidents asked for by a drill, carried through the store to the process that runs the simulator (issue 13).

With several web workers (``CITYTWIN_WORKERS``) the simulator runs in the jobs process (forked from the master,
``app.fork_jobs``; or ``app.py --jobs-only`` alone), not in the worker that answers a tour's step. The store is how
this project's processes signal each other (layer versions, README "Several workers"), so a step's incident is a
row here: the worker adds it (``ask``), the simulator's thread takes the pending rows once a second (``serve``) and
writes what happened, and the worker reads that back (``wait``) to tell the presenter. A request nobody took within
:data:`EXPIRE_SECONDS` expires rather than starting a drill long after its step (a jobs process restarted an hour
later).

>>> from layers.store import Store
>>> requests = IncidentRequests(Store("sqlite://"), clock=lambda: 1000)
>>> asked = requests.ask("fire", "sue")
>>> requests.outcome(asked)["status"]
'pending'
>>> requests.serve(lambda kind, place: type("Incident", (), {"place": "B0000001"})())
1
>>> {k: requests.outcome(asked)[k] for k in ("status", "place")}
{'status': 'started', 'place': 'B0000001'}
"""
from __future__ import annotations

import time
from typing import Callable

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text, select, update

from layers.store import Store

EXPIRE_SECONDS = 60
"""A request older than this when the simulator sees it is not started (status ``expired``)."""

INCIDENT_METADATA = MetaData()
INCIDENT_REQUESTS = Table(
    "incident_requests", INCIDENT_METADATA,
    Column("request_id", Integer, primary_key=True, autoincrement=True),
    Column("spec", String(300), nullable=False),         # KIND or KIND:PLACE (dashboard.tours checks it)
    Column("requested_by", Text, nullable=False),
    Column("requested_at", BigInteger, nullable=False),  # UTC epoch seconds
    Column("status", String(16), nullable=False),        # pending | taken | started | failed | expired
    Column("place", Text, nullable=True),                # where the simulator started it
    Column("detail", Text, nullable=True),               # why it failed
    Column("done_at", BigInteger, nullable=True),
)


class IncidentRequests:
    """The queue of drills' incidents in one store."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock
        INCIDENT_REQUESTS.create(store.engine, checkfirst=True)

    def ask(self, spec: str, actor: str) -> int:
        """Queue the incident ``spec`` (``KIND[:PLACE]``); its request id."""
        with self.store.engine.begin() as conn:
            result = conn.execute(INCIDENT_REQUESTS.insert().values(
                spec=str(spec)[:300], requested_by=str(actor), requested_at=int(self.clock()), status="pending"))
            return int(result.inserted_primary_key[0])

    def outcome(self, request_id: int) -> dict | None:
        """The request's row (status, place, detail), or None for an unknown id."""
        with self.store.engine.connect() as conn:
            row = conn.execute(select(INCIDENT_REQUESTS).where(
                INCIDENT_REQUESTS.c.request_id == int(request_id))).mappings().first()
        return dict(row) if row is not None else None

    def wait(self, request_id: int, timeout: float, poll: float = 0.1) -> dict | None:
        """The request's row once the simulator has answered it, or as it is after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            row = self.outcome(request_id)
            if row is None or row["status"] not in ("pending", "taken") or time.monotonic() >= deadline:
                return row
            time.sleep(poll)

    def serve(self, start: Callable[[str, str | None], object]) -> int:
        """Start the pending requests with ``start(kind, place)`` (the simulator's ``start_incident``, which
        returns the incident, with its ``place``, or raises ValueError); how many were answered. Each request is
        taken by one server only (a conditional update), so two simulators never start the same drill twice."""
        now = int(self.clock())
        with self.store.engine.connect() as conn:
            pending = conn.execute(select(INCIDENT_REQUESTS.c.request_id, INCIDENT_REQUESTS.c.spec,
                                          INCIDENT_REQUESTS.c.requested_at)
                                   .where(INCIDENT_REQUESTS.c.status == "pending")
                                   .order_by(INCIDENT_REQUESTS.c.request_id)).all()
        answered = 0
        for request_id, spec, requested_at in pending:
            if not self._take(request_id):
                continue
            if now - requested_at > EXPIRE_SECONDS:
                self._finish(request_id, "expired", detail=f"not taken within {EXPIRE_SECONDS} s")
                continue
            kind, _, place = spec.partition(":")
            try:
                incident = start(kind, place or None)
            except ValueError as error:  # a place the city does not have: the simulator says which
                self._finish(request_id, "failed", detail=str(error))
            else:
                self._finish(request_id, "started", place=getattr(incident, "place", None))
            answered += 1
        return answered

    def _take(self, request_id: int) -> bool:
        with self.store.engine.begin() as conn:
            return conn.execute(update(INCIDENT_REQUESTS).where(
                (INCIDENT_REQUESTS.c.request_id == request_id) & (INCIDENT_REQUESTS.c.status == "pending"))
                .values(status="taken")).rowcount == 1

    def _finish(self, request_id: int, status: str, place: str | None = None, detail: str | None = None) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(update(INCIDENT_REQUESTS).where(INCIDENT_REQUESTS.c.request_id == request_id).values(
                status=status, place=place, detail=detail, done_at=int(self.clock())))
