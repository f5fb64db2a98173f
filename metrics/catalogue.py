"""The indicator catalogue, generated from the registry: ``docs/indicators.md`` is written by

    .venv/bin/python -m metrics.catalogue --write

and a test checks that the committed file matches the registry, so nothing is listed by hand twice.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metrics.registry import INDICATORS, TOPICS
from metrics.spec import SURGE, Indicator

CATALOGUE_FILE = Path(__file__).resolve().parent.parent / "docs" / "indicators.md"
DIRECTIONS = {"up": "higher is better", "down": "lower is better", "none": "no direction (a volume to know)"}


def thresholds_text(indicator: Indicator) -> str:
    if indicator.judged_by == "surge":
        return ("by its rise against the previous window, z = (now − before) ÷ √(before + (0.1 × before)²): "
                + SURGE.describe())
    if indicator.thresholds is None:
        return "none (shown as information)"
    return indicator.thresholds.describe()


def markdown() -> str:
    lines = [
        "# City vital signs: the indicator catalogue",
        "",
        "Generated from `metrics/registry.py` by `python -m metrics.catalogue --write`; do not edit by hand.",
        f"{len(INDICATORS)} indicators in {len({i.topic for i in INDICATORS.values()})} topics. Every indicator is "
        "computed for every level (city, district, street, community, grid cell) and window (today, 7 days, "
        "30 days); rates and means are recomputed from their numerators and denominators at each level.",
        "",
    ]
    for topic, (title, title_zh) in TOPICS.items():
        members = [i for i in INDICATORS.values() if i.topic == topic]
        if not members:
            continue
        lines += [f"## {title} · {title_zh}", "",
                  "| id | name | unit | formula | thresholds | direction | weight in score | owner | update |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for i in members:
            judged = i.thresholds is not None or i.judged_by == "surge"
            cells = [f"`{i.id}`", f"{i.name} · {i.name_zh}", i.unit, i.description, thresholds_text(i),
                     DIRECTIONS[i.good_direction], f"{i.weight:g}" if judged else "—", i.owner, i.frequency]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"write {CATALOGUE_FILE.name} instead of printing")
    args = parser.parse_args(argv)
    if args.write:
        CATALOGUE_FILE.parent.mkdir(parents=True, exist_ok=True)
        CATALOGUE_FILE.write_text(markdown(), encoding="utf-8")
        print(f"wrote {CATALOGUE_FILE}")
    else:
        sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
