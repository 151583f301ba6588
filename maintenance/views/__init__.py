"""Staff pages of the maintenance app: tasks (`tasks`), their runs (`runs`) and
guest credentials (`credentials`). Every change goes through an audited service;
the lists are `portal.listing` lists (search, filters, sorting, pages, CSV)."""

from portal.pages import who

__all__ = ["who"]
