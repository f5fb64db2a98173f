"""One answer per view and generation, sent as the same bytes to every screen that asks for it.

In live mode every screen on a view redraws for each new generation; :meth:`Services.shared_answer` makes the
answer once per generation, and this module keeps the response body Dash encoded for it the first time, so that
the other screens get those bytes instead of the components encoded again: the encoding was 85 % of such a
request (7-10 ms of 8-12 ms for a map page's 150-380 kB at the city scale) and a third of a web worker's CPU under
50 users with the live stream (py-spy).

A callback that shares its answer calls :func:`shared_reply` and returns what it returned, unchanged. When the
body is already kept, :func:`shared_reply` raises :class:`SentBefore` with it: the exception leaves Dash's
callback machinery (which has no other way to skip its encoding) and the route's wrapper (:func:`register`)
answers with the body. The body is kept per list of outputs the request names (Dash's response names them), in
the generation's memo beside the answer: a body made for one generation is never sent for another. It is kept
compressed too (brotli or gzip, as the browser accepts, at dashboard/delivery.py's levels): flask-compress
compressing the same 150-380 kB for every screen was a tenth of a worker's CPU under that load (it leaves an answer
that already says its encoding alone).
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field

import brotli
import flask

from dashboard import services

UPDATE_ROUTE = "/_dash-update-component"
ENCODINGS = ("br", "gzip")  # dashboard/delivery.py's, in its order of preference
MAX_BODIES = 12
"""Bodies kept for one answer: (outputs, encoding) pairs (a callback has one output list, sent in up to three
encodings; more can only come from hand-made requests)."""


@dataclass
class Reply:
    answer: object
    bodies: dict = field(default_factory=dict)  # (the request's outputs as JSON, encoding or None) → body


class SentBefore(Exception):
    """The answer Dash made for the same answer and outputs earlier in this generation (not an error: see above)."""

    def __init__(self, response: flask.Response):
        super().__init__("a kept reply")
        self.response = response


def shared_reply(key, compute):
    """``compute()`` made once per generation for ``key`` (:meth:`Services.shared_answer`'s rules), and, in a
    callback request whose outputs were answered with it before, that answer's body (see the module docstring).
    The callback must return the value as it is."""
    reply = services.get().shared_answer(key, lambda: Reply(compute()))
    if not flask.has_request_context() or flask.request.path != UPDATE_ROUTE:
        return reply.answer
    outputs = _outputs(flask.request)
    if (outputs, None) in reply.bodies:
        raise SentBefore(_sent(reply, outputs))
    flask.g.shared_reply = (reply, outputs)
    return reply.answer


def _sent(reply: Reply, outputs: str) -> flask.Response:
    """The kept body for ``outputs``, in the best encoding the request accepts (compressed once, then kept)."""
    encoding = flask.request.accept_encodings.best_match(ENCODINGS)
    body = reply.bodies.get((outputs, encoding))
    if body is None:
        config = flask.current_app.config
        plain = reply.bodies[(outputs, None)]
        body = (brotli.compress(plain, quality=config.get("COMPRESS_BR_LEVEL", 5)) if encoding == "br" else
                gzip.compress(plain, compresslevel=config.get("COMPRESS_LEVEL", 6)))
        if len(reply.bodies) < MAX_BODIES:
            reply.bodies[(outputs, encoding)] = body
    response = flask.Response(body, mimetype="application/json")
    if encoding is not None:
        response.headers["Content-Encoding"] = encoding
        response.headers["Vary"] = "Accept-Encoding"
    return response


def _outputs(request: flask.Request) -> str:
    body = request.get_json(silent=True)
    return json.dumps(body.get("outputs") if isinstance(body, dict) else None, sort_keys=True)


def register(server: flask.Flask) -> None:
    """Wrap Dash's callback route: answer a :class:`SentBefore` with its body, and keep the body of an answer
    made by :func:`shared_reply`. Registered before the access layer wraps the route (its guard would take the
    exception for a bad request)."""
    dash_dispatch = server.view_functions[UPDATE_ROUTE]

    def dispatch(*args, **kwargs):
        try:
            response = dash_dispatch(*args, **kwargs)
        except SentBefore as sent:
            return sent.response
        made = flask.g.pop("shared_reply", None)
        if made is not None and response.status_code == 200 and not response.is_streamed:
            reply, outputs = made
            if len(reply.bodies) < MAX_BODIES:
                reply.bodies[(outputs, None)] = response.get_data()
                return _sent(reply, outputs)
        return response

    server.view_functions[UPDATE_ROUTE] = dispatch
