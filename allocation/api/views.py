"""The thin-client API, version 1: machine-to-machine, JSON only, every error as
`{"error", "detail"}`. Views parse input and shape output; the service decides."""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from allocation.services import desktop_connect

from .serializers import (
    ConnectInputSerializer,
    ConnectPreparingSerializer,
    ConnectReadySerializer,
    ErrorSerializer,
)


class ThinClientView(APIView):
    """Thin clients authenticate with the credentials in the body, not a session:
    no session authentication, so no CSRF token either."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]


class ConnectView(ThinClientView):
    @extend_schema(
        tags=["thin-client v1"],
        request=ConnectInputSerializer,
        responses={
            200: ConnectReadySerializer,
            202: ConnectPreparingSerializer,
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            503: OpenApiResponse(ErrorSerializer, description="Cloud or directory down."),
        },
        summary="Log a user in at a terminal and get their desktop",
    )
    def post(self, request):
        payload = ConnectInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = desktop_connect(
            username=payload.validated_data["username"],
            password=payload.validated_data["password"],
            terminal_serial=payload.validated_data["terminal"],
            request=request._request,
            request_id=getattr(request._request, "id", ""),
            source_ip=request.META.get("REMOTE_ADDR"),
            retry_after=settings.THIN_CLIENT_RETRY_AFTER,
        )
        if result.status == "preparing":
            return Response(
                {"status": "preparing", "retry_after": result.retry_after},
                status=status.HTTP_202_ACCEPTED,
                headers={"Retry-After": str(result.retry_after)},
            )
        session, console = result.session, result.console
        return Response(
            {
                "status": "ready",
                "session": str(session.pk),
                "desktop": {
                    "id": session.vm.pk,
                    "name": session.vm.name,
                    "pool": session.vm.pool.name,
                    "protocol": "spice",
                    "host": console.host,
                    "port": console.port,
                    "tls_port": console.tls_port,
                    "password": console.password,
                    "expires_at": console.expires_at,
                },
            }
        )
