"""Serializers of the maintenance ops API. A task's rules are the service's own
(`task_validate`); secrets are write-only and come back only as "set or not"."""

import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from allocation.models import Allocator
from pools.models import VM, VMPool

from ..models import GuestCredential, MaintenanceRun, MaintenanceTask, RunItem, RunLog
from ..selectors import run_counts, task_active_run
from ..services import task_validate
from ..services.tasks import TAG_MAX_LENGTH, TASK_DESCRIPTION_FIELDS, TASK_POLICY_FIELDS


class GuestCredentialSerializer(serializers.ModelSerializer):
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="Write-only. Empty or absent: keep the stored one.",
    )
    private_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        help_text="Write-only (SSH, PEM or OpenSSH format). Empty or absent: keep the stored one.",
    )
    clear_password = serializers.BooleanField(write_only=True, required=False, default=False)
    clear_private_key = serializers.BooleanField(write_only=True, required=False, default=False)
    password_set = serializers.BooleanField(read_only=True)
    private_key_set = serializers.BooleanField(read_only=True)

    class Meta:
        model = GuestCredential
        fields = [
            "id",
            "name",
            "transport",
            "username",
            "port",
            "ssh_host_key",
            "winrm_auth",
            "winrm_https",
            "winrm_verify_tls",
            "package_command",
            "password",
            "private_key",
            "clear_password",
            "clear_private_key",
            "password_set",
            "private_key_set",
        ]


class MaintenanceTaskSerializer(serializers.ModelSerializer):
    pool = serializers.SlugRelatedField(
        slug_field="name",
        queryset=VMPool.objects.all(),
        required=False,
        allow_null=True,
        help_text="The pool an image roll-out replaces the VMs of, by name.",
    )
    target_pools = serializers.SlugRelatedField(
        slug_field="name", queryset=VMPool.objects.all(), many=True, required=False
    )
    target_vms = serializers.SlugRelatedField(
        slug_field="name", queryset=VM.objects.all(), many=True, required=False
    )
    target_hosts = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False
    )
    target_allocators = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Allocator.objects.all(),
        many=True,
        required=False,
        help_text="Allocators, by name: the VMs bound under them and the idle VMs of their pools.",
    )
    target_tags = serializers.ListField(
        child=serializers.CharField(max_length=TAG_MAX_LENGTH),
        required=False,
        help_text="Terminal tags: the VMs bound to, or in a session at, a terminal tagged so.",
    )
    credential = serializers.SlugRelatedField(
        slug_field="name", queryset=GuestCredential.objects.all(), required=False, allow_null=True
    )
    active_run = serializers.SerializerMethodField(help_text="The run under way, if any.")

    class Meta:
        model = MaintenanceTask
        fields = [
            "id",
            *TASK_DESCRIPTION_FIELDS,
            "target_pools",
            "target_hosts",
            "target_vms",
            "target_allocators",
            "target_tags",
            *TASK_POLICY_FIELDS,
            "active_run",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_by", "created_at", "updated_at"]

    def get_active_run(self, task) -> int | None:
        run = task_active_run(task)
        return run.pk if run else None

    def validate(self, attrs):
        fields = dict(attrs)
        pools = fields.pop("target_pools", None)
        vms = fields.pop("target_vms", None)
        allocators = fields.pop("target_allocators", None)
        task = copy.copy(self.instance) if self.instance else MaintenanceTask()
        for name, value in fields.items():
            setattr(task, name, value)
        if pools is None:
            pools = list(self.instance.target_pools.all()) if self.instance else []
        if vms is None:
            vms = list(self.instance.target_vms.all()) if self.instance else []
        if allocators is None:
            allocators = list(self.instance.target_allocators.all()) if self.instance else []
        try:
            task_validate(
                task=task,
                target_pools=pools,
                target_vms=vms,
                target_allocators=allocators,
                previous_run_at=self.instance.run_at if self.instance else None,
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs


class MaintenanceRunSerializer(serializers.ModelSerializer):
    task = serializers.SlugRelatedField(slug_field="name", read_only=True)
    task_id = serializers.IntegerField(read_only=True)
    pool = serializers.SlugRelatedField(slug_field="name", read_only=True)
    counts = serializers.SerializerMethodField(
        help_text="VMs by status: total, pending, running, succeeded, failed, skipped."
    )
    percent = serializers.SerializerMethodField(help_text="Share of the VMs finished.")

    class Meta:
        model = MaintenanceRun
        fields = [
            "id",
            "task",
            "task_id",
            "status",
            "trigger",
            "started_by",
            "spec",
            "created_at",
            "started_at",
            "finished_at",
            "advanced_at",
            "current_batch",
            "next_batch_at",
            "halt_reason",
            "pool",
            "previous_image",
            "new_image",
            "image_history",
            "rollback_of",
            "counts",
            "percent",
        ]
        read_only_fields = fields

    def get_counts(self, run) -> dict[str, int]:
        return run_counts(run)

    def get_percent(self, run) -> int:
        counts = run_counts(run)
        finished = counts["succeeded"] + counts["failed"] + counts["skipped"]
        return round(100 * finished / counts["total"]) if counts["total"] else 100


class RunItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = RunItem
        fields = [
            "id",
            "vm",
            "vm_name",
            "status",
            "phase",
            "batch",
            "attempts",
            "note",
            "error",
            "exit_code",
            "output",
            "queued_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class RunLogSerializer(serializers.ModelSerializer):
    vm_name = serializers.CharField(source="item.vm_name", default="", read_only=True)

    class Meta:
        model = RunLog
        fields = ["created_at", "level", "vm_name", "message"]
        read_only_fields = fields
