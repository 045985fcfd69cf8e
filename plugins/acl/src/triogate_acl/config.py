"""Settings of the acl plugin."""

from __future__ import annotations

import attrs
import triogate

PREFIXES = ("group:", "role:", "scope:", "consumer:")


def _check(entries: list[str], name: str) -> None:
    for i, e in enumerate(entries):
        if not e or e.endswith(":") or (":" in e and not e.startswith(PREFIXES)):
            raise ValueError(f"{name}[{i}]: expected a group name or group:/role:/scope:/consumer:<name>, got {e!r}")


@attrs.define(frozen=True)
class AclConfig:
    allow: list[str] = triogate.setting(
        factory=list, description="entries of which the caller needs one: group names, role:<r>, scope:<s>, consumer:<name>")
    deny: list[str] = triogate.setting(factory=list, description="entries that refuse the caller (checked before allow)")
    roles_claim: str = triogate.setting("roles", description="claim holding roles (dotted path, e.g. realm_access.roles)")

    def __attrs_post_init__(self) -> None:
        if not self.allow and not self.deny:
            raise ValueError("allow, deny: set at least one")
        _check(self.allow, "allow")
        _check(self.deny, "deny")
