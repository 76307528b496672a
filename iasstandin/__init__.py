"""A local stand-in for an SAP Cloud Identity Services (IAS) tenant, and a protected backend.

It imitates the OAuth2 client-credentials grant with client-certificate (mTLS) authentication, so
the portal's token check can run against something real on 127.0.0.1, and OpenID Connect login
(authorization code with PKCE, an HTML login form, userinfo, logout) for the portal's user login. It is the checker's
counterpart: it imports nothing from the portal, and computes thumbprints and signs and verifies
JWTs with its own code, so that a bug in the portal cannot hide in both.
"""

from .accounts import add_user_in_directory, register_oidc_client_in_directory
from .app import Faults, TokenRequest
from .clients import register_in_directory
from .standin import StandIn, serve
from .tenant import TenantSettings, set_tenant_settings_in_directory

__all__ = [
    "Faults",
    "StandIn",
    "TenantSettings",
    "TokenRequest",
    "add_user_in_directory",
    "register_in_directory",
    "register_oidc_client_in_directory",
    "serve",
    "set_tenant_settings_in_directory",
]
