"""Screens that follow the city: every open page hears of a new generation within seconds and redraws its data in
place (the camera, the selection and the scroll stay where the operator put them).

Mechanism, chosen by measurement (README, "Live city"): each page polls ``GET /api/generation`` — a ~120-byte JSON
answer with the generation's key — every :data:`POLL_SECONDS`, from the browser (no Dash round trip); only when the
key changes does the shared ``dcc.Store`` change, which fires the pages' own refresh callbacks. An idle screen costs
one small request per poll and no server work beyond comparing layer versions, and it holds no connection open, so
50 screens cost 50 short requests per poll interval instead of 50 threads held by server-sent events or websockets
(the server's threads are the scarce resource: 8 per worker).
"""
from __future__ import annotations

import os

from dash import Input, Output, State, clientside_callback, dcc
from flask import Flask, jsonify

from dashboard import services

GENERATION = "live-generation"
TICK = "live-tick"
POLL_SECONDS = 2.0


def shell_components() -> list:
    """The shared store of the generation's key (set to the one the page was drawn from) and the poll's tick."""
    key = services.get().generation().key
    return [dcc.Store(id=GENERATION, data=key), dcc.Interval(id=TICK, interval=int(POLL_SECONDS * 1000))]


def generation_answer() -> dict:
    generation = services.get().generation()
    return {"generation": generation.key, "as_of": generation.city.as_of.isoformat(),
            "mode": services.get().settings.mode, "worker": os.getpid()}


def register(server: Flask) -> None:
    server.add_url_rule("/api/generation", "generation", _generation_route)


def _generation_route():
    response = jsonify(generation_answer())
    response.headers["Cache-Control"] = "no-store"
    return response


# The poll runs in the browser: a fetch, and a change of the store only when the key changed (Dash then calls the
# refresh callbacks of whatever page is open). A failed fetch (server restarting) changes nothing.
clientside_callback(
    """
    async function(_n, known) {
        try {
            const answer = await fetch("/api/generation", {cache: "no-store", credentials: "same-origin"});
            if (!answer.ok) { return window.dash_clientside.no_update; }
            const key = (await answer.json()).generation;
            return key && key !== known ? key : window.dash_clientside.no_update;
        } catch (error) {
            return window.dash_clientside.no_update;
        }
    }
    """,
    Output(GENERATION, "data"),
    Input(TICK, "n_intervals"),
    State(GENERATION, "data"),
    prevent_initial_call=True,
)
