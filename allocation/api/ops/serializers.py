"""Serializers of the ops API for allocation: allocators, terminals, explain."""

from django.contrib.auth import get_user_model
from rest_framework import serializers

from allocation.choices import BindingPolicy
from allocation.matching import normalize_dn
from allocation.models import Allocator, Site, Terminal
from allocation.selectors import allocator_shadowed_by
from allocation.services.allocators import allocator_default_conflict
from allocation.services.terminals import MAC_ADDRESS, SERIAL
from pools.models import VMPool


def short_text() -> serializers.CharField:
    return serializers.CharField(max_length=64)


class GroupNamesField(serializers.ListField):
    """An allocator's groups, by name."""

    def get_attribute(self, instance):
        return sorted(group.name for group in instance.groups.all())


class OrderedPoolsField(serializers.ListField):
    """An allocator's pools, by name, in the order they are drawn from."""

    def get_attribute(self, instance):
        return [link.pool for link in instance.pool_links.all()]


class AllocatorSerializer(serializers.ModelSerializer):
    groups = GroupNamesField(child=serializers.CharField(max_length=150), required=False)
    sites = serializers.SlugRelatedField(
        slug_field="name", queryset=Site.objects.all(), many=True, required=False
    )
    pools = OrderedPoolsField(
        child=serializers.SlugRelatedField(slug_field="name", queryset=VMPool.objects.all()),
        help_text="Pool names, in the order they are drawn from.",
    )
    terminal_tags = serializers.ListField(child=short_text(), required=False)
    ou_subtrees = serializers.ListField(child=serializers.CharField(max_length=512), required=False)
    binding_policy = serializers.ChoiceField(choices=BindingPolicy.choices, required=False)
    shadowed_by = serializers.SerializerMethodField(
        help_text="Allocators tried earlier that match every login this one matches."
    )

    class Meta:
        model = Allocator
        fields = [
            "id",
            "name",
            "priority",
            "enabled",
            "is_default",
            "groups",
            "sites",
            "terminal_tags",
            "ou_subtrees",
            "binding_policy",
            "pools",
            "shadowed_by",
        ]
        # The one-default constraint is checked in validate(), with a clearer message.
        extra_kwargs = {"is_default": {"validators": []}}

    def get_shadowed_by(self, instance) -> list[str]:
        return [a.name for a in allocator_shadowed_by(allocator=instance)]

    def validate_pools(self, pools):
        if not pools:
            raise serializers.ValidationError("An allocator needs at least one pool.")
        if len(set(pools)) != len(pools):
            raise serializers.ValidationError("A pool is listed twice.")
        return pools

    def validate_ou_subtrees(self, subtrees):
        for subtree in subtrees:
            if not all("=" in part for part in subtree.split(",")):
                raise serializers.ValidationError(f"{subtree!r} is not a DN.")
        return [normalize_dn(s) for s in subtrees]

    def validate(self, attrs):
        is_default = attrs.get("is_default", getattr(self.instance, "is_default", False))
        other = allocator_default_conflict(is_default=is_default, allocator=self.instance)
        if other is not None:
            raise serializers.ValidationError(
                {"is_default": f"{other.name!r} is already the default allocator."}
            )
        return attrs


class TerminalSerializer(serializers.ModelSerializer):
    site = serializers.SlugRelatedField(
        slug_field="name", queryset=Site.objects.all(), required=False, allow_null=True
    )
    tags = serializers.ListField(child=short_text(), required=False)

    class Meta:
        model = Terminal
        fields = [
            "id",
            "serial",
            "mac_address",
            "site",
            "seat",
            "tags",
            "status",
            "enabled",
            "last_seen_at",
            "last_ip",
        ]
        read_only_fields = ["last_seen_at", "last_ip"]

    def validate_serial(self, value):
        if not SERIAL.match(value):
            raise serializers.ValidationError(
                "Letters, digits and . _ : - only, 64 characters at most."
            )
        return value

    def validate_mac_address(self, value):
        if value and not MAC_ADDRESS.match(value):
            raise serializers.ValidationError("Not a MAC address (aa:bb:cc:dd:ee:ff).")
        return value


class EnrollSerializer(serializers.Serializer):
    site = serializers.SlugRelatedField(slug_field="name", queryset=Site.objects.all())
    seat = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=short_text(), required=False)


class ImportSerializer(serializers.Serializer):
    csv = serializers.CharField(
        max_length=2_000_000, trim_whitespace=False, help_text="The CSV text, header row first."
    )


class ImportRowSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    serial = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["created", "updated", "refused"])
    reason = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    refused = serializers.IntegerField()
    rows = ImportRowSerializer(many=True)


class ExplainQuerySerializer(serializers.Serializer):
    user = serializers.CharField(max_length=150)
    terminal = serializers.CharField(max_length=64, required=False, allow_blank=True)

    def validate_user(self, value):
        user = get_user_model().objects.filter(username=value).first()
        if user is None:
            raise serializers.ValidationError(f"There is no user {value!r}.")
        return user

    def validate_terminal(self, value):
        if not value:
            return None
        terminal = Terminal.objects.filter(serial=value).select_related("site").first()
        if terminal is None:
            raise serializers.ValidationError(f"There is no terminal {value!r}.")
        return terminal


class VerdictSerializer(serializers.Serializer):
    allocator = serializers.CharField(source="allocator.name")
    priority = serializers.IntegerField(source="allocator.priority")
    is_default = serializers.BooleanField(source="allocator.is_default")
    matched = serializers.BooleanField()
    serves = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())


class ExplainSerializer(serializers.Serializer):
    user = serializers.CharField()
    terminal = serializers.CharField(allow_null=True)
    groups = serializers.ListField(child=serializers.CharField())
    dn = serializers.CharField(allow_blank=True)
    site = serializers.CharField(allow_null=True)
    terminal_tags = serializers.ListField(child=serializers.CharField())
    served_by = serializers.CharField(allow_null=True)
    pools = serializers.ListField(child=serializers.CharField())
    rules = VerdictSerializer(many=True)
    bindings = serializers.ListField(child=serializers.DictField())
