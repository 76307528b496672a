"""The landscape's panels for the application page and the dashboard (template library
``landscape``, registered in the settings' TEMPLATES, so the pages need only an include line)."""

from __future__ import annotations

from django import template

from .drift import application_drift, landscape_drift

register = template.Library()


@register.inclusion_tag("certmgr/landscape/_application_drift.html", takes_context=True)
def application_bindings(context, app):
    # The application page has its certificates already (rows of certificate, state, days).
    rows = context.get("rows")
    certificates = [row[0] for row in rows] if rows is not None else None
    return {"drift": application_drift(app, certificates), "app": app}


@register.inclusion_tag("certmgr/landscape/_dashboard_drift.html")
def landscape_summary():
    return {"landscape": landscape_drift()}
