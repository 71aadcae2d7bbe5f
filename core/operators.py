"""Console operators: accounts with argon2 password hashes, lock-out after repeated
failures, and signed session tokens that logging out revokes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from core import links
from core.store import audit
from core.store.db import Database
from core.store.models import Operator

ROLES = ("editor", "approver", "admin")
MAX_FAILURES = 5
LOCK_OUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD = 12
_hasher = PasswordHasher()


class OperatorError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class SignedIn:
    """An operator with a valid session."""

    id: int
    name: str
    role: str


async def add(db: Database, now: datetime, name: str, role: str, password: str) -> None:
    if role not in ROLES:
        raise OperatorError(f"role must be one of {', '.join(ROLES)}")
    if not name.isascii() or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise OperatorError("the name may use letters, digits, '.', '-' and '_'")
    if len(password) < MIN_PASSWORD:
        raise OperatorError(f"the password needs at least {MIN_PASSWORD} characters")
    async with db.session() as session:
        if (await session.execute(select(Operator).where(Operator.name == name))).first():
            raise OperatorError(f"operator {name} exists already")
        session.add(
            Operator(name=name, role=role, password_hash=_hasher.hash(password), created_at=now)
        )
        audit.record(session, now, "cli", "operator.add", name, role)


async def log_in(db: Database, now: datetime, name: str, password: str, key: bytes) -> str | None:
    """A new session token, or None (wrong name or password, or locked out)."""
    async with db.session() as session:
        operator = (
            await session.execute(select(Operator).where(Operator.name == name))
        ).scalar_one_or_none()
        if operator is None:
            _hasher.hash(password)  # take as long as for a real account
            return None
        if operator.locked_until is not None and operator.locked_until > now:
            audit.record(session, now, name, "login.locked")
            return None
        try:
            _hasher.verify(operator.password_hash, password)
        except (VerificationError, InvalidHashError):
            operator.failed_logins += 1
            if operator.failed_logins >= MAX_FAILURES:
                operator.locked_until, operator.failed_logins = now + LOCK_OUT, 0
                audit.record(session, now, name, "login.lockout")
            else:
                audit.record(session, now, name, "login.failed")
            return None
        operator.failed_logins, operator.locked_until = 0, None
        audit.record(session, now, name, "login")
        return links.sign(
            key, f"o{operator.id}v{operator.session_version}", now=now, lifetime=SESSION_LIFETIME
        )


async def signed_in(db: Database, now: datetime, token: str | None, key: bytes) -> SignedIn | None:
    """The operator of a valid, unrevoked session token."""
    subject = links.verify(key, token or "", now=now)
    if subject is None or not subject.startswith("o") or "v" not in subject:
        return None
    operator_id, version = subject[1:].split("v", 1)
    if not (operator_id + version).isascii() or not operator_id.isdigit() or not version.isdigit():
        return None
    async with db.session() as session:
        operator = await session.get(Operator, int(operator_id))
    if operator is None or operator.session_version != int(version):
        return None
    return SignedIn(operator.id, operator.name, operator.role)


async def log_out(db: Database, now: datetime, operator_id: int) -> None:
    """End every session of the operator."""
    async with db.session() as session:
        operator = await session.get(Operator, operator_id)
        if operator is not None:
            operator.session_version += 1
            audit.record(session, now, operator.name, "logout")


async def set_chat(db: Database, operator_name: str, channel: str, user_id: str) -> None:
    """Remember the operator's own chat, for test sends."""
    async with db.session() as session:
        result = await session.execute(select(Operator).where(Operator.name == operator_name))
        operator = result.scalar_one_or_none()
        if operator is None:
            raise OperatorError(f"no operator {operator_name}")
        operator.chat_channel, operator.chat_user_id = channel, user_id
