"""The portal's one settings module: everything comes from the environment.

Development (DJANGO_DEBUG=1) works with no configuration at all: a secret key and an
encryption key are generated once into .local/ (ignored by git). Anything else must be set.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from certmgr.core.addresses import clean_allow_list
from certmgr.core.notices import clean_thresholds
from certmgr.core.oidclogin import clean_issuer_aliases

from . import vcap
from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = Path(env_str("CERTMGR_LOCAL_DIR") or BASE_DIR / ".local")

# On Cloud Foundry (VCAP_APPLICATION is set in every container) DEBUG is off whatever the
# environment says: a debug page there would show settings and request data to the internet.
ON_CLOUD_FOUNDRY = vcap.on_cloud_foundry()
DEBUG = env_bool("DJANGO_DEBUG", False) and not ON_CLOUD_FOUNDRY


def _local_secret(filename: str, make) -> str:
    """A development secret, created on first use and kept out of git."""
    path = LOCAL_DIR / filename
    if not path.exists():
        LOCAL_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(make())
    return path.read_text().strip()


def _random_secret() -> str:
    import secrets

    return secrets.token_urlsafe(50)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it to a long random string, e.g. the output of "
            'python -c "import secrets; print(secrets.token_urlsafe(50))" '
            "(or set DJANGO_DEBUG=1 for local development)."
        )
    SECRET_KEY = _local_secret("secret-key", _random_secret)

CERTMGR_ENCRYPTION_KEYS = env_list("CERTMGR_ENCRYPTION_KEYS")
if not CERTMGR_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "CERTMGR_ENCRYPTION_KEYS is not set: private keys could not be encrypted at rest. "
            'Hint: generate a key with python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())" and set it (a comma-separated list '
            "rotates keys: the first encrypts, all decrypt)."
        )
    CERTMGR_ENCRYPTION_KEYS = [_local_secret("encryption-key", _fernet_key)]

CERTMGR_MAX_UPLOAD_BYTES = env_int("CERTMGR_MAX_UPLOAD_BYTES", 1024 * 1024)
# What one input may ask of the parser (certmgr/core/limits.py): key-derivation iterations, a
# PKCS#12 file's MAC and encryptions together; certificates (and as many private keys).
CERTMGR_MAX_KDF_ITERATIONS = env_int("CERTMGR_MAX_KDF_ITERATIONS", 2_000_000)
CERTMGR_MAX_CERTS_PER_INPUT = env_int("CERTMGR_MAX_CERTS_PER_INPUT", 100)
if CERTMGR_MAX_KDF_ITERATIONS < 10_000:
    raise ImproperlyConfigured(
        f"CERTMGR_MAX_KDF_ITERATIONS={CERTMGR_MAX_KDF_ITERATIONS}: use at least 10000; a PKCS#12 file "
        "from common tools asks for about 6000 to 60000 (the default is 2000000)."
    )
if CERTMGR_MAX_CERTS_PER_INPUT < 1:
    raise ImproperlyConfigured(
        f"CERTMGR_MAX_CERTS_PER_INPUT={CERTMGR_MAX_CERTS_PER_INPUT}: use at least 1 (the default is 100)."
    )
CERTMGR_EXPIRY_WARNING_DAYS = env_int("CERTMGR_EXPIRY_WARNING_DAYS", 30)
# A key generated in the portal waits this long for its certificate, then the worker deletes it.
CERTMGR_PENDING_KEY_DAYS = env_int("CERTMGR_PENDING_KEY_DAYS", 30)
# Pre-flight of binding parameters: CAs added to the IAS tenant's trust (by SAP incident) beyond
# IAS's defaults, as a PEM file; and rules SAP does not document that should not be checked
# (dn_change, rsa_min, client_auth). Both are validated by certmgr/checks.py.
CERTMGR_IAS_TRUSTED_CAS = env_str("CERTMGR_IAS_TRUSTED_CAS")
CERTMGR_PREFLIGHT_DISABLE = env_list("CERTMGR_PREFLIGHT_DISABLE")

# The token-flow health check. Tenant hosts beyond IAS's own domains (custom domains, the local
# stand-in) are added with CERTMGR_TENANT_HOSTS; extra CAs for tenant and backend TLS come from
# the PEM file CERTMGR_CA_BUNDLE. Plain http (to this machine only) exists in development only.
CERTMGR_SANDBOX_DIR = LOCAL_DIR / "sandbox"
CERTMGR_TENANT_HOSTS = env_list("CERTMGR_TENANT_HOSTS", ("127.0.0.1", "localhost") if DEBUG else ())
CERTMGR_CA_BUNDLE = env_str("CERTMGR_CA_BUNDLE") or (
    str(CERTMGR_SANDBOX_DIR / "ca.pem") if DEBUG and (CERTMGR_SANDBOX_DIR / "ca.pem").exists() else ""
)
CERTMGR_ALLOW_HTTP_LOOPBACK = DEBUG
# Backend and notification URLs reach public addresses only (checked when connecting), plus these
# hosts, *.domains and CIDR networks; loopback too in development.
try:
    CERTMGR_OUTBOUND_ALLOW = list(clean_allow_list(env_list("CERTMGR_OUTBOUND_ALLOW")))
except ValueError as exc:
    raise ImproperlyConfigured(
        f"CERTMGR_OUTBOUND_ALLOW: {exc}; use comma-separated hosts, *.domains or CIDR networks "
        "such as backend.internal,*.apps.internal,10.0.0.0/8."
    ) from None
CERTMGR_HEALTHCHECK_CONNECT_TIMEOUT = env_int("CERTMGR_HEALTHCHECK_CONNECT_TIMEOUT", 5)
CERTMGR_HEALTHCHECK_READ_TIMEOUT = env_int("CERTMGR_HEALTHCHECK_READ_TIMEOUT", 10)
CERTMGR_HEALTHCHECK_WORKERS = env_int("CERTMGR_HEALTHCHECK_WORKERS", 8)
CERTMGR_HEALTHCHECK_INTERVAL_MINUTES = env_int("CERTMGR_HEALTHCHECK_INTERVAL_MINUTES", 60)

# Expiry notices: days before expiry at which a notice goes out (per application overridable).
try:
    CERTMGR_NOTICE_THRESHOLDS = list(
        clean_thresholds(env_list("CERTMGR_NOTICE_THRESHOLDS", ("60", "30", "14", "7", "1")))
    )
except ValueError as exc:
    raise ImproperlyConfigured(
        f"CERTMGR_NOTICE_THRESHOLDS: {exc}; use comma-separated days such as 60,30,14,7,1."
    ) from None
CERTMGR_NOTICE_MAX_ATTEMPTS = env_int("CERTMGR_NOTICE_MAX_ATTEMPTS", 6)
# A notice claimed this long ago by a sender that never finished is sent again (at least once:
# the sender may have died after the receiver took it; every delivery carries the notice's id).
CERTMGR_NOTICE_CLAIM_MINUTES = env_int("CERTMGR_NOTICE_CLAIM_MINUTES", 15)
if CERTMGR_NOTICE_CLAIM_MINUTES < 1:
    raise ImproperlyConfigured("CERTMGR_NOTICE_CLAIM_MINUTES must be at least 1 (minutes).")
CERTMGR_DIGEST_HOUR = env_int("CERTMGR_DIGEST_HOUR", 7)  # UTC; daily digests go out from then on
# The Cloud Foundry landscape (certmgr/landscape): a technical user reads every identity binding of
# the foundation CERTMGR_CF_API names (checked by certmgr/checks.py). Secrets are not stripped:
# a password may well end in a blank.
CERTMGR_CF_API = env_str("CERTMGR_CF_API").rstrip("/")
CERTMGR_CF_USERNAME = env_str("CERTMGR_CF_USERNAME")
CERTMGR_CF_PASSWORD = os.environ.get("CERTMGR_CF_PASSWORD", "")
CERTMGR_CF_CLIENT_ID = env_str("CERTMGR_CF_CLIENT_ID")
CERTMGR_CF_CLIENT_SECRET = os.environ.get("CERTMGR_CF_CLIENT_SECRET", "")
CERTMGR_CF_ORGS = env_list("CERTMGR_CF_ORGS")
CERTMGR_CF_SPACES = env_list("CERTMGR_CF_SPACES")
CERTMGR_CF_HOSTS = env_list("CERTMGR_CF_HOSTS")  # login servers that are not the API's siblings
CERTMGR_CF_SYNC_MINUTES = env_int("CERTMGR_CF_SYNC_MINUTES", 60)
CERTMGR_CF_STORE_KEYS = env_bool("CERTMGR_CF_STORE_KEYS", False)  # keep X509_GENERATED keys (sealed)
# The routes Cloud Foundry maps to the app ("host" or "host/path"), first one first.
_routes = vcap.application_uris()
_route_hosts = [route.split("/", 1)[0] for route in _routes]
# Links in notices and feed URLs: the first route on Cloud Foundry, else the development server
# (on PORT, as `./dev run` starts it: a number or host:port).
_dev_address = env_str("PORT") or "8000"
_dev_address = _dev_address if ":" in _dev_address else f"127.0.0.1:{_dev_address}"
CERTMGR_PORTAL_URL = env_str(
    "CERTMGR_PORTAL_URL", f"https://{_routes[0]}" if _routes else f"http://{_dev_address}"
).rstrip("/")
CERTMGR_METRICS_TOKEN = env_str("CERTMGR_METRICS_TOKEN")
# Proxies in front of the portal that append to X-Forwarded-For (the audit log's address).
CERTMGR_TRUSTED_PROXY_HOPS = env_int("CERTMGR_TRUSTED_PROXY_HOPS", 1 if ON_CLOUD_FOUNDRY else 0)

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ("localhost", "127.0.0.1", "[::1]") if DEBUG else ())
ALLOWED_HOSTS += [host for host in _route_hosts if host not in ALLOWED_HOSTS]
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
CSRF_TRUSTED_ORIGINS += [
    f"https://{host}" for host in _route_hosts if f"https://{host}" not in CSRF_TRUSTED_ORIGINS
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from /static/ (no CDN)
    "certmgr",
]

MIDDLEWARE = [
    "portal.middleware.HealthCheckMiddleware",  # first: the platform's probe skips host checks
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "certmgr.access.roles.RoleRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # The landscape's panels, included by the application page and the dashboard.
            "libraries": {"landscape": "certmgr.landscape.panels"},
        },
    },
]

_vcap_db = vcap.postgres_database()  # sslmode=verify-full against the binding's root CA
if env_str("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(env_str("DATABASE_URL"), conn_max_age=60)}
elif _vcap_db:
    DATABASES = {"default": _vcap_db}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH") or BASE_DIR / "db.sqlite3",
            # Writers from several threads or processes (the scheduled checks) queue instead of
            # failing with "database is locked" when a read transaction would have to upgrade.
            # WAL: readers do not wait for a writer, and a commit is not an fsync of the whole file.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
if ON_CLOUD_FOUNDRY and DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    raise ImproperlyConfigured(
        "No database on Cloud Foundry: bind a PostgreSQL instance (cf create-service postgresql-db "
        "<plan> cert-portal-db; cf bind-service ias-cert-portal cert-portal-db) or set DATABASE_URL. "
        "SQLite would live in the container's disk and be lost at every restart."
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "logged-out"

# Login through IAS (OpenID Connect, authorization code + PKCE): from the portal's `identity`
# binding on Cloud Foundry (CERTMGR_IDENTITY_BINDING picks one by name), else from CERTMGR_OIDC_*,
# else, in development, from the local stand-in (`./dev run`). With none, Django's login only.
CERTMGR_OIDC = vcap.identity_login(env_str("CERTMGR_IDENTITY_BINDING"))
if CERTMGR_OIDC is None and env_str("CERTMGR_OIDC_ISSUER"):
    CERTMGR_OIDC = vcap.login_client_config(
        "CERTMGR_OIDC_*",
        issuer=env_str("CERTMGR_OIDC_ISSUER"),
        client_id=env_str("CERTMGR_OIDC_CLIENT_ID"),
        client_secret=env_str("CERTMGR_OIDC_CLIENT_SECRET"),
        certificate=env_str("CERTMGR_OIDC_CLIENT_CERTIFICATE"),
        key=env_str("CERTMGR_OIDC_CLIENT_KEY"),
    )
if CERTMGR_OIDC is None and DEBUG and (CERTMGR_SANDBOX_DIR / "login-client.json").exists():
    import json as _json

    CERTMGR_OIDC = vcap.login_client_config(
        "The stand-in's login client", **_json.loads((CERTMGR_SANDBOX_DIR / "login-client.json").read_text())
    )
# Issuers the login also accepts from the portal's tenant: its custom domains (comma-separated https
# URLs), for id_tokens whose iss is the custom domain without an ias_iss naming the tenant.
try:
    CERTMGR_OIDC_ISSUER_ALIASES = clean_issuer_aliases(env_list("CERTMGR_OIDC_ISSUER_ALIASES"))
except ValueError as exc:
    raise ImproperlyConfigured(f"CERTMGR_OIDC_ISSUER_ALIASES: {exc}") from None
# IAS groups → roles (see certmgr/access/roles.py). Owners come from each application's owner groups.
CERTMGR_ADMIN_GROUPS = env_list("CERTMGR_ADMIN_GROUPS", ("CertPortalAdmins",))
CERTMGR_VIEWER_GROUPS = env_list("CERTMGR_VIEWER_GROUPS", ("CertPortalViewers",))
# An IAS user's roles lapse this long after their last IAS login (their calendar feeds and
# digests stop with them): someone who left IAS does not keep receiving data.
CERTMGR_IAS_ROLE_DAYS = env_int("CERTMGR_IAS_ROLE_DAYS", 30)
CERTMGR_SESSION_HOURS = env_int("CERTMGR_SESSION_HOURS", 8)
# Who may use Django's own password login: everyone ("all"), break-glass superusers only
# ("admins", the default once IAS login is configured) or nobody ("off").
CERTMGR_LOCAL_LOGIN = env_str("CERTMGR_LOCAL_LOGIN", "admins" if CERTMGR_OIDC else "all")
if CERTMGR_LOCAL_LOGIN not in ("all", "admins", "off"):
    raise ImproperlyConfigured(f"CERTMGR_LOCAL_LOGIN={CERTMGR_LOCAL_LOGIN!r}: use all, admins or off.")
AUTHENTICATION_BACKENDS = ["certmgr.access.oidc.IasBackend", "django.contrib.auth.backends.ModelBackend"]
# Anonymous users go straight to IAS when it is configured; /login/ stays for local accounts.
LOGIN_URL = "oidc_authentication_init" if CERTMGR_OIDC else "login"
# mozilla-django-oidc runs the browser side; the code exchange and id_token checks are ours.
OIDC_RP_CLIENT_ID = (CERTMGR_OIDC or {}).get("client_id", "")
OIDC_RP_SCOPES = "openid email profile"
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_USE_NONCE = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env_str("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Pasted text arrives as form data: let it reach the parser, which names the size problem.
DATA_UPLOAD_MAX_MEMORY_SIZE = CERTMGR_MAX_UPLOAD_BYTES * 3 + 64 * 1024
# Uploads may hold private keys: kept in memory only, never spooled to a temporary file.
FILE_UPLOAD_HANDLERS = ["certmgr.inventory.uploads.MemoryOnlyUpload"]

SESSION_COOKIE_HTTPONLY = True
# A login lasts a working day: IAS groups (the roles) are read at login, so someone removed from
# a group in IAS, or from IAS, loses the portal at the latest this long after (not two weeks).
# The expiry is fixed at login (certmgr/access/local_login.py): later requests do not extend it.
SESSION_COOKIE_AGE = CERTMGR_SESSION_HOURS * 3600
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

# Behind Cloud Foundry's router TLS ends there; it says so in X-Forwarded-Proto (and the app is
# reachable only through it, so the header cannot come from anyone else).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# https only: secure cookies, redirect of plain http, HSTS. On unless DEBUG; DJANGO_SECURE=0
# turns it off for plain-http setups that are not development (the test suite's test client and
# live server; a local production-like run without a TLS proxy). Never off on Cloud Foundry.
SECURE = env_bool("DJANGO_SECURE", not DEBUG) or ON_CLOUD_FOUNDRY
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = SECURE
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the platform's probe speaks plain http to the container
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000) if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
# Preloading is a decision for the owner of the parent domain (SAP's, for cfapps.*.hana.ondemand
# .com routes), not this app: off unless asked for, and the deploy check's reminder silenced.
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# No inline script or style anywhere: pages load their JavaScript and CSS from /static/.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)

# Debug pages and error reports hide secrets in frame locals too (portal/debugfilter.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.debugfilter.SecretHidingFilter"

# The automation API under /api/v1/ (certmgr/api/): API tokens or the session, JSON only, errors
# as RFC 9457 problem details, a rate limit per token.
CERTMGR_API_THROTTLE = env_str("CERTMGR_API_THROTTLE", "120/min")
if CERTMGR_API_THROTTLE and not re.fullmatch(
    r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)", CERTMGR_API_THROTTLE
):
    raise ImproperlyConfigured(
        f"CERTMGR_API_THROTTLE={CERTMGR_API_THROTTLE!r}: use calls per period, e.g. 120/min, 5/s, 2000/hour."
    )
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "certmgr.api.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["certmgr.api.permissions.HasPortalRole"],
    "DEFAULT_THROTTLE_CLASSES": ["certmgr.api.throttling.TokenRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["certmgr.api.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "certmgr.api.problems.exception_handler",
    "URL_FORMAT_OVERRIDE": None,  # ?format= names the parameters' format, not a renderer
}
SPECTACULAR_SETTINGS = {
    "TITLE": "IAS certificate portal API",
    "VERSION": "1",
    "DESCRIPTION": "Applications, certificates, binding parameters, health checks, rotation and "
    "notifications, for pipelines. Authenticate with `Authorization: Bearer <API token>`.",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "COMPONENT_SPLIT_PATCH": False,  # a PATCH body is what its serializer requires, no "Patched" copy
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {"ExpiryStateEnum": "certmgr.api.serializers.STATES"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "certmgr.api.schema.finish",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Outside development: one JSON object per line on stdout, Cloud Foundry's log stream.
    "formatters": {
        "json": {"()": "portal.logjson.JsonFormatter"},
        # Django's own format for the development server's request lines.
        "server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "filters": {"url_secrets": {"()": "portal.logjson.UrlSecretRedactor"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["url_secrets"]}
        if DEBUG
        else {
            "class": "logging.StreamHandler",
            # A command asked for --json prints its document on stdout: the logs go to stderr then
            # (on Cloud Foundry both reach the log stream), so the output stays one JSON document.
            "stream": "ext://sys.stderr" if "--json" in sys.argv else "ext://sys.stdout",
            "formatter": "json",
            "filters": ["url_secrets"],
        },
        "server": {"class": "logging.StreamHandler", "formatter": "server"},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL") or "INFO"},
    # Django's default also mails error reports (with request data and local variables) to
    # ADMINS; those could carry a p12 password or a pasted key, so errors go to the console only.
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # runserver's request lines (development) carry the login callback's query: masked.
        "django.server": {
            "handlers": ["server"],
            "filters": ["url_secrets"],
            "level": "INFO",
            "propagate": False,
        },
    },
}

# Email notices through SMTP: EMAIL_* from the environment or, when EMAIL_HOST is not set, from a
# user-provided service named or tagged "smtp" or "mail" (see vcap.smtp_credentials).
_smtp = None if env_str("EMAIL_HOST") else vcap.smtp_credentials(env_str("VCAP_SERVICES"))
# In development without a mail server, notices are printed to the console instead.
EMAIL_BACKEND = (
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG and not _smtp and not env_str("EMAIL_HOST")
    else "django.core.mail.backends.smtp.EmailBackend"
)
if _smtp:
    EMAIL_HOST = _smtp["host"]
    EMAIL_PORT = _smtp["port"]
    EMAIL_HOST_USER = _smtp["username"]
    EMAIL_HOST_PASSWORD = _smtp["password"]
    EMAIL_USE_TLS = _smtp["use_tls"]
    EMAIL_USE_SSL = _smtp["use_ssl"]
else:
    EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
    EMAIL_PORT = env_int("EMAIL_PORT", 25)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured(
        "EMAIL_USE_TLS and EMAIL_USE_SSL are both set: STARTTLS or implicit TLS, pick one."
    )
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = (
    env_str("CERTMGR_MAIL_FROM") or (_smtp or {}).get("from") or "IAS certificate portal <noreply@localhost>"
)
