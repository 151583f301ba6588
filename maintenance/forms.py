"""Forms of the maintenance pages. A task's rules are the service's own
(`task_validate`), so the page and the API refuse the same things with the same
words; secrets are write-only fields that never carry a stored value back."""

from django import forms
from django.core.exceptions import ValidationError

from allocation.models import Allocator
from pools.models import VM, VMPool

from .models import GuestCredential, MaintenanceTask
from .services import task_validate
from .services.tasks import TASK_DESCRIPTION_FIELDS, TASK_POLICY_FIELDS


def split_names(text: str) -> list[str]:
    return [name for name in text.replace(",", " ").split() if name]


class TaskForm(forms.ModelForm):
    target_hosts_text = forms.CharField(
        required=False,
        label="Target hosts",
        help_text="Host names, separated by commas or spaces: every VM running on them.",
    )
    target_vms_text = forms.CharField(
        required=False,
        label="Target VMs",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="VM names, separated by commas or spaces.",
    )
    target_tags_text = forms.CharField(
        required=False,
        label="Target terminal tags",
        help_text=(
            "Terminal tags, separated by commas or spaces: every VM bound to, or in a "
            "session at, a terminal carrying one of them."
        ),
    )

    class Meta:
        model = MaintenanceTask
        fields = [
            *TASK_DESCRIPTION_FIELDS,
            "target_pools",
            "target_allocators",
            *TASK_POLICY_FIELDS,
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "script": forms.Textarea(attrs={"rows": 6, "class": "code"}),
            "run_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "window_start": forms.TimeInput(attrs={"type": "time"}),
            "window_end": forms.TimeInput(attrs={"type": "time"}),
            "target_pools": forms.CheckboxSelectMultiple,
            "target_allocators": forms.CheckboxSelectMultiple,
        }
        labels = {"pool": "Roll-out pool", "window_ends_next_day": "Window ends the next day"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target_pools"].queryset = VMPool.objects.order_by("name")
        self.fields["pool"].queryset = VMPool.objects.order_by("name")
        self.fields["target_allocators"].queryset = Allocator.objects.order_by("name")
        task = self.instance
        if task.pk and not self.is_bound:
            self.initial["target_hosts_text"] = ", ".join(task.target_hosts)
            self.initial["target_tags_text"] = ", ".join(task.target_tags)
            self.initial["target_vms_text"] = ", ".join(
                task.target_vms.order_by("name").values_list("name", flat=True)
            )

    def clean_target_vms_text(self) -> list[VM]:
        names = split_names(self.cleaned_data["target_vms_text"])
        vms = list(VM.objects.filter(name__in=names))
        unknown = sorted(set(names) - {vm.name for vm in vms})
        if unknown:
            raise ValidationError(f"No VM named {', '.join(unknown)}.")
        return vms

    def clean_target_hosts_text(self) -> list[str]:
        return split_names(self.cleaned_data["target_hosts_text"])

    def clean_target_tags_text(self) -> list[str]:
        return list(dict.fromkeys(split_names(self.cleaned_data["target_tags_text"])))

    def _post_clean(self):
        # The model's own clean() runs in super(); the targets are checked by
        # task_validate, which needs them all.
        super()._post_clean()
        if self.errors:
            return
        task = self.instance
        task.target_hosts = self.cleaned_data.get("target_hosts_text", [])
        task.target_tags = self.cleaned_data.get("target_tags_text", [])
        previous = MaintenanceTask.objects.filter(pk=task.pk).values_list("run_at", flat=True)
        try:
            task_validate(
                task=task,
                target_pools=list(self.cleaned_data.get("target_pools") or []),
                target_vms=self.cleaned_data.get("target_vms_text", []),
                target_allocators=list(self.cleaned_data.get("target_allocators") or []),
                previous_run_at=previous.first() if task.pk else None,
            )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                target = field if field in self.fields else None
                if field in ("target_hosts", "target_tags"):
                    target = f"{field}_text"
                for message in messages:
                    if message not in self.errors.get(target or "__all__", []):
                        self.add_error(target, message)

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        targets = ("target_pools", "target_allocators")
        fields = {name: data[name] for name in self.Meta.fields if name not in targets}
        fields["target_hosts"] = data["target_hosts_text"]
        fields["target_tags"] = data["target_tags_text"]
        return {
            "fields": fields,
            "target_pools": list(data["target_pools"]),
            "target_vms": data["target_vms_text"],
            "target_allocators": list(data["target_allocators"]),
        }


class SecretTextarea(forms.Textarea):
    """A text area that never renders a value: what was typed into it is not
    echoed back when the form comes back with an error."""

    def format_value(self, value):
        return None


class CredentialForm(forms.ModelForm):
    """Secrets are typed in and never shown: empty keeps the stored one."""

    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the stored password.",
    )
    clear_password = forms.BooleanField(required=False, label="Remove the stored password")
    private_key = forms.CharField(
        required=False,
        widget=SecretTextarea(attrs={"rows": 4, "autocomplete": "off"}),
        label="Private key (SSH)",
        help_text="PEM or OpenSSH format. Leave empty to keep the stored key.",
    )
    clear_private_key = forms.BooleanField(required=False, label="Remove the stored private key")

    class Meta:
        model = GuestCredential
        fields = [
            "name",
            "transport",
            "username",
            "port",
            "ssh_host_key",
            "winrm_auth",
            "winrm_https",
            "winrm_verify_tls",
            "package_command",
        ]
        widgets = {"ssh_host_key": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Never send a stored secret back to a browser, not even encrypted.
        self.fields["private_key"].initial = ""

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        fields = {name: data[name] for name in self.Meta.fields}
        fields["clear_password"] = data["clear_password"]
        fields["clear_private_key"] = data["clear_private_key"]
        return {
            "fields": fields,
            "password": data["password"] or None,
            "private_key": data["private_key"] or None,
        }
