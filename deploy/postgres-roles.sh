#!/bin/sh
# Run once by the postgres image when its data directory is first created
# (/docker-entrypoint-initdb.d): the two roles Threshold uses (README: Database roles).
#   threshold_owner  owns the database and its schema; migrations and maintenance run as it.
#   threshold_app    owns nothing; the web service runs as it and gets its privileges from
#                    every `migrate` (clinic/db_roles.py).
# Neither is a superuser; the image's own superuser (POSTGRES_USER) is for administration only.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v db="$POSTGRES_DB" \
  -v owner_password="$THRESHOLD_OWNER_PASSWORD" \
  -v app_password="$THRESHOLD_APP_PASSWORD" <<'SQL'
CREATE ROLE threshold_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE threshold_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
ALTER DATABASE :"db" OWNER TO threshold_owner;
ALTER SCHEMA public OWNER TO threshold_owner;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO threshold_app;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
