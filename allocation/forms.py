"""Forms of the allocation pages. Validation is the ops API's own (its serializers),
so a rule refused by the API is refused by the page with the same words."""

from django import forms

from allocation.choices import BindingPolicy
from allocation.models import Site
from pools.models import VMPool


def split_list(text: str, separator: str = ",") -> list[str]:
    return [item.strip() for item in text.split(separator) if item.strip()]


class AllocatorForm(forms.Form):
    name = forms.CharField(max_length=120)
    priority = forms.IntegerField(min_value=0, initial=100, help_text="Lower is tried first.")
    enabled = forms.BooleanField(required=False, initial=True)
    is_default = forms.BooleanField(required=False, label="Default allocator")
    groups = forms.CharField(
        required=False, help_text="Group names, comma-separated; any of them matches."
    )
    sites = forms.ModelMultipleChoiceField(
        queryset=Site.objects.all(), required=False, to_field_name="name"
    )
    terminal_tags = forms.CharField(
        required=False, help_text="Tags, comma-separated; the terminal needs all of them."
    )
    ou_subtrees = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Directory subtrees (DNs), one per line; any of them matches.",
    )
    binding_policy = forms.ChoiceField(choices=BindingPolicy.choices)
    pools = forms.CharField(
        help_text="Pool names, comma-separated, in the order they are drawn from.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = ", ".join(VMPool.objects.values_list("name", flat=True))
        self.fields["pools"].help_text += f" Pools: {names}."

    def api_data(self) -> dict:
        """The cleaned form in the shape the ops API takes."""
        data = self.cleaned_data
        return {
            "name": data["name"],
            "priority": data["priority"],
            "enabled": data["enabled"],
            "is_default": data["is_default"],
            "groups": split_list(data["groups"]),
            "sites": [site.name for site in data["sites"]],
            "terminal_tags": split_list(data["terminal_tags"]),
            "ou_subtrees": split_list(data["ou_subtrees"], "\n"),
            "binding_policy": data["binding_policy"],
            "pools": split_list(data["pools"]),
        }

    @classmethod
    def initial_from(cls, representation: dict) -> dict:
        return {
            **representation,
            "groups": ", ".join(representation["groups"]),
            "terminal_tags": ", ".join(representation["terminal_tags"]),
            "ou_subtrees": "\n".join(representation["ou_subtrees"]),
            "pools": ", ".join(representation["pools"]),
        }


class EnrollForm(forms.Form):
    site = forms.ModelChoiceField(queryset=Site.objects.all(), to_field_name="name")
    seat = forms.CharField(max_length=64, required=False)


class TerminalImportForm(forms.Form):
    csv_file = forms.FileField(
        required=False,
        label="CSV file",
        help_text="Header row: serial, mac_address, site, seat, tags (;-separated), enabled.",
    )
    csv_text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}))

    def clean(self):
        data = super().clean()
        upload = data.get("csv_file")
        if upload:
            if upload.size > 2_000_000:
                raise forms.ValidationError("The file is larger than 2 MB; split it.")
            try:
                data["csv"] = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise forms.ValidationError("The file is not UTF-8 text.") from exc
        elif data.get("csv_text"):
            data["csv"] = data["csv_text"]
        else:
            raise forms.ValidationError("Choose a CSV file or paste CSV text.")
        return data
