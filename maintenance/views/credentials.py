"""The guest credential pages, for administrators only. A stored password or
private key is never sent back to a browser, not even encrypted: the list reads
whether each is set from the database without loading it, and the form's secret
fields are write-only."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import BooleanField, Count, ExpressionWrapper, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from portal.listing import Column, Filter, Listing, listing_response, yes_no_filter
from portal.roles import Role, role_required

from ..choices import GuestTransport
from ..forms import CredentialForm
from ..models import GuestCredential
from ..services import credential_save
from . import who

SECRET_FIELDS = ("password_encrypted", "private_key_encrypted")


def _set(value: bool) -> str:
    return "set" if value else "not set"


def _is_set(field: str) -> ExpressionWrapper:
    return ExpressionWrapper(~Q(**{field: ""}), output_field=BooleanField())


class CredentialListing(Listing):
    title = "Guest credentials"
    noun = "credentials"
    columns = [
        Column("name", "Name", url=lambda c: reverse("maintenance:credential-edit", args=[c.pk])),
        Column("transport", "Transport"),
        Column("username", "User"),
        Column("port", "Port", value=lambda c: c.port or "default"),
        Column("has_password", "Password", value=lambda c: _set(c.has_password)),
        Column("has_private_key", "Private key", value=lambda c: _set(c.has_private_key)),
        Column(
            "ssh_host_key", "Host key pinned", value=lambda c: "yes" if c.ssh_host_key else "no"
        ),
        Column("task_count", "Tasks"),
        Column("updated_at", "Changed"),
    ]
    filters = [
        Filter("transport", "Transport", GuestTransport.choices),
        yes_no_filter("password", "Password set", "has_password"),
        yes_no_filter("private_key", "Private key set", "has_private_key"),
    ]
    search_fields = ["name", "username"]
    search_placeholder = "Name or user"
    default_sort = "name"
    row_template = "maintenance/includes/credential_row.html"
    csv_filename = "guest-credentials"

    def get_queryset(self):
        return GuestCredential.objects.defer(*SECRET_FIELDS).annotate(
            has_password=_is_set("password_encrypted"),
            has_private_key=_is_set("private_key_encrypted"),
            task_count=Count("tasks"),
        )


@role_required(Role.ADMINISTRATOR)
def credential_list(request):
    return listing_response(request, CredentialListing, template="maintenance/credential_list.html")


@role_required(Role.ADMINISTRATOR)
def credential_edit(request, pk=None):
    credential = get_object_or_404(GuestCredential, pk=pk) if pk else None
    form = CredentialForm(request.POST or None, instance=credential)
    if request.method == "POST" and form.is_valid():
        try:
            saved = credential_save(
                credential=credential, **form.service_arguments(), **who(request)
            )
        except ValidationError as exc:
            # The service checks the whole credential again; show why, keep the form.
            found = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
            for field, errors in found.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, f"Saved the credential {saved.name}.")
            return redirect("maintenance:credential-list")
    tasks = credential.tasks.order_by("name") if credential else []
    return render(
        request,
        "maintenance/credential_form.html",
        {"form": form, "credential": credential, "tasks": tasks},
    )
