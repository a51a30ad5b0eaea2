from rest_framework.permissions import SAFE_METHODS, BasePermission

from core import roles


class HasRole(BasePermission):
    """Allow a request when the user holds one of the roles the view names for its method.

    A view sets `read_roles` (GET/HEAD/OPTIONS) and `write_roles` (everything else); the
    defaults let every role read and data scientists and admins write.
    """

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            allowed = getattr(view, "read_roles", roles.READ_ROLES)
        else:
            allowed = getattr(view, "write_roles", roles.REGISTER_ROLES)
        return roles.has_role(request.user, allowed)
