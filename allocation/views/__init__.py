"""Staff pages of the allocation app: allocator rules, bindings, the terminal
registry and "explain". Writes go through the same services, and validation
through the same serializers, as the ops API."""

from .allocators import allocator_create, allocator_edit, allocator_list
from .bindings import binding_detail, binding_list
from .explain import explain
from .terminals import terminal_detail, terminal_enroll_view, terminal_import, terminal_list

__all__ = [
    "allocator_create",
    "allocator_edit",
    "allocator_list",
    "binding_detail",
    "binding_list",
    "explain",
    "terminal_detail",
    "terminal_enroll_view",
    "terminal_import",
    "terminal_list",
]
