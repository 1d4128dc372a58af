# BeatMatchMe's image: gunicorn (the web app) by default; the workers, the
# cron process and the migrations run from the same image with another
# entrypoint (deploy/compose.yaml). Debian 12's own Python 3.11, the one
# `make run` and `make test` use, so the pinned requirements.txt installs the
# same wheels here as there.
#
#   docker build -t beatmatchme .       (or podman build)
#
# Configuration comes from the environment at run time (README,
# "Configuration"; deploy/env.example): nothing secret is baked in.

FROM debian:bookworm-slim AS build
# Unpinned Debian packages on purpose: a stable release's point updates are security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
# Runtime requirements only (no requirements-dev.txt), every one pinned there.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt


FROM debian:bookworm-slim
# python3: the venv's interpreter (the same /usr/bin/python3 as the build stage).
# Pango, Pango's FreeType backend, HarfBuzz's subsetter and a font: WeasyPrint
# loads them at run time for the DJ analytics PDF report
# (scripts/ensure-system.sh lists the same). ca-certificates: SMTP over TLS.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      python3 libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 beatmatchme \
 && useradd --system --uid 10001 --gid beatmatchme --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin beatmatchme \
 && mkdir -p /var/lib/beatmatchme/uploads /var/lib/beatmatchme/reports \
 && chown -R beatmatchme:beatmatchme /var/lib/beatmatchme

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The code belongs to root: the app's user can read it, not change it.
# (.dockerignore lets in only what runs: app/, jobs/, migrations/, static/, templates/ ...)
COPY . /app
# Compiled once here: the app's user cannot write /app, and every process would compile it at each start.
RUN python3 -m compileall -q /app

# Uploaded photos and the PDF reports: web nodes and workers share them (a
# volume in deploy/compose.yaml; the image's directory gives it its owner).
# XDG_CACHE_HOME: fontconfig's cache (WeasyPrint), writable by the app's user.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FLASK_APP=wsgi \
    APP_ENV=production \
    BIND=0.0.0.0:8000 \
    UPLOAD_DIR=/var/lib/beatmatchme/uploads \
    ANALYTICS_REPORT_DIR=/var/lib/beatmatchme/reports \
    XDG_CACHE_HOME=/tmp/cache

# The numeric id, so that a runtime that checks "not root" (runAsNonRoot) can tell.
USER 10001:10001
EXPOSE 8000
VOLUME ["/var/lib/beatmatchme"]
ENTRYPOINT ["gunicorn", "-c", "gunicorn.conf.py"]
CMD ["wsgi:app"]
