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

# psql variables (:"name" for identifiers, :'name' for literals) quote the
# values, so any character in a password is safe. The heredoc is quoted, so
# the shell expands nothing inside it.
psql --no-psqlrc --set ON_ERROR_STOP=1 \
  --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set app_db="$POSTGRES_DB" \
  --set app_user="$APP_DB_USER" \
  --set app_password="$APP_DB_PASSWORD" <<'SQL'
-- Owner of the database, so it can run Django's migrations; no superuser, no
-- CREATEROLE. CREATEDB lets `manage.py test` create its throwaway database.
CREATE ROLE :"app_user" LOGIN NOSUPERUSER NOCREATEROLE CREATEDB NOREPLICATION NOBYPASSRLS
  PASSWORD :'app_password';
ALTER DATABASE :"app_db" OWNER TO :"app_user";

-- Nobody but the owner connects to the application database. Since
-- PostgreSQL 15 schema public belongs to pg_database_owner (now the app role)
-- and PUBLIC cannot create in it; say so explicitly anyway.
REVOKE ALL ON DATABASE :"app_db" FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SQL
