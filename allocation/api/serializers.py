"""Input and output of the thin-client API (v1). The output serializers describe
the contract for the OpenAPI schema; changing a field here breaks thin clients."""

from rest_framework import serializers


class ConnectInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False)
    terminal = serializers.CharField(max_length=64)


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


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.CharField()
