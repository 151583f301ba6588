"""Forms of the pools pages (the fields operators tune)."""

from django import forms

from cloud.models import Host, Region

from .models import FeatureClass, PoolSchedule, SchedulingPolicy, Shift, VMPool


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


WEEKDAY_CHOICES = [
    (1, "Mon"),
    (2, "Tue"),
    (3, "Wed"),
    (4, "Thu"),
    (5, "Fri"),
    (6, "Sat"),
    (7, "Sun"),
]


def weekdays_field() -> forms.TypedMultipleChoiceField:
    return forms.TypedMultipleChoiceField(
        choices=WEEKDAY_CHOICES,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every day.",
    )


class PoolScheduleForm(forms.ModelForm):
    weekdays = weekdays_field()

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


class ShiftForm(forms.ModelForm):
    """A shift to pre-warm for. The label names the pool's calendar window the
    plan writes ("prewarm: <label>"), so it is unique within the pool."""

    weekdays = weekdays_field()

    class Meta:
        model = Shift
        fields = ["pool", "label", "weekdays", "starts_at", "ends_at", "seats"]
        widgets = {
            "starts_at": forms.TimeInput(attrs={"type": "time"}),
            "ends_at": forms.TimeInput(attrs={"type": "time"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pool"].queryset = VMPool.objects.select_related("region").order_by("name")

    def clean(self):
        data = super().clean()
        if data.get("starts_at") and data.get("starts_at") == data.get("ends_at"):
            self.add_error("ends_at", "The shift must not start and end at the same time.")
        return data


class FeatureClassForm(forms.ModelForm):
    """A class's priority: its weight (placement and CPU weight), urgency, CPU cap
    and boost. The name stays: the demo, scripts and the API refer to it."""

    class Meta:
        model = FeatureClass
        fields = ["label", "weight", "urgency", "cpu_cap_percent", "boost_factor"]
        labels = {"cpu_cap_percent": "CPU cap (%)"}


class FeatureClassCreateForm(FeatureClassForm):
    class Meta(FeatureClassForm.Meta):
        fields = ["name", *FeatureClassForm.Meta.fields]
