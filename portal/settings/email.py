"""Outgoing mail (alert notifications): `EMAIL_URL` in django-environ's form, e.g.
`smtp+tls://user:password@smtp.example.com:587`. The default, the console backend,
writes each mail to the process log instead of sending it."""

from .env import env

# Values the URL leaves out keep Django's defaults.
globals().update(
    {
        name: value
        for name, value in env.email_url("EMAIL_URL", default="consolemail://").items()
        if value is not None
    }
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="deskops@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Seconds before a mail server that does not answer is given up on.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
