"""The thin-client API, version 1: machine-to-machine, JSON only, every error as
`{"error", "detail"}`. Views parse input and shape output; the services decide."""

import time

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from allocation.services import (
    desktop_connect,
    desktop_console,
    session_active,
    session_disconnect,
    session_heartbeat,
)
from monitoring.connects import connect_record
from monitoring.metrics import CONNECT_SECONDS, CONNECTS
from portal.client_ip import client_ip

from .parsers import SmallJSONParser
from .serializers import (
    ConnectInputSerializer,
    ConnectPreparingSerializer,
    ConnectReadySerializer,
    DisconnectInputSerializer,
    DisconnectOutputSerializer,
    ErrorSerializer,
    HeartbeatInputSerializer,
    HeartbeatOutputSerializer,
)

TAGS = ["thin-client v1"]


def preparing(retry_after: int) -> Response:
    return Response(
        {"status": "preparing", "retry_after": retry_after},
        status=status.HTTP_202_ACCEPTED,
        headers={"Retry-After": str(retry_after)},
    )


class ThinClientView(APIView):
    """Thin clients authenticate with the credentials in the body (or hold a session
    id), not a browser session: no session authentication, so no CSRF token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [SmallJSONParser]

    def validated(self, serializer_class):
        payload = serializer_class(data=self.request.data)
        payload.is_valid(raise_exception=True)
        return payload.validated_data


class ConnectView(ThinClientView):
    def dispatch(self, request, *args, **kwargs):
        """Count every answer by outcome and time it, errors included."""
        started = time.perf_counter()
        self.result = None
        response = super().dispatch(request, *args, **kwargs)
        seconds = time.perf_counter() - started
        CONNECT_SECONDS.observe(seconds)
        outcome = {200: "ready", 202: "preparing"}.get(response.status_code)
        if outcome is None:
            data = getattr(response, "data", None)
            outcome = data.get("error") if isinstance(data, dict) else None
        outcome = outcome or str(response.status_code)
        CONNECTS.labels(outcome).inc()
        self.record(outcome, seconds)
        return response

    def record(self, outcome: str, seconds: float) -> None:
        """One connect record per answer, with what the body said (when it could be
        read) and what the service found."""
        try:
            data = self.request.data
        except Exception:  # an unparseable body, already answered with a 400
            data = None
        fields = data if isinstance(data, dict) else {}
        result = self.result
        connect_record(
            outcome=outcome,
            latency_ms=seconds * 1000,
            username=str(fields.get("username", ""))[:150],
            terminal_serial=str(fields.get("terminal", ""))[:64],
            claimed=result.claimed if result is not None and result.status == "ready" else None,
            pool_id=result.pool_id if result is not None else None,
            site_id=result.site_id if result is not None else None,
        )

    @extend_schema(
        tags=TAGS,
        request=ConnectInputSerializer,
        responses={
            200: ConnectReadySerializer,
            202: ConnectPreparingSerializer,
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            429: ErrorSerializer,
            503: OpenApiResponse(ErrorSerializer, description="Cloud or directory down."),
        },
        summary="Log a user in at a terminal and get their desktop",
    )
    def post(self, request):
        data = self.validated(ConnectInputSerializer)
        result = desktop_connect(
            username=data["username"],
            password=data["password"],
            terminal_serial=data["terminal"],
            request=request._request,
            request_id=getattr(request._request, "id", ""),
            source_ip=client_ip(request),
            retry_after=settings.THIN_CLIENT_RETRY_AFTER,
        )
        self.result = result
        if result.status == "preparing":
            return preparing(result.retry_after)
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


class DisconnectView(ThinClientView):
    @extend_schema(
        tags=TAGS,
        request=DisconnectInputSerializer,
        responses={200: DisconnectOutputSerializer, 400: ErrorSerializer, 404: ErrorSerializer},
        summary="End a desktop session (a floating desktop is released and recycled)",
    )
    def post(self, request):
        data = self.validated(DisconnectInputSerializer)
        session = session_disconnect(
            session_id=data["session"], request_id=getattr(request._request, "id", "")
        )
        return Response({"status": "disconnected", "session": str(session.pk)})


class HeartbeatView(ThinClientView):
    @extend_schema(
        tags=TAGS,
        request=HeartbeatInputSerializer,
        responses={200: HeartbeatOutputSerializer, 400: ErrorSerializer, 404: ErrorSerializer},
        summary="Tell the broker the terminal is alive; learn whether to reconnect",
    )
    def post(self, request):
        data = self.validated(HeartbeatInputSerializer)
        action = session_heartbeat(session_id=data["session"], terminal_serial=data["terminal"])
        return Response({"action": action})


def virt_viewer_file(*, title: str, console) -> str:
    """A connection file for remote-viewer (virt-viewer's format)."""
    lines = [
        "[virt-viewer]",
        "type=spice",
        f"host={console.host}",
        f"port={console.port}",
    ]
    if console.tls_port:
        lines.append(f"tls-port={console.tls_port}")
    lines += [
        f"password={console.password}",
        f"title={title}",
        "delete-this-file=1",
        "fullscreen=1",
        "release-cursor=shift+f12",
        "secure-attention=ctrl+alt+end",
        "",
    ]
    return "\n".join(lines)


class ConsoleFileView(ThinClientView):
    @extend_schema(
        tags=TAGS,
        responses={
            (200, "application/x-virt-viewer"): OpenApiTypes.STR,
            202: ConnectPreparingSerializer,
            404: ErrorSerializer,
            503: ErrorSerializer,
        },
        summary="A remote-viewer connection file for an open session",
    )
    def get(self, request, session_id):
        session = session_active(session_id=session_id)
        console = desktop_console(vm=session.vm)
        if console is None:
            return preparing(settings.THIN_CLIENT_RETRY_AFTER)
        body = virt_viewer_file(title=f"DeskOps: {session.vm.name}", console=console)
        response = HttpResponse(body, content_type="application/x-virt-viewer")
        response["Content-Disposition"] = f'attachment; filename="{session.vm.name}.vv"'
        response["Cache-Control"] = "no-store"
        return response
