"""Two applications and everything that hangs off them, for the role matrix (tests/test_role_matrix.py).

A is 'frontend' (Otto's), B is 'partner' (Bob's). Each has an active certificate with its private
key stored, a staged certificate, a health-check run, channels of every kind with secrets (sealed
as the forms seal them), and a failed notice. The personas: Vera (viewer), Otto (owner of A), Bob
(owner of B), Ada (admin), Nadia (logged in, no role). Vera has a calendar feed token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.contrib.auth.models import Group, Permission, User

from certmgr.core.parse import parse_certificate_input
from certmgr.feeds.calendars import feed_token_digest
from certmgr.inventory.importer import Importer
from certmgr.models import (
    Application,
    Certificate,
    ExternalIdentity,
    HealthCheckRun,
    Notice,
    NotificationChannel,
    UserPreference,
)
from certmgr.notifications.channels import seal_secret
from certmgr.rotation import pending_keys
from tests import certs
from tests.secret_forms import Needles, key_forms, text_forms

Kind = NotificationChannel.Kind


@dataclass
class Side:
    """One application and its objects; ``pks`` maps what a route's <int:pk> names to an id."""

    app: Application
    owner: User
    cert: Certificate
    upload: bytes = b""  # a certificate not stored yet, for the upload forms
    pks: dict[str, int] = field(default_factory=dict)
    secrets: dict[str, Needles] = field(default_factory=dict)


@dataclass
class World:
    sides: dict[str, Side]
    users: dict[str, User]
    feed_token: str
    extra_objects: dict[type, object]

    def secrets(self) -> dict[str, Needles]:
        return {name: needles for side in self.sides.values() for name, needles in side.secrets.items()}


def store(app: Application, data: bytes, *, store_keys: bool, lifecycle: str = "active") -> Certificate:
    importer = Importer(app, store_keys=store_keys, actor_label="matrix", lifecycle=lifecycle)
    [result] = importer.save([("matrix", parse_certificate_input(data, None))])
    assert result.ok, result.error
    return result.certificate


def channels(side: Side, letter: str) -> None:
    """A channel of every kind; the webhook is the one routes name by <int:pk>."""
    app, made = side.app, {}
    token = {kind: secrets.token_urlsafe(24) for kind in Kind.values}
    hook_url = f"https://127.0.0.1:9/hooks/{token['webhook']}"
    slack_url = f"https://hooks.slack.com/services/T0{letter}/B0{letter}/{token['slack']}"
    teams_url = f"https://prod-00.westeurope.logic.azure.com/workflows/{token['teams']}/triggers/manual"
    hmac_secret = secrets.token_urlsafe(24)
    sealed = {
        Kind.WEBHOOK: seal_secret(Kind.WEBHOOK, url=hook_url, secret=hmac_secret),
        Kind.SLACK: seal_secret(Kind.SLACK, url=slack_url),
        Kind.TEAMS: seal_secret(Kind.TEAMS, url=teams_url),
        Kind.ALERT_NOTIFICATION: seal_secret(
            Kind.ALERT_NOTIFICATION, client_secret=token["alert_notification"]
        ),
    }
    options = {
        Kind.EMAIL: {"include_owners": True, "addresses": ["team@example.com"]},
        Kind.ALERT_NOTIFICATION: {
            "url": "https://127.0.0.1:9",
            "token_url": "https://127.0.0.1:9/oauth/token",
            "client_id": f"{letter}-ans-client",
        },
    }
    for kind in Kind.values:
        made[kind] = NotificationChannel.objects.create(
            application=app,
            kind=kind,
            name=f"{kind} {letter}",
            options=options.get(kind, {}),
            sealed_secret=sealed.get(kind),
        )
    side.pks["channel"] = made[Kind.WEBHOOK].pk
    for kind in (Kind.WEBHOOK, Kind.SLACK, Kind.TEAMS, Kind.ALERT_NOTIFICATION):
        side.secrets[f"{letter}'s {kind} secret"] = text_forms(token[kind])
    side.secrets[f"{letter}'s webhook signing secret"] = text_forms(hmac_secret)
    notice = Notice.objects.create(
        application=app,
        certificate=side.cert,
        channel=made[Kind.WEBHOOK],
        event=Notice.Event.THRESHOLD,
        threshold=30,
        state=Notice.State.FAILED,
        last_error="127.0.0.1 refused the connection",
    )
    side.pks["notice"] = notice.pk


def side(letter: str, owner: User, name: str, slug: str, key_kind: str, slot: int) -> Side:
    app = Application.objects.create(name=name, slug=slug, client_id=f"{slug}-client-id")
    app.owners.add(owner)
    cn = f"{slug}-app (P0000{slot})"
    item = certs.issue(cn, key_kind=key_kind, key_slot=slot, serial=slot * 16)
    cert = store(app, item.key_pem() + item.pem, store_keys=True)
    later = certs.EXPIRES + timedelta(days=90)
    staged = certs.issue(cn, key_kind=key_kind, key_slot=slot, serial=slot * 16 + 1, not_after=later)
    staged_cert = store(app, staged.pem, store_keys=False, lifecycle=Certificate.Lifecycle.STAGED)
    run = HealthCheckRun.objects.create(
        application=app, certificate=cert, trigger="manual", ok=True, steps=[]
    )
    pending = pending_keys.create(app, subject=f"CN={cn}", key_type="ec-p256", actor_label="the matrix")
    pks = {"certificate": cert.pk, "staged": staged_cert.pk, "run": run.pk, "pending": pending.pk}
    made = Side(app, owner, cert, pks=pks)
    made.upload = certs.issue(
        f"{slug}-new (P0000{slot})", key_kind=key_kind, key_slot=slot, serial=slot * 16 + 2
    ).pem
    made.secrets[f"{letter}'s private key"] = key_forms(item.key)
    channels(made, letter)
    return made


def build() -> World:
    user = User.objects.create_user
    vera = user("vera", "vera@example.com", "vera-pass-123")
    vera.user_permissions.add(Permission.objects.get(codename="view_application"))
    users = {
        "viewer": vera,
        "owner_a": user("otto", "otto@example.com", "otto-pass-123"),
        "owner_b": user("bob", "bob@example.com", "bob-pass-123"),
        "admin": User.objects.create_superuser("ada", "ada@example.com", "ada-pass-123"),
        "no_role": user("nadia", "nadia@example.com", "nadia-pass-123"),
    }
    sides = {
        "A": side("A", users["owner_a"], "Frontend", "frontend", "rsa", 701),
        "B": side("B", users["owner_b"], "Partner", "partner", "ec", 702),
    }
    feed_token = secrets.token_urlsafe(32)
    UserPreference.objects.create(user=vera, feed_token_sha256=feed_token_digest(feed_token))
    ian = user("ian", "ian@example.com")
    identity = ExternalIdentity.objects.create(
        user=ian,
        issuer="https://127.0.0.1:9",
        subject="user_uuid:ian",
        groups=["auditors"],
        last_login=certs.MID_LIFE,
    )
    extra = {
        Group: Group.objects.create(name="auditors"),
        User: users["owner_a"],
        ExternalIdentity: identity,
        Application: sides["A"].app,
        Certificate: sides["A"].cert,
        HealthCheckRun: HealthCheckRun.objects.get(pk=sides["A"].pks["run"]),
    }
    return World(sides, users, feed_token, extra)
