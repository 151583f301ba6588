"""Staff pages of the maintenance app: tasks (`tasks`), their runs (`runs`) and
guest credentials (`credentials`). Every change goes through an audited service;
the lists are `portal.listing` lists (search, filters, sorting, pages, CSV)."""


def who(request) -> dict:
    """The actor and request id a service records in the audit trail."""
    return {"actor": request.user.get_username(), "request_id": getattr(request, "id", "")}
