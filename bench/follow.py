"""A map page's redraw for a new live generation, in process: the ms a web worker spends per generation on each view
that screens follow (``overview._followed``: the map's data layers, legends and freshness badges, the KPI cards, the
ranking, the score).

    python bench/follow.py --database-url sqlite:///data/bench-city.sqlite [--generations 5] [--profile]

Copies the database (the app writes its first account into it), builds the app in live mode as a worker has it
(the 7-day window warmed; the other windows and the jobs left out), draws each view of the drill path once (what
carries over between generations is made then), then makes ``--generations`` generations as a live refresh does
when only the clock moved (the clock 2 s on, the tables and sparklines carried, so only the redraw is timed) and
redraws every view in each. Prints each view's median and the sum per generation. What the stream changes in a
generation (the sensor layers) is not written: a real refresh also makes the sensor states and the tables' sensor
rows again (bench/refresh.py times those).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VIEWS = ("", "?unit=440304", "?unit=440304001", "?unit=440304001001", "?unit=44030400100101",
         "?unit=44030400100101&building=B0064704")
"""The drill path of bench/capture.py at the city scale: the city, Futian, its first street, community, grid cell
and that cell's first building."""
LAYERS = ["base", "units", "buildings", "sensors", "alerts"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=f"sqlite:///{ROOT / 'data' / 'bench-city.sqlite'}")
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--views", default=",".join(VIEWS), help="comma-separated URL searches ('' is the city)")
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile of the redraws")
    parser.add_argument("--page", action="store_true",
                        help="time the whole page instead (what a screen opening the view asks in a new generation: "
                             "the page's layout made and written as Dash's JSON)")
    args = parser.parse_args(argv)

    import pandas as pd

    import app as app_module
    from dashboard import services
    from dashboard.settings import Settings
    from dashboard.view import parse_view
    from layers.city import with_clock

    source = args.database_url.removeprefix("sqlite:///")
    work = Path(tempfile.mkdtemp(prefix="citytwin-follow-bench-"))
    try:
        copy = work / "city.sqlite"
        shutil.copy(source, copy)
        app_module.warm_in_background = lambda service: None  # a worker's other windows: not what is timed here
        started = time.perf_counter()
        app_module.create_app(f"sqlite:///{copy}", jobs=False, settings=Settings(
            mode="live", snapshots=False, version_check_seconds=3600, escalation_minutes=0))
        service = services.get()
        print(f"loaded and warmed the 7-day window in {time.perf_counter() - started:.1f} s", flush=True)
        from dashboard.pages.overview import _followed  # registered with the app above

        views = args.views.split(",")
        draw = page if args.page else (lambda search: _followed(parse_view(search), LAYERS, "use"))
        for search in views:  # the first generation: what carries over is made here
            draw(search)
        times = {search: [] for search in views}
        profile = cProfile.Profile() if args.profile else None
        for _ in range(args.generations):
            old = service.loaded_generation()
            new = service._next_generation(old, with_clock(old.city, old.city.as_of + pd.Timedelta(seconds=2)))
            new.tables.update(old.tables), new.series.update(old.series), new.sums.update(old.sums)
            service._gen = new
            for search in views:
                if profile:
                    profile.enable()
                started = time.perf_counter()
                draw(search)
                times[search].append((time.perf_counter() - started) * 1000)
                if profile:
                    profile.disable()
        for search in views:
            print(f"{search or '(the city)':45s} median {statistics.median(times[search]):6.1f} ms, "
                  f"min {min(times[search]):6.1f} ms")
        print(f"summed per generation: {sum(statistics.median(t) for t in times.values()):.0f} ms")
        if profile:
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def page(search: str) -> str:
    """The map page of the view ``search`` as a screen opening it gets it: the layout (dashboard/pages/overview.py)
    written as the JSON Dash sends."""
    from urllib.parse import parse_qsl

    import plotly

    from dashboard.pages import overview

    params = dict(parse_qsl(search.lstrip("?")))
    return plotly.io.json.to_json_plotly(overview.layout(**params))


if __name__ == "__main__":
    sys.exit(main())
