"""Notification channels (validated by the pages' own ChannelForm; secrets write-only), their test
notice (through the ledger, as the button), and the application's notices with their state."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from ...access.auditdiff import cut
from ...models import AuditEvent, NotificationChannel
from ...notifications import ledger
from ...notifications.audit import channel_changes, channel_created_detail, channel_facts, channel_title
from ...notifications.forms import ChannelForm
from ...notifications.summary import describe
from ..permissions import MAX_ID, not_found
from ..problems import Problem
from ..serializers import (
    ChannelCreateSerializer,
    ChannelSerializer,
    ChannelWriteSerializer,
    NoticeFilterSerializer,
    NoticeSerializer,
    TestNoticeSerializer,
)
from .base import ApiView, Pages, responses

TAGS = ["notifications"]
Kind = NotificationChannel.Kind
NO_SIGNING_KEY_GIVEN = "Give a signing secret of at least 16 characters: the API never answers a secret."  # noqa: S105 (a message)


def channel_data(row: NotificationChannel) -> dict:
    return ChannelSerializer(_facts(row)).data


def _facts(row: NotificationChannel) -> dict:
    described = describe(row)
    options = row.options or {}
    email, ans = row.kind == Kind.EMAIL, row.kind == Kind.ALERT_NOTIFICATION
    return {
        "id": row.pk,
        "name": row.name,
        "kind": row.kind,
        "enabled": row.enabled,
        "summary": described.summary,
        "problem": described.problem,
        "include_owners": options.get("include_owners", True) if email else None,
        "addresses": list(options.get("addresses") or []) if email else None,
        "url": options.get("url", "") if ans else None,
        "token_url": options.get("token_url", "") if ans else None,
        "client_id": options.get("client_id", "") if ans else None,
        "created_at": row.created_at,
    }


def form_data(form: ChannelForm, given: dict) -> dict:
    """What the form would have been posted with: its current values, then what the call gives."""
    data = {name: value for name, value in form.initial.items() if value is not None}
    for name, value in given.items():
        data[name] = "\n".join(value) if name == "addresses" else value
    return {name: value for name, value in data.items() if value is not False}


def saved_form(application, kind: str, given: dict, instance=None) -> ChannelForm:
    """The page's ChannelForm, bound to the call's fields; 400 with its reasons if it refuses them."""
    form = ChannelForm(data=None, application=application, kind=kind, instance=instance)
    if instance is None:
        form.initial.setdefault("enabled", True)
    bound = ChannelForm(form_data(form, given), application=application, kind=kind, instance=instance)
    if not bound.is_valid():
        errors = {field: [str(m) for m in messages] for field, messages in bound.errors.items()}
        first_field, first = next(iter(errors.items()))
        where = "" if first_field == "__all__" else f"{first_field}: "
        raise Problem(400, "invalid_request", f"{where}{first[0]}", errors=errors)
    return bound


class ChannelView(ApiView):
    def row(self, slug: str, id: int) -> NotificationChannel:
        app = self.access.application(slug)
        found = app.channels.filter(pk=id).first() if id <= MAX_ID else None
        if found is None:
            raise not_found(f"channel {id} of '{slug}'")
        return found

    def writable_row(self, slug: str, id: int) -> NotificationChannel:
        row = self.row(slug, id)
        self.audit_application = row.application
        self.access.require_write(row.application)
        return row

    def audit(self, row, detail: str, action=AuditEvent.Action.CHANNEL_CHANGED) -> None:
        AuditEvent.record(
            action, self.request, actor_label=self.access.label, application=row.application, detail=detail
        )


class Channels(ChannelView):
    @extend_schema(
        tags=TAGS,
        operation_id="channels_list",
        summary="The application's notification channels (never a secret or a webhook URL)",
        responses=responses({200: ChannelSerializer(many=True)}, 404),
    )
    def get(self, request, slug):
        app = self.access.application(slug)
        return Response([channel_data(row) for row in app.channels.all()])

    @extend_schema(
        tags=TAGS,
        operation_id="channels_create",
        summary="Add a channel (email, webhook, slack, teams, alert_notification)",
        request=ChannelCreateSerializer,
        responses=responses({201: OpenApiResponse(ChannelSerializer, description="Created.")}, 400, 404),
    )
    def post(self, request, slug):
        app = self.access.application(slug)
        self.audit_application = app
        self.access.require_write(app)
        given = self.body(ChannelWriteSerializer)
        if "kind" not in given:
            raise Problem(
                400, "invalid_request", "kind: This field is required.", errors={"kind": ["Required."]}
            )
        if given["kind"] == Kind.WEBHOOK and not given.get("secret"):
            raise Problem(
                400,
                "invalid_request",
                f"secret: {NO_SIGNING_KEY_GIVEN}",
                errors={"secret": [NO_SIGNING_KEY_GIVEN]},
            )
        form = saved_form(app, given.pop("kind"), given)
        with transaction.atomic():
            row = form.save()
            self.audit(row, channel_created_detail(row))
        return Response(channel_data(row), status=status.HTTP_201_CREATED)


class ChannelDetail(ChannelView):
    @extend_schema(
        tags=TAGS,
        operation_id="channels_retrieve",
        summary="One channel",
        responses=responses({200: ChannelSerializer}, 404),
    )
    def get(self, request, slug, id):
        return Response(channel_data(self.row(slug, id)))

    @extend_schema(
        tags=TAGS,
        operation_id="channels_update",
        summary="Change a channel; a secret left out keeps the stored one",
        request=ChannelWriteSerializer,
        responses=responses({200: ChannelSerializer}, 400, 404),
    )
    def patch(self, request, slug, id):
        row = self.writable_row(slug, id)
        given = self.body(ChannelWriteSerializer)
        if given.pop("kind", row.kind) != row.kind:
            raise Problem(
                400,
                "invalid_request",
                "kind: A channel's kind cannot change.",
                errors={"kind": ["Cannot change."]},
            )
        before = channel_facts(row)
        form = saved_form(row.application, row.kind, given, instance=row)
        with transaction.atomic():
            form.save()
            changes = channel_changes(row, before, channel_facts(row))
            if changes:
                self.audit(row, f"{channel_title(row)} changed: {', '.join(changes)}")
        return Response(channel_data(row))

    @extend_schema(
        tags=TAGS,
        operation_id="channels_delete",
        summary="Delete a channel (its notices go with it)",
        responses=responses({204: OpenApiResponse(description="Deleted.")}, 404),
    )
    def delete(self, request, slug, id):
        row = self.writable_row(slug, id)
        with transaction.atomic():
            self.audit(row, f"{channel_title(row)} deleted")
            row.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChannelTest(ChannelView):
    @extend_schema(
        tags=TAGS,
        operation_id="channels_test",
        summary="Send a test notice through the channel now, to each of its recipients",
        request=None,
        responses=responses(
            {200: TestNoticeSerializer},
            404,
            409,
            e409="The channel cannot send (test_refused): the reason says why.",
        ),
    )
    def post(self, request, slug, id):
        row = self.writable_row(slug, id)
        test = ledger.send_test(row)
        title = f"test notice through {channel_title(row)}"
        if test.refused:
            self.audit(
                row, f"{title}: not sent: {test.scrub(test.refused)}", AuditEvent.Action.CHANNEL_TESTED
            )
            raise Problem(409, "test_refused", f"The test notice was not sent: {test.refused}")
        failed = [
            {"recipient": notice.recipient, "error": test.scrub(notice.last_error), "retryable": retryable}
            for notice, retryable in test.failed
        ]
        outcome = ([f"sent to {len(test.sent)} of {test.recipients}"] if test.sent else []) + [
            f"failed{' for ' + f['recipient'] if f['recipient'] else ''}: {cut(f['error'], 160)}"
            for f in failed
        ]
        self.audit(row, f"{title}: {'; '.join(outcome)}", AuditEvent.Action.CHANNEL_TESTED)
        return Response({"recipients": test.recipients, "sent": len(test.sent), "failed": failed})


class Notices(ApiView):
    pagination_class = Pages

    @extend_schema(
        tags=TAGS,
        operation_id="notices_list",
        summary="The application's notices (the ledger), newest first, with their state",
        parameters=[NoticeFilterSerializer],
        responses=responses({200: NoticeSerializer(many=True)}, 400, 404),
    )
    def get(self, request, slug):
        app = self.access.application(slug)
        filters = self.query(NoticeFilterSerializer)
        notices = app.notices.select_related("channel")
        for name in ("state", "event"):
            if filters.get(name):
                notices = notices.filter(**{name: filters[name]})
        return self.page(notices, NoticeSerializer)
