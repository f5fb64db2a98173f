"""Presenter tours: scripted sequences of views, one JSON file each (format: docs/tours.md).

A tour file ``<name>.json`` in the tours folder (``dashboard/tours/`` unless ``CITYTWIN_TOURS`` names another)::

    {"title": {"en": "Shenzhen in two minutes", "zh": "两分钟看深圳"},
     "loop": false,
     "steps": [{"path": "/?unit=440304&indicator=on_time_rate&window=7d", "seconds": 8,
                "caption": {"en": "Futian's streets …", "zh": "福田区各街道……"}}]}

:func:`load_tour` reads and validates one file and raises :class:`TourError` naming the file, the step and the
problem; :func:`available_tours` lists the folder. The functions that drive a running tour (:func:`start`,
:func:`move`, :func:`step_href`) are pure: the tour's state is a plain dict kept in the browser (a ``dcc.Store`` of the
app shell), so the tour survives page navigation. This module knows nothing of Dash.

>>> tour = parse_tour({"title": {"en": "Demo", "zh": "演示"}, "steps": [
...     {"path": "/?unit=440304", "seconds": 5, "caption": {"en": "Futian", "zh": "福田"}}]}, "demo.json")
>>> tour.steps[0].seconds, tour.total_seconds
(5.0, 5.0)
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from metrics.registry import INDICATORS
from metrics.spec import WINDOWS

DEFAULT_FOLDER = Path(__file__).resolve().parent
FOLDER_SETTING = "CITYTWIN_TOURS"
LANGUAGES = ("en", "zh")
MAX_STEP_SECONDS = 3600
TOUR_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOUR_FIELDS = {"title", "steps", "loop"}
STEP_FIELDS = {"path", "seconds", "caption"}
OPTIONAL_STEP_FIELDS = {"incident"}
INCIDENT_KINDS = ("pm25_episode", "fire", "storm", "hotspot")
"""The incidents a step may play: those of the sample city's simulator (``sample_data.simulate.INCIDENT_KINDS``;
a test keeps the two equal, so this module needs no simulator to check a file)."""
INCIDENT_PLACE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class TourError(ValueError):
    """A tour file that cannot be used; the message names the file, the step and the problem."""


@dataclass(frozen=True)
class Step:
    path: str                # a page path with its query, e.g. "/?unit=440304&window=7d"
    seconds: float
    caption: dict            # {"en": …, "zh": …}
    incident: str | None = None  # "KIND" or "KIND:PLACE": an incident the step starts (a drill; docs/tours.md)


@dataclass(frozen=True)
class Tour:
    name: str                # the file's stem: ?tour=<name>
    title: dict              # {"en": …, "zh": …}
    steps: tuple[Step, ...]
    loop: bool = False

    @property
    def total_seconds(self) -> float:
        return sum(step.seconds for step in self.steps)


def tours_folder() -> Path:
    """The folder of tour files: ``$CITYTWIN_TOURS`` if set, else the tours shipped with the app (the command-line
    checker's; the server reads it once at start, dashboard.settings)."""
    return Path(os.environ.get(FOLDER_SETTING) or DEFAULT_FOLDER)


def _bilingual(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise TourError(f"{where}: expected an object with \"en\" and \"zh\" texts, got {type(value).__name__}")
    unknown = set(value) - set(LANGUAGES)
    if unknown:
        raise TourError(f"{where}: unknown language(s) {', '.join(sorted(map(repr, unknown)))} "
                        f"(expected {', '.join(LANGUAGES)})")
    for language in LANGUAGES:
        text = value.get(language)
        if not isinstance(text, str) or not text.strip():
            raise TourError(f"{where}: missing {language!r} text")
    return {language: value[language].strip() for language in LANGUAGES}


def _check_path(path, where: str, page_paths) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise TourError(f"{where}: \"path\" must be a page path starting with \"/\" (e.g. \"/?unit=440304\"), "
                        f"got {path!r}")
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or path.startswith("//"):
        raise TourError(f"{where}: \"path\" must stay on this app, got {path!r}")
    if page_paths is not None and not any(_matches(parts.path, known) for known in page_paths):
        raise TourError(f"{where}: unknown page {parts.path!r} (pages: {', '.join(sorted(page_paths))})")
    query = dict(parse_qsl(parts.query))
    if "indicator" in query and query["indicator"] not in INDICATORS:
        raise TourError(f"{where}: unknown indicator {query['indicator']!r} (see /catalogue for the ids)")
    if "window" in query and query["window"] not in WINDOWS:
        raise TourError(f"{where}: unknown window {query['window']!r} (windows: {', '.join(WINDOWS)})")
    if "tour" in query:
        raise TourError(f"{where}: a step cannot start a tour (remove \"tour=\" from the path)")
    return path


def _check_incident(value, where: str) -> str:
    """``KIND`` or ``KIND:PLACE`` (a district, building or grid cell code, checked by the simulator at the step)."""
    if not isinstance(value, str):
        raise TourError(f"{where}: \"incident\" must be text like \"fire\" or \"storm:440306\", got {value!r}")
    kind, _, place = value.partition(":")
    if kind not in INCIDENT_KINDS:
        raise TourError(f"{where}: unknown incident {kind!r} (incidents: {', '.join(INCIDENT_KINDS)})")
    if ":" in value and not INCIDENT_PLACE.match(place):
        raise TourError(f"{where}: incident place {place!r}: letters, digits, '-' and '_' only")
    return value


def _matches(pathname: str, page_path: str) -> bool:
    """Whether a pathname is served by a page path or path template (``/building/<building_id>``)."""
    pattern = re.sub(r"<[^>/]+>", "[^/]+", re.escape(page_path))
    return re.fullmatch(pattern, pathname.rstrip("/") or "/") is not None


def parse_tour(data, source: str, name: str | None = None, page_paths=None) -> Tour:
    """A validated :class:`Tour` from the parsed JSON of ``source`` (used in messages).

    ``page_paths``: the app's page paths (or path templates); when given, every step must open one of them.
    """
    if not isinstance(data, dict):
        raise TourError(f"{source}: a tour is a JSON object with \"title\" and \"steps\", got {type(data).__name__}")
    unknown = set(data) - TOUR_FIELDS
    if unknown:
        raise TourError(f"{source}: unknown field(s) {', '.join(sorted(map(repr, unknown)))} "
                        f"(expected {', '.join(sorted(TOUR_FIELDS))})")
    if "title" not in data:
        raise TourError(f"{source}: missing \"title\"")
    title = _bilingual(data["title"], f"{source}: title")
    loop = data.get("loop", False)
    if not isinstance(loop, bool):
        raise TourError(f"{source}: \"loop\" must be true or false, got {loop!r}")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise TourError(f"{source}: \"steps\" must be a non-empty list of steps")
    parsed = []
    for number, step in enumerate(steps, start=1):
        where = f"{source}: step {number}"
        if not isinstance(step, dict):
            raise TourError(f"{where}: expected an object with path, seconds and caption, got {type(step).__name__}")
        unknown = set(step) - STEP_FIELDS - OPTIONAL_STEP_FIELDS
        if unknown:
            raise TourError(f"{where}: unknown field(s) {', '.join(sorted(map(repr, unknown)))} "
                            f"(expected {', '.join(sorted(STEP_FIELDS | OPTIONAL_STEP_FIELDS))})")
        for field in sorted(STEP_FIELDS):
            if field not in step:
                raise TourError(f"{where}: missing \"{field}\"")
        seconds = step["seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise TourError(f"{where}: \"seconds\" must be a positive number, got {seconds!r}")
        if seconds > MAX_STEP_SECONDS:
            raise TourError(f"{where}: \"seconds\" is {seconds!r}; at most {MAX_STEP_SECONDS} per step")
        parsed.append(Step(path=_check_path(step["path"], where, page_paths), seconds=float(seconds),
                           caption=_bilingual(step["caption"], f"{where}: caption"),
                           incident=_check_incident(step["incident"], where) if "incident" in step else None))
    return Tour(name=name or Path(source).stem, title=title, steps=tuple(parsed), loop=loop)


def load_tour(path: str | Path, page_paths=None) -> Tour:
    """Read and validate one tour file (see :func:`parse_tour`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TourError(f"{path}: cannot read the file ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise TourError(f"{path}: not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise TourError(f"{path}: not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}") from None
    return parse_tour(data, str(path), path.stem, page_paths)


def unknown_units(tour: Tour, unit_codes) -> list[str]:
    """One message per step whose ``unit=`` is not a unit of the loaded city (checked when the tour starts, since
    the units are the city's data, not the file's)."""
    problems = []
    for number, step in enumerate(tour.steps, start=1):
        unit = dict(parse_qsl(urlsplit(step.path).query)).get("unit")
        if unit is not None and unit not in unit_codes:
            problems.append(f"tour {tour.name!r}: step {number}: unknown unit {unit!r} in this city")
    return problems


def tour_path(name: str, folder: Path | None = None) -> Path:
    """The file of the tour ``name`` (``?tour=name``); a name that could leave the folder is refused."""
    if not isinstance(name, str) or not TOUR_NAME.match(name):
        raise TourError(f"tour {name!r}: a tour name has only letters, digits, '-' and '_'")
    folder = folder or tours_folder()
    path = folder / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.json"))) or "none"
        # The file's name, not its path: the message is shown in the browser, which has no business knowing where
        # the server keeps its files.
        raise TourError(f"tour {name!r}: no file {path.name} (tours: {known})")
    return path


def available_tours(folder: Path | None = None, page_paths=None) -> tuple[list[Tour], list[str]]:
    """The valid tours of the folder, by name, and one message per file that is not valid."""
    folder = folder or tours_folder()
    tours, problems = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            tours.append(load_tour(path, page_paths))
        except TourError as error:
            problems.append(str(error))
    return tours, problems


# --- a running tour: plain data in the browser --------------------------------------------------------------------

def start(tour: Tour, language: str | None = None) -> dict:
    """The state of ``tour`` at its first step. ``language`` (the presenter's ``lang``) is kept on every step."""
    return {"name": tour.name, "title": tour.title, "loop": tour.loop, "step": 0,
            "language": language if language in LANGUAGES else None,
            "steps": [{"path": s.path, "seconds": s.seconds, "caption": s.caption} for s in tour.steps]}


def move(state: dict, by: int) -> dict | None:
    """The state ``by`` steps further (negative: back); None once a tour that does not loop has run out."""
    count = len(state["steps"])
    step = state["step"] + by
    if step >= count:
        if not state.get("loop"):
            return None
        step %= count
    return {**state, "step": max(step, 0)}


def step_href(state: dict) -> str:
    """The URL of the current step, with the presenter's language unless the step names one."""
    path = state["steps"][state["step"]]["path"]
    language = state.get("language")
    if not language:
        return path
    parts = urlsplit(path)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "lang" for key, _ in query):
        return path
    return parts.path + "?" + urlencode(query + [("lang", language)])


def main(argv: list[str] | None = None) -> int:
    """``python -m dashboard.tours [FILE …]``: check tour files (default: the tours folder) and say what is wrong."""
    import sys

    files = argv if argv is not None else sys.argv[1:]
    paths = [Path(f) for f in files] or sorted(tours_folder().glob("*.json"))
    failed = 0
    for path in paths:
        try:
            tour = load_tour(path)
            print(f"ok: {path}: {len(tour.steps)} steps, {tour.total_seconds:g} s")
        except TourError as error:
            failed += 1
            print(f"error: {error}")
    return 1 if failed else 0
