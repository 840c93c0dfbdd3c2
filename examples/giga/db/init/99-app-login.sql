-- The last init script: every one before it has succeeded, so the application
-- role may now log in. If any of them failed, the entrypoint stopped there and
-- the role stays NOLOGIN: the healthcheck, which logs in as it, keeps the
-- container unhealthy instead of serving a half-initialised database.
-- Keep this file last when adding scripts to init/.
\getenv app_user APP_DB_USER
ALTER ROLE :"app_user" LOGIN;
