"""Per-user seasonal baselines and the networks each user signs in from.

A user's hour is compared with the same hour of the week over the last four
weeks, and the hour either side of it (people start a little earlier or
later): twelve samples. The band's centre is their median and its width the
median absolute deviation, scaled by 1.4826 so it estimates a standard
deviation for normal data; both ignore the odd holiday or all-nighter that a
mean and standard deviation would be dragged by. Hours before the user's
first activity are not samples (a new user has no baseline yet, and an
anomaly rule stays INSUFFICIENT_DATA for them until ``min_weeks`` have passed).

A floor of 1 on the deviation keeps a perfectly regular user (MAD 0) from
alarming on one extra cell.

Networks: a sign-in from an IPv4 /24 or IPv6 /56 the user has not signed in
from in the last 90 days is new; the first sign-in ever is not (everything
is new then). Addresses within one network are treated as one so that a
DHCP lease change is not an alarm.
"""

from __future__ import annotations

import ipaddress
import statistics
from collections import defaultdict
from dataclasses import dataclass

__all__ = ["Band", "KnownNetworks", "SeasonalBaseline", "address_key", "network_of"]

HOUR = 3600
WEEK_HOURS = 168
MAD_SCALE = 1.4826
MIN_SPREAD = 1.0


@dataclass(frozen=True, slots=True)
class Band:
    """The baseline for one user-hour: its centre, spread and how much history it had."""

    median: float
    spread: float
    samples: int
    weeks: int

    def upper(self, width: float) -> float:
        return self.median + width * self.spread


class SeasonalBaseline:
    """Hourly totals of one signal per user, and the band for any hour of the week."""

    def __init__(self, weeks: int = 4, neighbours: int = 1) -> None:
        self.weeks = weeks
        self.neighbours = neighbours
        self._hours: dict[str, dict[int, float]] = defaultdict(dict)
        self._first: dict[str, int] = {}
        self._dirty: set[tuple[str, int]] = set()

    def add(self, user: str, t: float, value: float) -> None:
        hour = int(t // HOUR)
        totals = self._hours[user]
        totals[hour] = totals.get(hour, 0.0) + value
        self._dirty.add((user, hour))
        first = self._first.get(user)
        if first is None or hour < first:
            self._first[user] = hour

    def seen(self, user: str, since: float) -> None:
        """Note that ``user`` was active from ``since`` (history loaded from elsewhere)."""
        hour = int(since // HOUR)
        if user not in self._first or hour < self._first[user]:
            self._first[user] = hour

    def band(self, user: str, t: float) -> Band | None:
        """The band for the hour holding ``t``; None when the user has no history yet."""
        first = self._first.get(user)
        if first is None:
            return None
        hour = int(t // HOUR)
        totals = self._hours.get(user, {})
        samples: list[float] = []
        weeks = 0
        for w in range(1, self.weeks + 1):
            centre = hour - w * WEEK_HOURS
            if centre < first:
                break
            weeks = w
            for d in range(-self.neighbours, self.neighbours + 1):
                h = centre + d
                if h >= first:
                    samples.append(totals.get(h, 0.0))
        if not samples:
            return Band(0.0, MIN_SPREAD, 0, 0)
        median = statistics.median(samples)
        mad = statistics.median(abs(s - median) for s in samples)
        return Band(median, max(MIN_SPREAD, MAD_SCALE * mad), len(samples), weeks)

    def hours(self, since_hour: int) -> list[tuple[str, int, float]]:
        """Every (user, hour, total) from ``since_hour`` on (what the monitor persists)."""
        return [
            (user, hour, value)
            for user, totals in self._hours.items()
            for hour, value in totals.items()
            if hour >= since_hour
        ]

    def changed(self) -> list[tuple[str, int, float]]:
        """The (user, hour, total) rows added to since the last call (to persist)."""
        dirty, self._dirty = self._dirty, set()
        return [(u, h, self._hours[u][h]) for u, h in dirty if h in self._hours.get(u, {})]

    def load(self, user: str, hour: int, value: float) -> None:
        """Set one stored hour (history read back at start)."""
        self._hours[user][hour] = value
        if user not in self._first or hour < self._first[user]:
            self._first[user] = hour

    def prune(self, now: float) -> None:
        """Forget hours older than the baseline can use."""
        oldest = int(now // HOUR) - (self.weeks * WEEK_HOURS + self.neighbours + 1)
        for totals in self._hours.values():
            for h in [h for h in totals if h < oldest]:
                del totals[h]


def network_of(ip: str) -> str | None:
    """The network an address is counted in (/24 or /56); None when it is not an address."""
    try:
        addr = ipaddress.ip_address(ip.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = 24 if addr.version == 4 else 56
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def address_key(ip: str) -> str:
    """What per-address rules count by: the IPv4 address, or the IPv6 /64.

    One host usually holds a whole IPv6 /64; counting exact IPv6 addresses would
    let a sprayer rotate through it and never reach a threshold.
    """
    try:
        addr = ipaddress.ip_address(ip.strip().split("%", 1)[0])
    except ValueError:
        return ip[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


class KnownNetworks:
    """The networks each user signed in from, and when last."""

    def __init__(self, keep_days: int = 90) -> None:
        self.keep = keep_days * 86400
        self._seen: dict[str, dict[str, float]] = defaultdict(dict)
        self._dirty: set[tuple[str, str]] = set()

    def check(self, user: str, ip: str, t: float) -> bool:
        """Record a sign-in; True when it came from a network new for an established user."""
        net = network_of(ip)
        if net is None:
            return False
        seen = self._seen[user]
        last = seen.get(net)
        new = bool(seen) and (last is None or t - last > self.keep)
        seen[net] = max(t, last or t)
        self._dirty.add((user, net))
        return new

    def changed(self) -> list[tuple[str, str, float]]:
        """The (user, network, last seen) rows changed since the last call (to persist)."""
        dirty, self._dirty = self._dirty, set()
        return [(u, n, self._seen[u][n]) for u, n in dirty if n in self._seen.get(u, {})]

    def load(self, user: str, network: str, last_seen: float) -> None:
        self._seen[user][network] = last_seen

    def prune(self, now: float) -> None:
        for seen in self._seen.values():
            for net in [n for n, at in seen.items() if now - at > self.keep]:
                del seen[net]
