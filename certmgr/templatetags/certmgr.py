import json
from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

from certmgr.core.facts import format_fingerprint
from certmgr.lib.listing import page_numbers
from certmgr.lib.words import counted, relative

register = template.Library()

_LABELS = {
    "not_yet_valid": "Not yet valid",
    "valid": "Valid",
    "expiring": "Expiring",
    "expired": "Expired",
}


@register.simple_tag
def state_badge(state, days=None, lifecycle=None):
    """A state pill whose meaning does not rely on colour alone. A retired certificate is no longer
    in use: it gets no expiry warning (``lifecycle``: the certificate's)."""
    if lifecycle == "retired":
        return format_html('<span class="badge badge-none">{}</span>', "Retired · no longer in use")
    if state is None:
        return format_html('<span class="badge badge-none">{}</span>', "No active certificate")
    text = _LABELS.get(str(state), str(state))
    if days is not None:
        text = f"{text} · {_days(days)}"
    return format_html('<span class="badge badge-{}">{}</span>', state, text)


@register.simple_tag
def health_badge(run):
    """The last health-check result as a pill: words first, colour second."""
    if run is None:
        return format_html('<span class="badge badge-none">{}</span>', "not checked yet")
    if run.ok:
        return format_html('<span class="badge badge-valid">{}</span>', "healthy")
    return format_html(
        '<span class="badge badge-expired" title="{}">failed: {} ({})</span>',
        run.diagnosis,
        run.failed_step,
        run.code,
    )


@register.filter
def unix_utc(value):
    if not isinstance(value, int | float):
        return value
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") + f" ({value})"


@register.filter
def claim(value):
    return value if isinstance(value, str) else json.dumps(value)


@register.filter
def indent(text, pad: str = "   ") -> str:
    """Every line of ``text`` indented (commands inside a plain-text list)."""
    return "\n".join(pad + line for line in str(text).splitlines())


@register.filter
def days_text(days):
    return _days(days)


def _days(days: int) -> str:
    if days < 0:
        return f"{-days} day{'s' if days != -1 else ''} ago"
    return f"{days} day{'s' if days != 1 else ''} left"


@register.filter
def colons(hex_text: str) -> str:
    return format_fingerprint(hex_text)


@register.inclusion_tag("certmgr/rotation/_panel.html", takes_context=True)
def rotation_panel(context, app):
    """The application page's rotation panel: the certificate in use and the staged candidates side
    by side, each with its latest health check and a button to check it."""
    from ..core.tokenflow import STEPS
    from ..rotation import plan

    the_plan = plan.plan(app)
    return {
        "app": app,
        "plan": the_plan,
        "pending_count": 0 if the_plan else app.pending_keys.live().count(),
        "can_manage": context.get("can_manage"),
        "health_steps": STEPS,
        "csrf_token": context.get("csrf_token"),
    }


# --- times, counts, list pages ------------------------------------------------------------------


@register.simple_tag
def reltime(moment, exact_format: str = "Y-m-d H:i"):
    """A moment as "in 12 days", its exact UTC time on hover and for machines."""
    if not moment:
        return "—"
    return format_html(
        '<time datetime="{}" title="{} UTC">{}</time>',
        moment.isoformat(),
        _exact(moment, exact_format),
        relative(moment, timezone.now()),
    )


def _exact(moment, exact_format: str) -> str:
    """The two formats the pages use, without Django's date formatter (a list page calls this for
    every row: 0.1 ms a call there); any other through it."""
    m = moment
    if exact_format == "Y-m-d H:i":
        return f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour:02d}:{m.minute:02d}"
    if exact_format == "Y-m-d H:i:s":
        return f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    from django.utils.dateformat import format as date_format

    return date_format(moment, exact_format)


@register.filter
def plural(count, noun: str) -> str:
    return counted(int(count or 0), noun)


@register.filter
def noun(count, noun: str) -> str:
    """The noun alone, for "<strong>2</strong> certificates"."""
    return counted(int(count or 0), noun).split(" ", 1)[1]


@register.simple_tag
def sort_th(listing, key: str, extra_class: str = ""):
    """A column header that sorts the list by this column (again: the other way round)."""
    href, current = listing.header_link(key)
    label = listing.sorting.columns[key].label
    mark = {"ascending": "▲", "descending": "▼"}.get(current, "")
    return format_html(
        '<th scope="col"{}{}><a class="sort" href="{}">{}<span class="sort-mark" aria-hidden="true">{}</span></a></th>',
        format_html(' aria-sort="{}"', current) if current else "",
        format_html(' class="{}"', extra_class) if extra_class else "",
        href,
        label,
        mark,
    )


@register.simple_tag
def page_links(page, listing=None, querystring: str = "") -> dict:
    """Links of a numbered pager: previous, first, …, neighbours, …, last, next."""

    def href(number: int) -> str:
        if listing is not None:
            return listing.link(page=str(number) if number > 1 else "")
        return "?" + (f"{querystring}&" if querystring else "") + f"page={number}"

    numbers = page_numbers(page.number, page.paginator.num_pages)
    return {
        "numbers": [
            {"gap": n is None, "number": n, "href": href(n) if n else "", "current": n == page.number}
            for n in numbers
        ],
        "previous": href(page.previous_page_number()) if page.has_previous() else "",
        "next": href(page.next_page_number()) if page.has_next() else "",
    }
