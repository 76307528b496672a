"""python manage.py api_token --user USERNAME [--app SLUG ...] [--write] [--expires-days N] [--json]
python manage.py api_token --revoke cmp_1a2b3c4d

Makes an API token for a user and prints it once: the last line of stdout, or with --json one
JSON object whose "token" it is. Only its hash is kept. --revoke ends a token by its prefix.
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from certmgr.access.roles import VIEWER, role_of
from certmgr.api import tokens
from certmgr.api.models import MAX_EXPIRY_DAYS, ApiToken
from certmgr.models import Application

ACTOR = "manage.py api_token"


class Command(BaseCommand):
    help = "Make an API token for a user (printed once), or revoke one."

    def add_arguments(self, parser):
        parser.add_argument("--user", help="The user the token acts for.")
        parser.add_argument(
            "--app",
            action="append",
            default=[],
            metavar="SLUG",
            help="Limit it to this application (repeatable).",
        )
        parser.add_argument("--write", action="store_true", help="May change what the user may change.")
        parser.add_argument("--expires-days", type=int, default=90, help="Days until it expires (1 to 366).")
        parser.add_argument("--name", default="made with manage.py api_token", help="What it is for.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument("--revoke", metavar="PREFIX", help="Revoke the token with this prefix (cmp_…).")

    def handle(self, *args, **options):
        if options["revoke"]:
            return self._revoke(options["revoke"])
        if not options["user"]:
            raise CommandError("Name the user with --user (or revoke a token with --revoke PREFIX).")
        user = self._user(options["user"])
        if not 1 <= options["expires_days"] <= MAX_EXPIRY_DAYS:
            raise CommandError(f"--expires-days must be between 1 and {MAX_EXPIRY_DAYS}.")
        apps = self._applications(options["app"])
        row, token = tokens.create(
            user,
            name=options["name"][:100],
            applications=apps,
            write=options["write"],
            expires_days=options["expires_days"],
            actor_label=ACTOR,
        )
        if options["write"] and role_of(user) == VIEWER:
            self.stderr.write(f"{user.get_username()} is a viewer: the token can change nothing.")
        if options["json"]:
            self.stdout.write(json.dumps(self._as_json(row, token)))
        else:
            self.stdout.write(f"{tokens.describe(row)}; for {user.get_username()}. Shown only this once:")
            self.stdout.write(token)

    def _user(self, username: str):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        if role_of(user) is None:
            raise CommandError(
                f"{username} has no role in the portal (inactive, no group or permission, or an IAS "
                "account whose roles lapsed): a token could do nothing."
            )
        return user

    def _applications(self, slugs: list[str]) -> list[Application]:
        apps = list(Application.objects.filter(slug__in=slugs))
        unknown = sorted(set(slugs) - {app.slug for app in apps})
        if unknown:
            raise CommandError(f"No application {', '.join(map(repr, unknown))}.")
        return apps

    def _as_json(self, row: ApiToken, token: str) -> dict:
        return {
            "token": token,
            "prefix": row.prefix,
            "user": row.user.get_username(),
            "applications": None if row.all_applications else sorted(a.slug for a in row.applications.all()),
            "write": row.write,
            "expires_at": row.expires_at.isoformat(),
        }

    def _revoke(self, prefix: str) -> None:
        row = ApiToken.objects.select_related("user").filter(prefix=prefix.rstrip("…. ")).first()
        if row is None:
            raise CommandError(f"No API token {prefix!r}.")
        if tokens.revoke(row, actor_label=ACTOR):
            self.stdout.write(f"Revoked {row.prefix}… '{row.name}' of {row.user.get_username()}.")
        else:
            self.stdout.write(f"{row.prefix}… was already revoked.")
