"""Input and output of the thin-client API (v1). The output serializers describe
the contract for the OpenAPI schema; changing a field here breaks thin clients."""

import unicodedata

from rest_framework import serializers


def plain_text(value: str) -> str:
    """Refuse text that no directory or database should be handed: control
    characters and lone surrogates (which cannot even be encoded as UTF-8)."""
    for char in value:
        if unicodedata.category(char) in {"Cc", "Cs"}:
            raise serializers.ValidationError("Contains a control or invalid character.")
    return value


class ConnectInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, validators=[plain_text])
    password = serializers.CharField(max_length=256, trim_whitespace=False, validators=[plain_text])
    terminal = serializers.CharField(max_length=64, validators=[plain_text])


class DisconnectInputSerializer(serializers.Serializer):
    session = serializers.UUIDField()


class HeartbeatInputSerializer(serializers.Serializer):
    terminal = serializers.CharField(max_length=64, validators=[plain_text])
    session = serializers.UUIDField()


class DesktopSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    pool = serializers.CharField()
    protocol = serializers.CharField()
    host = serializers.CharField()
    port = serializers.IntegerField()
    tls_port = serializers.IntegerField(allow_null=True)
    password = serializers.CharField()
    expires_at = serializers.DateTimeField()


class ConnectReadySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ready"])
    session = serializers.UUIDField()
    desktop = DesktopSerializer()


class ConnectPreparingSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["preparing"])
    retry_after = serializers.IntegerField()


class DisconnectOutputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["disconnected"])
    session = serializers.UUIDField()


class HeartbeatOutputSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["none", "reconnect"])


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.CharField()
