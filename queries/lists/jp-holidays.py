#!/usr/bin/env python3
"""Writes jp-holidays.csv: Japanese public holidays 2000-2030, computed from the Act on National
Holidays (国民の祝日に関する法律) as amended, including the one-off dates of 2019-2021.

The equinox days use the usual approximation (valid 1980-2099); the Cabinet Office fixes them each
February for the following year, so years after the latest announcement are forecasts. The dates
were checked for 2000-2030 against the holiday-jp project's holidays.yml (which its tests keep equal
to the Cabinet Office's syukujitsu.csv where published): no date differs. Names follow the Cabinet
Office's CSV, which calls substitute and in-between days 休日.

Usage: python3 jp-holidays.py > jp-holidays.csv
"""
import datetime as dt

FIRST, LAST = 2000, 2030


def nth_monday(y, m, n):
    d = dt.date(y, m, 1)
    d += dt.timedelta(days=(0 - d.weekday()) % 7)
    return d + dt.timedelta(weeks=n - 1)


def equinox(y, base):
    return int(base + 0.242194 * (y - 1980) - (y - 1980) // 4)


def statutory(y):
    """Holidays named by the law for year y (before substitute and citizens' holidays)."""
    h = {dt.date(y, 1, 1): "元日", nth_monday(y, 1, 2): "成人の日", dt.date(y, 2, 11): "建国記念の日"}
    if y >= 2020:
        h[dt.date(y, 2, 23)] = "天皇誕生日"
    elif y <= 2018:
        h[dt.date(y, 12, 23)] = "天皇誕生日"
    h[dt.date(y, 3, equinox(y, 20.8431))] = "春分の日"
    h[dt.date(y, 4, 29)] = "昭和の日" if y >= 2007 else "みどりの日"
    h[dt.date(y, 5, 3)] = "憲法記念日"
    if y >= 2007:
        h[dt.date(y, 5, 4)] = "みどりの日"
    h[dt.date(y, 5, 5)] = "こどもの日"
    marine = {2020: dt.date(2020, 7, 23), 2021: dt.date(2021, 7, 22)}
    h[marine.get(y, dt.date(y, 7, 20) if y <= 2002 else nth_monday(y, 7, 3))] = "海の日"
    if y >= 2016:
        mountain = {2020: dt.date(2020, 8, 10), 2021: dt.date(2021, 8, 8)}
        h[mountain.get(y, dt.date(y, 8, 11))] = "山の日"
    h[dt.date(y, 9, 15) if y <= 2002 else nth_monday(y, 9, 3)] = "敬老の日"
    h[dt.date(y, 9, equinox(y, 23.2488))] = "秋分の日"
    sports = {2020: dt.date(2020, 7, 24), 2021: dt.date(2021, 7, 23)}
    h[sports.get(y, nth_monday(y, 10, 2))] = "スポーツの日" if y >= 2020 else "体育の日"
    h[dt.date(y, 11, 3)] = "文化の日"
    h[dt.date(y, 11, 23)] = "勤労感謝の日"
    if y == 2019:
        h[dt.date(2019, 5, 1)] = "休日（祝日扱い）"
        h[dt.date(2019, 10, 22)] = "休日（祝日扱い）"
    return h


def year(y):
    h = statutory(y)
    # A weekday between two holidays is a holiday (国民の休日).
    for d in sorted(h):
        nxt = d + dt.timedelta(days=2)
        mid = d + dt.timedelta(days=1)
        if nxt in h and mid not in h and mid.weekday() != 6:
            h[mid] = "休日"
    # A holiday on a Sunday moves to the next day that is not a holiday (to Monday before 2007).
    for d in sorted(h):
        if d.weekday() == 6 and h[d] != "休日":
            sub = d + dt.timedelta(days=1)
            while y >= 2007 and sub in h:
                sub += dt.timedelta(days=1)
            h.setdefault(sub, "休日")
    return h


print("date,name")
for y in range(FIRST, LAST + 1):
    for d, name in sorted(year(y).items()):
        print(f"{d.isoformat()},{name}")
