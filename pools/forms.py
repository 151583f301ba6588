"""Forms of the pools pages (the fields operators tune)."""

from django import forms

from cloud.models import Host, Region

from .models import PoolSchedule, SchedulingPolicy, VMPool


class PoolForm(forms.ModelForm):
    class Meta:
        model = VMPool
        fields = [
            "label",
            "image",
            "target_ready",
            "min_ready",
            "max_size",
            "max_concurrent_boots",
            "pause_after_errors",
            "pause_window_minutes",
            "enabled",
        ]

    def clean(self):
        data = super().clean()
        if data.get("min_ready", 0) > data.get("max_size", 0):
            self.add_error("min_ready", "The minimum cannot be above the pool's maximum size.")
        if data.get("target_ready", 0) > data.get("max_size", 0):
            self.add_error("target_ready", "The target cannot be above the pool's maximum size.")
        return data


class PoolScheduleForm(forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        choices=[
            (1, "Mon"),
            (2, "Tue"),
            (3, "Wed"),
            (4, "Thu"),
            (5, "Fri"),
            (6, "Sat"),
            (7, "Sun"),
        ],
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every day.",
    )

    class Meta:
        model = PoolSchedule
        fields = ["label", "weekdays", "starts", "ends", "target_ready"]
        widgets = {
            "starts": forms.TimeInput(attrs={"type": "time"}),
            "ends": forms.TimeInput(attrs={"type": "time"}),
        }

    def clean(self):
        data = super().clean()
        if data.get("starts") and data.get("starts") == data.get("ends"):
            self.add_error("ends", "The window must not start and end at the same time.")
        return data


class SchedulingPolicyForm(forms.ModelForm):
    class Meta:
        model = SchedulingPolicy
        fields = [
            "max_concurrent_boots",
            "max_boots_per_minute",
            "host_max_concurrent_boots",
            "response_time_factor",
            "max_boot_failures_in_row",
        ]


class RegionForm(forms.ModelForm):
    class Meta:
        model = Region
        fields = ["label", "enabled", "max_concurrent_boots", "place_by_portal", "shared_storage"]


class HostForm(forms.ModelForm):
    agent_url = forms.URLField(
        required=False,
        assume_scheme="http",
        help_text=Host._meta.get_field("agent_url").help_text,
    )

    class Meta:
        model = Host
        fields = ["placement_group", "max_concurrent_boots", "response_ms", "agent_url"]
