"""gunicorn's configuration for Cloud Foundry (manifest.yml: gunicorn portal.wsgi -c gunicorn.conf.py).

Everything can be overridden on the command line (e.g. --bind for a local run).
"""

import os

# The router reaches the container on $PORT; GUNICORN_BIND replaces the whole address.
bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"  # noqa: S104
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Cloud Foundry sends SIGTERM and kills after 10 s: finish in-flight requests within 8.
graceful_timeout = 8
timeout = 60
# TLS ends at the gorouter; it is the only peer and sets X-Forwarded-For/-Proto.
forwarded_allow_ips = "*"
accesslog = "-"
# The path without its query string, feed tokens masked (portal.logjson.AccessLogRedactor).
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
# One JSON object per line on stdout, like the portal's own logs (portal/logjson.py).
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "portal.logjson.JsonFormatter"}},
    "filters": {"redact": {"()": "portal.logjson.AccessLogRedactor"}},
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}
    },
    "root": {"level": "INFO", "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        "gunicorn.access": {
            "level": "INFO",
            "handlers": ["stdout"],
            "filters": ["redact"],
            "propagate": False,
        },
    },
}
