"""Accounts and their API tokens: create, list, revoke, rotate, and the lookup every request makes.

A token is 256 random bits shown once; only its sha256 is stored (`token_hash`), so a lost token
cannot be recovered, only replaced (`rotate_token`). `revoke_user` stamps `revoked_at`: from the
next request on, `user_for_token` no longer finds the account (tokens are looked up in the
database on every request and never cached), so a revoked or rotated-away token is refused at
once. Rotating a revoked account gives it a new token and lifts the revocation.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from li2_store.db import changed, db_now
from li2_store.models import Experiment, User


def hash_token(token: str) -> str:
    """The stored form of a token (sha256 hex). Tokens are 256-bit random, so no salt is needed."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh 256-bit URL-safe token."""
    return secrets.token_urlsafe(32)


def create_user(session: Session, name: str, admin: bool = False) -> str:
    """Create a user and return the new token; only its hash is stored, so print it now or lose it."""
    token = new_token()
    session.add(User(name=name, token_hash=hash_token(token), is_admin=bool(admin)))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The account holding `token`, or None when no account does or its account is revoked."""
    return session.scalar(sa.select(User).where(User.token_hash == hash_token(token), User.revoked_at.is_(None)))


@dataclass(frozen=True)
class UserInfo:
    """One account as `li2lab users list` shows it (never its token or hash)."""

    name: str
    is_admin: bool
    created_at: datetime
    revoked_at: datetime | None
    experiments: int


def list_users(session: Session) -> list[UserInfo]:
    """Every account, by name, with its number of experiments."""
    runs = (
        sa.select(sa.func.count(Experiment.id)).where(Experiment.user_id == User.id).correlate(User).scalar_subquery()
    )
    rows = session.execute(
        sa.select(User.name, User.is_admin, User.created_at, User.revoked_at, runs).order_by(User.name)
    ).all()
    return [UserInfo(r[0], bool(r[1]), r[2], r[3], int(r[4])) for r in rows]


def revoke_user(session: Session, name: str) -> bool:
    """Refuse `name`'s token from the next request on; False when there is no such user. The
    account and its runs stay (an admin can still see them); `rotate_token` re-admits it."""
    return bool(changed(session, sa.update(User).where(User.name == name).values(revoked_at=db_now())))


def rotate_token(session: Session, name: str) -> str | None:
    """Give `name` a new token (returned; the old one is refused at once) and lift any revocation;
    None when there is no such user."""
    token = new_token()
    update = sa.update(User).where(User.name == name).values(token_hash=hash_token(token), revoked_at=None)
    return token if changed(session, update) else None
