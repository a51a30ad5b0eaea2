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


class AuditedDoorMixin:
    # A request refused at the door (HasRole) is audited, in its own transaction: the request
    # fails, the record of the attempt must not. (A comment, not a docstring: the OpenAPI
    # schema would show it as every view's description.)

    def permission_denied(self, request, message=None, code=None):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            from core import audit

            audit.record_on_commit_safe(
                action="permission.denied", actor=user, subject=None,
                after={"attempted": f"{request.method} {request.path}"},
                reason="no role for this")
        super().permission_denied(request, message=message, code=code)
