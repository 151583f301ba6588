"""Staff login: the portal's login form with a lockout after repeated failures,
refusal of accounts that hold no role, and every attempt in the audit trail.

Failures count per user name and per source address (`STAFF_LOGIN_FAILURES_*`
within `STAFF_LOGIN_LOCKOUT` seconds). While either is over its limit the form
answers "too many failed logins" without checking the password, so guessing
stops even for a correct guess."""

from django import forms
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from allocation.directory import DirectoryUnavailable, directory_authenticate

from .client_ip import client_ip
from .lockout import failure_record, failures_clear, failures_exceeded
from .roles import user_role
from .services import audit_record

_NAMESPACE = "staff-login-failures"


def _source(request) -> str:
    return (client_ip(request) if request else "") or "unknown"


class StaffLoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "locked": (
            "Too many failed logins for this account or from this address. "
            "Try again in %(minutes)d minutes."
        ),
        "no_role": "This account has no role on the portal. Ask an administrator for access.",
        "directory_down": (
            "The directory is not answering, so directory accounts cannot log in right "
            "now. The local break-glass administrator still can."
        ),
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        password = self.cleaned_data.get("password")
        key = username.casefold()
        limits = [
            ("user", key, settings.STAFF_LOGIN_FAILURES_PER_USER),
            ("address", _source(self.request), settings.STAFF_LOGIN_FAILURES_PER_ADDRESS),
        ]
        if failures_exceeded(_NAMESPACE, limits):
            audit_record(action="login.locked", object_type="auth.user", object_repr=key or "?")
            raise forms.ValidationError(
                self.error_messages["locked"],
                code="locked",
                params={"minutes": max(1, settings.STAFF_LOGIN_LOCKOUT // 60)},
            )
        if not username or not password:
            return self.cleaned_data
        try:
            self.user_cache = directory_authenticate(
                self.request, username=username, password=password
            )
        except DirectoryUnavailable:
            raise forms.ValidationError(
                self.error_messages["directory_down"], code="directory_down"
            ) from None
        if self.user_cache is None:
            failure_record(
                _NAMESPACE,
                [("user", key), ("address", _source(self.request))],
                window=settings.STAFF_LOGIN_LOCKOUT,
            )
            audit_record(action="login.failed", object_type="auth.user", object_repr=key)
            raise self.get_invalid_login_error()
        self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if user_role(user) is None:
            audit_record(action="login.refused", obj=user, actor=user.get_username())
            raise forms.ValidationError(self.error_messages["no_role"], code="no_role")


class StaffLoginView(auth_views.LoginView):
    # A signed-in user sent here by a page their role does not open (the Django
    # admin, say) sees the form, to sign in as someone who may, rather than being
    # sent back to that page in a loop.
    form_class = StaffLoginForm


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    # Only portal logins pass through here; the thin-client API authenticates
    # without a session.
    failures_clear(_NAMESPACE, "user", user.get_username().casefold())
    role = user_role(user)
    audit_record(
        action="login",
        obj=user,
        actor=user.get_username(),
        after={"role": role.label if role else None},
    )


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        audit_record(action="logout", obj=user, actor=user.get_username())
