#!/usr/bin/env bash
# Creates pgBackRest's stanza in its repositories (pgbackrest.conf, and the
# object store if db/.env configures one), so that the WAL postgresql.conf
# archives has somewhere to go from the first start on.
#
# The official image runs this once, on an empty data directory, as the
# postgres user; the passphrase comes from db/.env, never a command line.
# A failure (no passphrase in db/.env, the object store unreachable, a
# repository holding another data directory's backups) must not leave the
# new database unusable, since init/ never runs again: it is reported here,
# archive_command keeps failing in the log (the server keeps the WAL), and
# bin/backup-physical, which creates the stanza too, says what is wrong
# until it is fixed.
set -Eeuo pipefail

: "${PGBACKREST_STANZA:?PGBACKREST_STANZA must be set (docker-compose.yml)}"

warn() {
  echo "40-backup-stanza.sh: WARNING: $*; WAL archiving fails until it is fixed, then run backup-physical" \
    "(see README.md, Point-in-time recovery)" >&2
}
if [[ -z ${PGBACKREST_REPO1_CIPHER_PASS:-} ]]; then
  warn "PGBACKREST_REPO1_CIPHER_PASS is not set in db/.env (it encrypts the backups; .env.example shows it)"
  exit 0
fi
if ! out="$(pgbackrest stanza-create 2>&1)"; then
  warn "pgbackrest stanza-create failed: $out"
fi
