# Threshold: the ASGI web service (HTTP and websockets). See docker-compose.yml.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# pg_dump and pg_restore for `manage.py backup` and `restore`. pg_dump refuses a server newer
# than itself, and Debian's own client is older than the postgres:16 server docker-compose.yml
# runs, so the client comes from the PostgreSQL project's apt repository, at the server's major
# version (keep the two in step).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && install -d /usr/share/postgresql-common/pgdg \
 && curl --fail -sSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
    https://www.postgresql.org/media/keys/ACCC4CF8.asc \
 && . /etc/os-release \
 && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt ${VERSION_CODENAME}-pgdg main" \
    > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-16 \
 && apt-get purge -y --auto-remove curl \
 && rm -rf /var/lib/apt/lists/*

# Dependencies first, so a code change does not reinstall them: exactly the lock file's
# versions, each file checked against its hash (README: Dependencies and the lock files).
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# The application (.dockerignore keeps .env, databases, .venv and tests out).
COPY . .

# Hashed, compressed static files, served by WhiteNoise. The settings need a SECRET_KEY to
# load, and a database that is not SQLite (production settings refuse it): these exist only
# during the build, are never used at run time, and nothing connects to that database.
RUN DEBUG=0 SECRET_KEY=collectstatic-at-build-time-only \
    DATABASE_URL=postgres://build@127.0.0.1:5432/never-connected \
    python manage.py collectstatic --noinput

# Uploads (MEDIA_ROOT) and backups live on volumes (docker-compose.yml); a new volume takes
# its owner and mode from these directories. Only the service's user may read them.
RUN useradd --create-home --uid 10001 threshold \
 && install -d -o threshold -g threshold -m 0700 /app/media /backups
USER threshold

EXPOSE 8000

# docker-compose.yml runs migrations first; the default is the server alone. clinic.serve is
# uvicorn with the request limits and the proxy trust (FORWARDED_ALLOW_IPS) set from settings.
CMD ["python", "-m", "clinic.serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "3"]
