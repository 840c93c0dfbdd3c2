"""Answers that tests share."""

# Every character class the issue names, at once: quotes, $, #, :, /, @, %, \,
# spaces (also leading and trailing), Jinja markers, env-file syntax, non-ASCII.
AWKWARD_PASSWORDS = {
    "db_password": "p'a\"ss $HOME #x :/@% \\ {{ raw }} {% x %} ñandú 中文 ${X} $$ end\\",
    "db_admin_password": " lead 'and' trail \\\" $1 ",
    "db_monitor_password": "m ${MONITOR_DB_USER} $$ $x 'q' \"d\" \\ #no comment",
    "django_secret_key": "k" * 40 + " $SECRET ${KEY} \"' \\n #!",
}

# Free text that is accepted: emoji (astral, and joined with U+200D), quotes,
# backslashes, $, #, Jinja markers; an e-mail address with a quoted local part
# holding an escaped quote (valid under RFC 5321).
AWKWARD_TEXT = {
    "project_name": "Ünïcødé 🚀 👩\u200d💻 \"Q\" 'q' \\ $HOME {{ x }} #1",
    "admin_email": '"o\\"brien\'s"@example.com',
}
