# syntax=docker/dockerfile:1
# oncue: `oncue serve` by default; `oncue worker ...` with another command. See docs/deploy.md.

# -- build: a virtualenv with oncue and its store drivers -------------------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/oncue
WORKDIR /src
# .dockerignore keeps the context to what the wheel needs
COPY . .
RUN /opt/oncue/bin/pip install ".[postgres,redis,otel]" \
    && /opt/oncue/bin/python -m compileall -q /opt/oncue/lib

# -- run: the virtualenv on a slim Python, as an unprivileged user ----------------------------
FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 oncue \
    && useradd --system --uid 10001 --gid oncue --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin oncue \
    && mkdir /data && chown oncue:oncue /data
COPY --from=build /opt/oncue /opt/oncue
# Read-only root file system friendly: no .pyc written at run time (compiled above), logs to
# stderr, the SQLite default under /data (a volume); only /tmp needs to be writable.
ENV PATH=/opt/oncue/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ONCUE_HOST=0.0.0.0 \
    ONCUE_PORT=8080 \
    ONCUE_HEALTH_HOST=0.0.0.0 \
    ONCUE_STORE=sqlite:////data/oncue.db \
    ONCUE_LOG_FORMAT=json \
    ONCUE_GRACE=25
WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8080
# SIGTERM drains: running tasks get ONCUE_GRACE seconds, then the process exits 0. Give the
# container longer than that to stop (docker stop -t 40, compose stop_grace_period: 40s).
STOPSIGNAL SIGTERM
# /health of `oncue serve` (ONCUE_PORT) or of `oncue worker` (ONCUE_HEALTH_PORT, when set)
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('ONCUE_HEALTH_PORT') or os.environ.get('ONCUE_PORT', '8080'); urllib.request.urlopen(f'http://127.0.0.1:{port}/health', timeout=2)"]
ENTRYPOINT ["oncue"]
CMD ["serve"]
