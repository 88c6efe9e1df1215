"""Token authentication (`Authorization: Token <key>`) and permission checks, as DRF answers."""

from api.errors import ApiError
from domain.permissions import ANONYMOUS, User
from infra.users import Users

CHALLENGE = {"WWW-Authenticate": "Token"}


def caller(users: Users, authorization: str | None) -> User:
    """The user a request comes from; anonymous without a header, 401 for a bad one."""
    if not authorization:
        return ANONYMOUS
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "token":
        return ANONYMOUS  # another scheme is not ours to judge, as DRF's TokenAuthentication
    key = key.strip()
    if not key or " " in key:
        raise ApiError(401, {"detail": "Invalid token header."}, CHALLENGE)
    user = users.by_token(key)
    if user is None:
        raise ApiError(401, {"detail": "Invalid token."}, CHALLENGE)
    return user


def require(user: User, permission: str, project_id: int) -> None:
    """401 for anonymous callers, 403 for users without the permission on the project."""
    if user is ANONYMOUS:
        detail = "Authentication credentials were not provided."
        raise ApiError(401, {"detail": detail}, CHALLENGE)
    if not user.can(permission, project_id):
        raise ApiError(403, {"detail": "You do not have permission to perform this action."})
