"""Answers that tests share."""

# Every character class the issue names, at once: quotes, $, #, :, /, @, %, \,
# spaces (also leading and trailing), Jinja markers, env-file syntax, non-ASCII.
AWKWARD_PASSWORDS = {
    "db_password": "p'a\"ss $HOME #x :/@% \\ {{ raw }} {% x %} ñandú 中文 ${X} $$ end\\",
    "db_admin_password": " lead 'and' trail \\\" $1 ",
    "django_secret_key": "k" * 40 + " $SECRET ${KEY} \"' \\n #!",
}
