# gcorn configuration for one systemd instance: copy to /etc/gcorn/INSTANCE.conf.py
# (here /etc/gcorn/myapp.conf.py), then `systemctl enable --now gcorn@myapp.socket`.
#
# The file is Python, read the way Gunicorn reads its config files. Under the shipped
# unit, gcorn runs as a dynamic user: the application tree must be world-readable and
# live outside /home and /root (for example in /srv or /opt). Do not set `bind`: the
# socket unit passes the listeners (gcorn@myapp.socket, /run/gcorn-myapp.sock by default).

# The WSGI application, MODULE:NAME, looked up from chdir.
wsgi_app = "myapp.wsgi:application"
chdir = "/srv/myapp"
# Extra import paths, comma-separated (a virtualenv's site-packages, for example).
# pythonpath = "/srv/myapp/venv/lib/python3.11/site-packages"

# Worker processes: about two per core for a typical I/O-bound app.
workers = 4
# A worker silent for this many seconds (a request included) is killed and replaced.
timeout = 30
# Seconds in-flight requests get on reload, restart or stop; keep it below the unit's
# TimeoutStopSec= (35).
graceful_timeout = 30
keepalive = 2
# Recycle workers now and then to bound slow memory growth (0: never).
max_requests = 0
max_requests_jitter = 0

# Environment for the application.
raw_env = [
        "DJANGO_SETTINGS_MODULE=myapp.settings",
]

# Logging: under systemd, gcorn writes straight to the journal (journalctl -u gcorn@myapp,
# or journalctl GCORN_INSTANCE=myapp). The access log is off by default: each request is one
# journal entry with REQUEST_METHOD, REQUEST_URI, HTTP_STATUS, ... fields, and journald
# rate-limits busy services (see LogRateLimitBurst= in systemd.exec(5)).
loglevel = "info"
# accesslog = "-"
# "auto": the journal when stderr is connected to it; "journal" or "stderr" to force one.
log_target = "auto"

# The instance's name in the journal (GCORN_INSTANCE=) and in process titles; the unit
# passes --name with the instance name, which takes precedence.
proc_name = "myapp"
