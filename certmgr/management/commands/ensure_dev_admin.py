"""For ./dev run: an admin account for the local portal, its password kept in .local/."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the local 'admin' superuser once (development only) and print how to log in."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("ensure_dev_admin is for local development (DJANGO_DEBUG=1) only.")
        path = settings.LOCAL_DIR / "admin-password"
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "", password)
            settings.LOCAL_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(password + "\n")
        hint = f"the password in {path}" if path.exists() else "the password you set"
        self.stdout.write(f"Log in as 'admin' with {hint}.")
