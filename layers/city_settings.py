"""The city's own settings: its name, time zone, public-holiday calendar and languages (issue 15 item 3).

They are stored with the city (the store's ``city_settings`` table, key → text), set when it is imported
(``python -m layers.importer --timezone Europe/Paris --holidays none …``) and read when a process opens the city:
the dashboard (:func:`dashboard.services.configure`) and the importer :func:`activate` them, and every clock,
window, working-day count and file name then uses :func:`timezone` and :func:`holiday_calendar` instead of a fixed
Asia/Shanghai. A city stored before settings existed (or without them) gets :data:`DEFAULT`: Shenzhen's, the
sample city's, so nothing changes for it. ``layers.specs.CITY_TIMEZONE`` stays as that default.

A process serves one city, so the settings in force are process-wide, like the city itself.

>>> settings = checked({"timezone": "Europe/Paris", "holidays": "none", "languages": "en"})
>>> settings.timezone, settings.holidays, settings.languages
('Europe/Paris', 'none', ('en',))
>>> checked({"timezone": "Mars/Olympus"})
Traceback (most recent call last):
...
ValueError: timezone 'Mars/Olympus' is not an IANA time zone (e.g. Asia/Shanghai, Europe/Paris, America/New_York)
"""
from __future__ import annotations

import contextlib
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace

from layers.specs import CITY_TIMEZONE

# The public-holiday calendars metrics.workdays knows: CN, mainland China's (published by the State Council); none,
# weekends only (a city whose calendar is not there yet: its working-day figures then count its holidays as work).
HOLIDAY_CALENDARS = ("CN", "none")
LANGUAGES = ("en", "zh")


@dataclass(frozen=True)
class CitySettings:
    name: str = "Shenzhen"
    timezone: str = CITY_TIMEZONE
    holidays: str = "CN"
    languages: tuple[str, ...] = LANGUAGES

    def as_rows(self) -> dict[str, str]:
        """The settings as the store keeps them: key → text."""
        rows = asdict(self)
        rows["languages"] = ",".join(self.languages)
        return rows


DEFAULT = CitySettings()


def checked(values: Mapping[str, str], base: CitySettings = DEFAULT) -> CitySettings:
    """``base`` with the given settings (text, as stored or typed), each checked: ValueError names a bad one."""
    given = {key: value for key, value in values.items() if value is not None}
    unknown = set(given) - set(asdict(base))
    if unknown:
        raise ValueError(f"unknown city setting(s) {', '.join(sorted(unknown))}; the settings are "
                         f"{', '.join(asdict(base))}")
    if "timezone" in given:
        try:
            zoneinfo.ZoneInfo(given["timezone"])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {given['timezone']!r} is not an IANA time zone (e.g. Asia/Shanghai, "
                             "Europe/Paris, America/New_York)") from None
    if "holidays" in given and given["holidays"] not in HOLIDAY_CALENDARS:
        raise ValueError(f"holidays {given['holidays']!r}: the calendars are {', '.join(HOLIDAY_CALENDARS)}")
    if "languages" in given:
        languages = given["languages"]
        languages = tuple(part.strip() for part in languages.split(",") if part.strip()) \
            if isinstance(languages, str) else tuple(languages)
        if not languages or set(languages) - set(LANGUAGES):
            raise ValueError(f"languages {given['languages']!r}: a comma list of {', '.join(LANGUAGES)}")
        given["languages"] = languages
    if "name" in given and not str(given["name"]).strip():
        raise ValueError("name: the city's name is empty")
    return replace(base, **given)


_active = DEFAULT


def activate(settings: CitySettings) -> None:
    """Make ``settings`` the ones in force in this process (the city it serves)."""
    global _active
    _active = settings


def active() -> CitySettings:
    return _active


@contextlib.contextmanager
def activated(settings: CitySettings) -> Iterator[CitySettings]:
    """``settings`` in force for the block (an import reads a city's times in that city's zone), then as before."""
    before = _active
    activate(settings)
    try:
        yield settings
    finally:
        activate(before)


def timezone() -> str:
    """The IANA time zone of the city in force: every local time (clocks, windows, file names) is in it."""
    return _active.timezone


def holiday_calendar() -> str:
    return _active.holidays
