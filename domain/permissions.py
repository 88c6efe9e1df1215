"""Who may do what to a project's jobs (CONTRACT.md sections 2, 3 and 4).

A user holds one role per project. Superusers may do everything; deleting a job is theirs
alone, as in Antenna. Anonymous callers may only read jobs of projects that are not drafts.
"""

from dataclasses import dataclass, field
from enum import StrEnum

from domain.job_types import JOB_TYPE_NAMES


class ProjectRole(StrEnum):
    VIEWER = "viewer"
    MEMBER = "member"
    WORKER = "worker"
    OWNER = "owner"


RUN_ANY = frozenset(f"run_{key}_job" for key in JOB_TYPE_NAMES) | {"run_single_image_ml_job"}
WORKER = frozenset(f"{verb}_{key}_job" for verb in ("tasks", "result") for key in JOB_TYPE_NAMES)

# Every role reads the project's draft jobs and their history, which names who did what:
# that is for the project's people, not for anonymous readers.
READ = frozenset({"view_draft", "view_history"})

ROLE_PERMISSIONS: dict[ProjectRole, frozenset[str]] = {
    ProjectRole.VIEWER: READ,
    ProjectRole.MEMBER: READ | {"create_job", "update_job"} | RUN_ANY,
    ProjectRole.WORKER: READ | WORKER,
    ProjectRole.OWNER: READ | {"create_job", "update_job", "change_project"} | RUN_ANY | WORKER,
}


@dataclass(frozen=True)
class User:
    id: int
    email: str
    is_superuser: bool = False
    roles: dict[int, ProjectRole] = field(default_factory=dict)

    def can(self, permission: str, project_id: int) -> bool:
        if self.is_superuser:
            return True
        role = self.roles.get(project_id)
        return role is not None and permission in ROLE_PERMISSIONS[role]


ANONYMOUS = User(id=0, email="anonymous")


def run_permission(job_type_key: str, single_image: bool) -> str:
    """The permission that run, cancel and retry check; single-image ML jobs have their own."""
    return "run_single_image_ml_job" if single_image else f"run_{job_type_key}_job"


def job_permissions(
    user: User, project_id: int, job_type_key: str, single_image: bool
) -> list[str]:
    """A job's `user_permissions` for this user (CONTRACT.md section 4)."""
    if user.is_superuser:
        custom = ["run", "run_single_image"] if job_type_key == "ml" else ["run"]
        return ["update", "delete", *custom]
    granted = []
    if user.can("update_job", project_id):
        granted.append("update")
    if user.can("delete_job", project_id):
        granted.append("delete")
    if user.can(run_permission(job_type_key, single_image), project_id):
        granted.append("run")
    return granted


def may_see(user: User, project_id: int, draft: bool) -> bool:
    return not draft or user.can("view_draft", project_id)
