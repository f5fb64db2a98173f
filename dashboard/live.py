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

from dash import ALL, Input, Output, State, clientside_callback, dcc
from flask import Flask, jsonify

from dashboard import services

GENERATION = "live-generation"
TICK = "live-tick"
FOLLOWER = "live-follower"
POLL_SECONDS = 2.0


def shell_components() -> list:
    """The shared store of the generation's key (set to the one the page was drawn from) and the poll's tick."""
    key = services.get().generation().key
    return [dcc.Store(id=GENERATION, data=key), dcc.Interval(id=TICK, interval=int(POLL_SECONDS * 1000))]


def follower(page: str) -> dcc.Store:
    """A page's own copy of the generation's key, set by the poll with the shell's: the page's refresh callbacks
    take it as their Input (:func:`follows`). An Input that every page has (the shell's store) would fire the map's
    refresh on the alerts page too, where its outputs are not (Dash then fails in the browser)."""
    return dcc.Store(id={"type": FOLLOWER, "page": page}, data=services.get().generation().key)


def follows(page: str) -> Input:
    """The Input of a page's callbacks that redraw it for a new generation (the page has :func:`follower`)."""
    return Input({"type": FOLLOWER, "page": page}, "data")


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
    async function(_n, known, followers) {
        const unchanged = [window.dash_clientside.no_update, followers.map(() => window.dash_clientside.no_update)];
        try {
            const answer = await fetch("/api/generation", {cache: "no-store", credentials: "same-origin"});
            if (!answer.ok) { return unchanged; }
            const key = (await answer.json()).generation;
            return key && key !== known ? [key, followers.map(() => key)] : unchanged;
        } catch (error) {
            return unchanged;
        }
    }
    """,
    Output(GENERATION, "data"),
    Output({"type": FOLLOWER, "page": ALL}, "data"),
    Input(TICK, "n_intervals"),
    State(GENERATION, "data"),
    State({"type": FOLLOWER, "page": ALL}, "data"),
    prevent_initial_call=True,
)
