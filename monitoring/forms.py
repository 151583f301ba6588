"""Forms of the monitoring pages."""

from django import forms

from cloud.models import SimulatedRegion


class SimulationForm(forms.ModelForm):
    """The faults a simulated region injects."""

    class Meta:
        model = SimulatedRegion
        fields = [
            "boot_seconds_min",
            "boot_seconds_max",
            "boot_failure_rate",
            "api_latency_ms",
            "api_failure_rate",
        ]

    def clean(self):
        data = super().clean()
        for name in ("boot_failure_rate", "api_failure_rate"):
            value = data.get(name)
            if value is not None and not 0 <= value <= 1:
                self.add_error(name, "A share between 0 and 1, e.g. 0.25 for one call in four.")
        low, high = data.get("boot_seconds_min"), data.get("boot_seconds_max")
        if low is not None and low < 0:
            self.add_error("boot_seconds_min", "A boot cannot take less than no time.")
        if low is not None and high is not None and high < low:
            self.add_error(
                "boot_seconds_max", "The longest boot cannot be shorter than the shortest."
            )
        if data.get("api_latency_ms") is not None and data["api_latency_ms"] > 30000:
            self.add_error(
                "api_latency_ms", "At most 30000 ms: longer would only hang the workers."
            )
        return data
