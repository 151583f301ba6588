"""What every page's template needs to know about the signed-in user's role, to
show only the links and buttons that role may use."""

from .roles import Role, user_role


def role(request) -> dict:
    current = user_role(getattr(request, "user", None))
    level = current or 0
    return {
        "role": current,
        "can": {
            "view": level >= Role.VIEWER,
            "helpdesk": level >= Role.HELPDESK,
            "operate": level >= Role.OPERATOR,
            "administer": level >= Role.ADMINISTRATOR,
        },
    }
