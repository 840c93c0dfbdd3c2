#!/usr/bin/env bash
# Creates the application role and hands it the application database.
#
# The official image runs this once, when the data directory is empty, as
# POSTGRES_USER over the Unix socket, after it has created POSTGRES_DB.
# Every name and password comes from db/.env; none is written here.
set -Eeuo pipefail

: "${POSTGRES_USER:?POSTGRES_USER must be set (db/.env)}"
: "${POSTGRES_DB:?POSTGRES_DB must be set (db/.env)}"
: "${APP_DB_USER:?APP_DB_USER must be set (db/.env)}"
: "${APP_DB_PASSWORD:?APP_DB_PASSWORD must be set (db/.env)}"

# psql reads the values from its own environment (\getenv): the password never
# appears on a command line, where `ps` would show it during the first start.
# psql variables (:"name" for identifiers, :'name' for literals) quote them,
# so any character is safe, and the quoted heredoc keeps the shell out.
# One transaction: a failure leaves no half-made role behind.
psql --no-psqlrc --set ON_ERROR_STOP=1 --single-transaction \
  --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
\getenv app_db POSTGRES_DB
\getenv app_user APP_DB_USER
\getenv app_password APP_DB_PASSWORD

-- Owner of the database, so it can run Django's migrations; no superuser, no
-- CREATEROLE. CREATEDB lets `manage.py test` create its throwaway database
-- (see README.md, "Development and production").
-- NOLOGIN until the last init script: a half-initialised database cannot be
-- logged into, so the healthcheck (a real login) reports it.
CREATE ROLE :"app_user" NOLOGIN NOSUPERUSER NOCREATEROLE CREATEDB NOREPLICATION NOBYPASSRLS
  PASSWORD :'app_password';
ALTER DATABASE :"app_db" OWNER TO :"app_user";

-- Nobody but the owner connects to the application database. Since
-- PostgreSQL 15 schema public belongs to pg_database_owner (now the app role)
-- and PUBLIC cannot create in it; say so explicitly anyway.
REVOKE ALL ON DATABASE :"app_db" FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SQL
