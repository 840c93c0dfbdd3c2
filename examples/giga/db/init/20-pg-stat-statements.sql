-- Query statistics for the application database (the library is preloaded by
-- postgresql.conf). Run by the image's entrypoint as POSTGRES_USER, in POSTGRES_DB.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
