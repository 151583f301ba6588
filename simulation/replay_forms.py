"""The form that starts a placement replay. Its bounds keep one run to seconds
of a worker's time."""

from django import forms

MAX_HOSTS = 60
MAX_SEATS = 4000


class ReplayForm(forms.Form):
    seed = forms.IntegerField(
        min_value=0, max_value=1_000_000, initial=1, help_text="Same seed, same day."
    )
    hosts = forms.IntegerField(
        min_value=8, max_value=MAX_HOSTS, initial=40, help_text=f"8 to {MAX_HOSTS}."
    )
    seats = forms.IntegerField(
        min_value=200, max_value=MAX_SEATS, initial=3000, help_text=f"200 to {MAX_SEATS}."
    )
    host_boot_cap = forms.IntegerField(
        label="Boots at once per host",
        min_value=1,
        max_value=10,
        required=False,
        help_text="Empty: the scheduling policy's.",
    )
    host_failure = forms.BooleanField(
        required=False, initial=True, label="A large host fails mid-afternoon"
    )
