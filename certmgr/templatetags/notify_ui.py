"""Template helpers of the notification UI: the application page's panel counts, mute dates."""

from django import template
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from certmgr.models import Application

from ..notifications.models import Notice, NotificationChannel

register = template.Library()


def _count(queryset) -> Coalesce:
    counted = queryset.order_by().values("application").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


@register.simple_tag
def notify_counts(app) -> dict:
    """Channels, enabled channels and failed notices of ``app``, in one query."""
    channels = NotificationChannel.objects.filter(application=OuterRef("pk"))
    failed = Notice.objects.failed().filter(application=OuterRef("pk"))
    row = (
        Application.objects.filter(pk=app.pk)
        .annotate(
            channel_count=_count(channels),
            enabled_count=_count(channels.filter(enabled=True)),
            failed_count=_count(failed),
        )
        .values("channel_count", "enabled_count", "failed_count")
        .first()
    )
    return {
        "channels": row["channel_count"] if row else 0,
        "enabled": row["enabled_count"] if row else 0,
        "failed": row["failed_count"] if row else 0,
    }


@register.filter
def is_future(moment) -> bool:
    return bool(moment) and moment > timezone.now()
