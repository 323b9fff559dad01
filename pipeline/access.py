"""Who may do what on the desk: three roles, deny by default. Pure: no I/O.

approvers (`approval.authorized_users` / `authorized_usergroups`): decide signals, resume trading or a venue
  ⊇ operators (`access.operators`): run cycles, pause, halt
  ⊇ viewers (`access.viewers`): status, positions, balance, App Home
`/desk help` is for everyone. A role is granted by a user id listed for it, or by membership of a user group
listed for it; the front end resolves membership (fresh for anything that moves money or state).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .config import AccessConfig, ApprovalConfig


class Role(enum.IntEnum):
    NOBODY = 0
    VIEWER = 1
    OPERATOR = 2
    APPROVER = 3


class Action(str, enum.Enum):
    VIEW = "view"
    SCAN = "scan"
    PAUSE = "pause"
    HALT = "halt"
    APPROVE = "approve"
    REJECT = "reject"
    RESUME = "resume"
    RESUME_ORDERS = "resume_orders"
    CLOSE = "close"  # propose an exit for a held position (its order still needs an approver's Approve)

    @property
    def needs(self) -> Role:
        return NEEDED[self]

    @property
    def moves_state(self) -> bool:
        """Anything but looking: group membership is read afresh for it."""
        return self is not Action.VIEW


NEEDED: dict[Action, Role] = {
    Action.VIEW: Role.VIEWER,
    Action.SCAN: Role.OPERATOR, Action.PAUSE: Role.OPERATOR, Action.HALT: Role.OPERATOR, Action.CLOSE: Role.OPERATOR,
    Action.APPROVE: Role.APPROVER, Action.REJECT: Role.APPROVER, Action.RESUME: Role.APPROVER,
    Action.RESUME_ORDERS: Role.APPROVER,
}

# What each refusal tells the user: what they tried, and which list an admin would add them to.
WHAT = {Action.VIEW: "see the desk's status, positions and balance", Action.SCAN: "run trading cycles",
        Action.PAUSE: "pause the desk", Action.HALT: "halt the desk", Action.APPROVE: "approve trade signals",
        Action.REJECT: "reject trade signals", Action.RESUME: "resume trading",
        Action.RESUME_ORDERS: "resume orders to a venue", Action.CLOSE: "propose closing a position"}
LISTS = {Role.VIEWER: "access.viewers", Role.OPERATOR: "access.operators",
         Role.APPROVER: "approval.authorized_users"}


@dataclass(frozen=True)
class AccessPolicy:
    approval: ApprovalConfig
    access: AccessConfig

    def listed_role(self, user_id: str) -> Role:
        """The role a user holds by their own id, without asking about groups."""
        if user_id in self.approval.authorized_users:
            return Role.APPROVER
        if user_id in self.access.operators:
            return Role.OPERATOR
        if user_id in self.access.viewers:
            return Role.VIEWER
        return Role.NOBODY

    def group_roles(self) -> dict[str, Role]:
        """User group id -> the highest role it grants."""
        roles: dict[str, Role] = {}
        for role, groups in ((Role.VIEWER, self.access.viewers), (Role.OPERATOR, self.access.operators),
                             (Role.APPROVER, self.approval.authorized_usergroups)):
            for group in groups:
                if group.startswith("S"):
                    roles[group] = max(roles.get(group, Role.NOBODY), role)
        return roles

    def groups_to_check(self, user_id: str, action: Action) -> tuple[str, ...]:
        """The groups whose membership could let this user do this; none when their id already does."""
        if self.listed_role(user_id) >= action.needs:
            return ()
        return tuple(sorted(g for g, role in self.group_roles().items() if role >= action.needs))

    def role(self, user_id: str, groups: frozenset[str] = frozenset()) -> Role:
        by_group = [role for group, role in self.group_roles().items() if group in groups]
        return max([self.listed_role(user_id), *by_group])

    def refusal(self, action: Action, *, lookup_failed: str = "") -> str:
        sentence = (f"You are not authorized to {WHAT[action]} on this desk; an admin can add you (or a user group "
                    f"of yours) to `{LISTS[action.needs]}`.")
        if lookup_failed:
            sentence += (f" Your user group membership could not be checked ({lookup_failed}), so only users listed "
                         "by id are let through right now; try again in a moment.")
        return sentence
