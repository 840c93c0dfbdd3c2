#!/usr/bin/env bash
# Creates the monitoring role the `monitoring` profile's exporter logs in as.
#
# pg_monitor lets it read every statistics view (pg_stat_database, the query
# texts of pg_stat_statements, pg_settings); beyond that it may connect to the
# application database and look up the pg_stat_statements view in schema
# public, and nothing more: no privilege on any table, no CREATE anywhere
# (10-app-role.sh revoked PUBLIC's CONNECT, TEMP and schema rights).
# Like 10-app-role.sh, every name and password comes from db/.env and reaches
# psql through its environment (\getenv), never a command line.
set -Eeuo pipefail

: "${POSTGRES_USER:?POSTGRES_USER must be set (db/.env)}"
: "${POSTGRES_DB:?POSTGRES_DB must be set (db/.env)}"
: "${MONITOR_DB_USER:?MONITOR_DB_USER must be set (docker-compose.yml)}"

# The role is for an optional profile: a db/.env from before it existed has no
# password for it, and that must not stop a new volume from initialising.
if [[ -z ${MONITOR_DB_PASSWORD:-} ]]; then
  echo "30-monitor-role.sh: MONITOR_DB_PASSWORD is not set in db/.env; no monitoring role" \
    "(add it as .env.example shows, then run this script once: see README.md, Monitoring)" >&2
  exit 0
fi

# It reads statistics only, so it may log in at once: the database's
# readiness is the application role's LOGIN (99-app-login.sql).
psql --no-psqlrc --set ON_ERROR_STOP=1 --single-transaction \
  --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
\getenv app_db POSTGRES_DB
\getenv monitor_user MONITOR_DB_USER
\getenv monitor_password MONITOR_DB_PASSWORD

CREATE ROLE :"monitor_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'monitor_password' IN ROLE pg_monitor;
GRANT CONNECT ON DATABASE :"app_db" TO :"monitor_user";
GRANT USAGE ON SCHEMA public TO :"monitor_user";
SQL
