"""What the list pages share: a whitelisted ``?sort=``, numbered pages, CSV export.

Sorting is by named columns only (a name not in the list falls back to the default), always
ending in the primary key, so rows with equal values keep one order from page to page.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import F
from django.http import QueryDict, StreamingHttpResponse
from django.utils import timezone

from .viewkit import param

# Spreadsheets run a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    """A sortable column: its label and the fields it orders by (nullable ones put last)."""

    label: str
    fields: tuple  # field names, or expressions such as Lower("name")
    nulls_last: bool = False
    descending_first: bool = False  # a header link's first click: newest, most, latest first

    def order(self, descending: bool) -> list:
        """The first field may be nullable (nulls last both ways); the others are tie-breakers."""
        out = []
        for i, field in enumerate(self.fields):
            how = {"nulls_last": True} if self.nulls_last and i == 0 else {}
            expression = F(field) if isinstance(field, str) else field
            out.append(expression.desc(**how) if descending else expression.asc(**how))
        return out


@dataclass(frozen=True)
class Sorting:
    columns: dict[str, Column]
    default: str

    def parse(self, text: str) -> tuple[str, bool]:
        """(column key, descending) for ``?sort=key`` or ``?sort=-key``; unknown keys: the default."""
        chosen = text if text.removeprefix("-") in self.columns else self.default
        return chosen.removeprefix("-"), chosen.startswith("-")

    def order_by(self, key: str, descending: bool) -> list:
        pk = F("pk").desc() if descending else F("pk").asc()
        return [*self.columns[key].order(descending), pk]


@dataclass(frozen=True)
class Listing:
    """The state of one list page: the chosen sort and the query string to keep in every link."""

    sorting: Sorting
    key: str
    descending: bool
    query: QueryDict  # the request's parameters without page and sort

    @classmethod
    def of(cls, request, sorting: Sorting, keep: Iterable[str]) -> Listing:
        key, descending = sorting.parse(request.GET.get("sort", sorting.default))
        query = QueryDict(mutable=True)
        for name in keep:
            value = param(request, name).strip()
            if value:
                query[name] = value
        return cls(sorting, key, descending, query)

    @property
    def order_by(self) -> list:
        return self.sorting.order_by(self.key, self.descending)

    @property
    def sort_param(self) -> str:
        return ("-" if self.descending else "") + self.key

    def link(self, **changes: str) -> str:
        """``?…`` with the filters, the sort and ``changes`` (an empty value drops a parameter)."""
        params = self.query.copy()
        if self.sort_param != self.sorting.default:
            params["sort"] = self.sort_param
        for name, value in changes.items():
            if value:
                params[name] = value
            else:
                params.pop(name, None)
        return "?" + params.urlencode() if params else "?"

    @property
    def csv_link(self) -> str:
        """This list, filtered and sorted as shown, as a CSV download."""
        return self.link(export="csv")

    @property
    def sorted_otherwise(self) -> bool:
        return self.sort_param != self.sorting.default

    def header_link(self, key: str) -> tuple[str, str | None]:
        """The link of a column header, and its aria-sort value if the list is sorted by it."""
        column = self.sorting.columns[key]
        if key == self.key:
            flipped = key if self.descending else "-" + key
            return self.link(sort=flipped, page=""), "descending" if self.descending else "ascending"
        first = "-" + key if column.descending_first else key
        return self.link(sort=first, page=""), None


def paginate(request, rows, per_page: int) -> Page:
    return Paginator(rows, per_page).get_page(request.GET.get("page"))


def page_numbers(number: int, last: int, around: int = 2) -> list[int | None]:
    """First, last and ``around`` neighbours of ``number``; None where pages are left out."""
    wanted = {1, last, *range(number - around, number + around + 1)}
    shown = sorted(n for n in wanted if 1 <= n <= last)
    out: list[int | None] = []
    for n in shown:
        if out and n - out[-1] == 2:
            out.append(n - 1)  # a gap of one page is shown as that page, not as "…"
        elif out and n - out[-1] > 2:
            out.append(None)
        out.append(n)
    return out


# --- CSV export -----------------------------------------------------------------------------


def safe_cell(value) -> str:
    """A cell as text a spreadsheet shows instead of running: formulas get a leading quote."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, int | float):  # a negative number is a number, not a formula
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence]) -> StreamingHttpResponse:
    """A streamed CSV download: rows are written as the database yields them, never all in memory."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([safe_cell(cell) for cell in row])

    stamp = timezone.now().strftime("%Y%m%dT%H%MZ")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response
