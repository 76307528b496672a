from django import template
from django.utils.html import format_html

from certmgr.core.facts import format_fingerprint

register = template.Library()

_LABELS = {
    "not_yet_valid": "Not yet valid",
    "valid": "Valid",
    "expiring": "Expiring",
    "expired": "Expired",
}


@register.simple_tag
def state_badge(state, days=None):
    """A state pill whose meaning does not rely on colour alone."""
    if state is None:
        return format_html('<span class="badge badge-none">{}</span>', "No active certificate")
    text = _LABELS.get(str(state), str(state))
    if days is not None:
        text = f"{text} · {_days(days)}"
    return format_html('<span class="badge badge-{}">{}</span>', state, text)


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
