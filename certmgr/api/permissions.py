"""What an API call may see and change: never more than its user's role, within its token's scope.

- Every call needs a role (``access.roles.role_of``: an IAS user's roles lapse as for the pages).
- A token listing applications sees only those: anything else is 404, as if it did not exist.
- Changes need a write token (or the session), and a user who manages the application
  (``Application.is_managed_by``: owners of it, admins); viewers change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from rest_framework.permissions import BasePermission

from ..access.roles import VIEWER, role_of
from ..models import Application, Certificate
from .models import ApiToken
from .problems import Forbidden, Problem

MAX_ID = 2**63 - 1  # the largest primary key a database column holds


class HasPortalRole(BasePermission):
    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False  # DRF answers 401 with the WWW-Authenticate header
        if role_of(request.user) is None:
            raise Forbidden(
                "no_role",
                "This account has no role in the portal (an IAS account's roles lapse when it has "
                "not logged in for a while): log in again, or ask an admin.",
            )
        return True


def not_found(what: str) -> Problem:
    return Problem(404, "not_found", f"No {what}.")


@dataclass
class Access:
    user: object
    token: ApiToken | None

    @classmethod
    def of(cls, request) -> Access:
        token = request.auth if isinstance(request.auth, ApiToken) else None
        return cls(request.user, token)

    @property
    def role(self) -> str | None:
        return role_of(self.user)

    @property
    def label(self) -> str:
        """The actor's name in the audit log: the user, and the token used."""
        return self.token.label if self.token else self.user.get_username()

    def applications(self) -> QuerySet[Application]:
        apps = Application.objects.all()
        if self.token is not None and not self.token.all_applications:
            apps = apps.filter(pk__in=self.token.applications.values("pk"))
        return apps

    def certificates(self) -> QuerySet[Certificate]:
        certs = Certificate.objects.select_related("application")
        if self.token is not None and not self.token.all_applications:
            certs = certs.filter(application__in=self.token.applications.values("pk"))
        return certs

    def application(self, slug: str) -> Application:
        found = self.applications().filter(slug=slug).first()
        if found is None:
            raise not_found(f"application '{slug}'")
        return found

    def certificate(self, pk: int) -> Certificate:
        found = self.certificates().filter(pk=pk).first() if 0 < pk <= MAX_ID else None
        if found is None:
            raise not_found(f"certificate with id {pk}")
        return found

    def may_write(self, application: Application) -> bool:
        try:
            self.require_write(application)
        except Forbidden:
            return False
        return True

    def require_write(self, application: Application) -> None:
        if self.token is not None and not self.token.write:
            raise Forbidden(
                "read_only_token",
                f"The API token {self.token.prefix}… is read-only: make one with write access to change things.",
            )
        if self.role == VIEWER:
            raise Forbidden("viewer_read_only", "Viewers may look at everything and change nothing.")
        if not application.is_managed_by(self.user):
            raise Forbidden(
                "not_an_owner", f"Only the owners of '{application.slug}' and admins may change it."
            )
