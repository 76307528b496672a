"""An application chosen by typing: a slug, a name, a client id or a part of one.

A select list with every application does not scale to a fleet (1,200 options); a picker does.
The server resolves what was typed, so the picker works without JavaScript: an exact slug, or
a text that matches one application, chooses it; a text that matches several offers them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Case, IntegerField, Q, Value, When

from ..models import Application

LIMIT = 10  # suggestions shown, and offered when a text matches several applications


def matching(text: str) -> Q:
    text = text.strip()
    return Q(name__icontains=text) | Q(slug__icontains=text) | Q(client_id__icontains=text)


def suggestions(scope, text: str, limit: int = LIMIT) -> tuple[list[Application], bool]:
    """Up to ``limit`` applications of ``scope`` for ``text`` (exact slug first), and whether there are more."""
    text = text.strip()
    rows = scope.filter(matching(text)) if text else scope
    rows = rows.annotate(
        exact=Case(When(slug=text, then=Value(0)), default=Value(1), output_field=IntegerField())
    ).order_by("exact", "name", "pk")
    found = list(rows[: limit + 1])
    return found[:limit], len(found) > limit


@dataclass(frozen=True)
class Pick:
    text: str
    application: Application | None = None
    choices: list[Application] = field(default_factory=list)
    more: bool = False

    @property
    def ambiguous(self) -> bool:
        return self.application is None and bool(self.choices)

    @property
    def unknown(self) -> bool:
        return bool(self.text) and self.application is None and not self.choices

    def matches(self, scope):
        """Every application of ``scope`` the text matches, to filter a list by: the choices
        themselves when they are all of them (the text is not searched for a second time)."""
        if not self.more:
            return [app.pk for app in self.choices]
        return scope.filter(matching(self.text))


def pick(scope, text: str) -> Pick:
    """What ``text`` chooses among ``scope``: one application, several to choose from, or none.

    Digits also name an application by its id (what the upload form posted before the picker).
    """
    text = text.strip()
    if not text:
        return Pick(text)
    found, more = suggestions(scope, text)
    if found and found[0].slug == text:
        return Pick(text, found[0])
    by_id = scope.filter(pk=int(text)).first() if text.isdigit() and len(text) < 19 else None
    if by_id is not None:
        return Pick(text, by_id)
    if len(found) == 1 and not more:
        return Pick(text, found[0])
    return Pick(text, None, found, more)
