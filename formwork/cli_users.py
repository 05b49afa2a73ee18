"""`formwork user …`: create users, set passwords, (de)activate, unlock, sign out
everywhere, and create, list or revoke API tokens. Each change is one transaction with its
security event."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from flask.cli import with_appcontext

from formwork.auth.login import unlock
from formwork.auth.scopes import DEFAULT_SCOPES, SCOPES
from formwork.auth.users import (
    TOKEN_DAYS,
    TOKEN_MAX_DAYS,
    UserError,
    create_token,
    create_user,
    find_user,
    list_tokens,
    logout_everywhere,
    revoke_token,
    set_active,
    set_password,
)
from formwork.context import get_session, kernel
from formwork.runtime.security_events import record_cli_event


def _committed(func: Callable[..., str]) -> Callable[..., None]:
    """Run a user command in one transaction: print its result, or roll back and explain."""

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> None:
        session = get_session()
        try:
            message = func(*args, **kwargs)
        except UserError as exc:
            session.rollback()
            raise click.ClickException(str(exc)) from exc
        session.commit()
        # Users, sessions and tokens changed: no cached principal may outlive that.
        kernel().principals.clear()
        click.echo(message)

    return run


@click.group("user")
def user_group() -> None:
    """Manage users, their sessions and API tokens."""


@user_group.command("create")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--role", "roles", multiple=True, help="Role to give (repeatable).")
@click.option("--display-name", default="")
@with_appcontext
@_committed
def user_create(username: str, password: str, roles: tuple[str, ...], display_name: str) -> str:
    """Create a user with the given roles."""
    user = create_user(get_session(), username, password, roles, display_name)
    record_cli_event(get_session(), "user.created", target=username, roles=list(roles))
    return f"created user {user.username} with roles: {', '.join(roles) or '(none)'}"


@user_group.command("set-password")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
@_committed
def user_set_password(username: str, password: str) -> str:
    """Set a user's password (their sessions end)."""
    session = get_session()
    set_password(session, find_user(session, username), password)
    record_cli_event(session, "password.changed", target=username)
    return f"password of {username} changed; their sessions were signed out"


@user_group.command("deactivate")
@click.argument("username")
@with_appcontext
@_committed
def user_deactivate(username: str) -> str:
    """Stop a user from signing in or using tokens (their records stay)."""
    session = get_session()
    set_active(session, find_user(session, username), False)
    record_cli_event(session, "user.deactivated", target=username)
    return f"{username} deactivated"


@user_group.command("activate")
@click.argument("username")
@with_appcontext
@_committed
def user_activate(username: str) -> str:
    """Let a deactivated user sign in again."""
    session = get_session()
    set_active(session, find_user(session, username), True)
    record_cli_event(session, "user.activated", target=username)
    return f"{username} activated"


@user_group.command("unlock")
@click.argument("username", required=False)
@click.option("--ip", default=None, help="Also (or only) clear the failures of this address.")
@with_appcontext
@_committed
def user_unlock(username: str | None, ip: str | None) -> str:
    """Lift the sign-in lockout of a user (and/or of an address)."""
    session = get_session()
    if username is None and ip is None:
        raise UserError("give a USERNAME, an --ip address, or both")
    if username is not None:
        find_user(session, username)
        unlock(session, username=username)
    if ip is not None:
        unlock(session, ip=ip)
    record_cli_event(session, "user.unlocked", target=username, address=ip)
    return f"unlocked {' and '.join(x for x in (username, ip) if x)}"


@user_group.command("logout-all")
@click.argument("username")
@click.option("--revoke-tokens", is_flag=True, help="Also revoke every API token of the user.")
@with_appcontext
@_committed
def user_logout_all(username: str, revoke_tokens: bool) -> str:
    """Sign a user out of every session (and revoke their tokens when asked)."""
    session = get_session()
    revoked = logout_everywhere(session, find_user(session, username), revoke_tokens)
    record_cli_event(session, "logout.all", target=username, tokens_revoked=revoked)
    suffix = f"; {revoked} token(s) revoked" if revoke_tokens else ""
    return f"every session of {username} was signed out{suffix}"


@user_group.command("token")
@click.argument("username", required=False)
@click.option("--name", default="cli", help="What the token is for.")
@click.option(
    "--days",
    default=TOKEN_DAYS,
    type=click.IntRange(1, TOKEN_MAX_DAYS),
    help=f"Days until it expires (1–{TOKEN_MAX_DAYS}).",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(SCOPES),
    help=f"What it may do (repeatable; default {', '.join(DEFAULT_SCOPES)}).",
)
@click.option("--list", "listing", is_flag=True, help="List the user's tokens instead.")
@click.option("--revoke", type=int, default=None, help="Revoke the token with this id instead.")
@with_appcontext
@_committed
def user_token(
    username: str | None,
    name: str,
    days: int,
    scopes: tuple[str, ...],
    listing: bool,
    revoke: int | None,
) -> str:
    """Create an API bearer token for a user and print it once (or --list, or --revoke ID)."""
    session = get_session()
    if revoke is not None:
        token = revoke_token(session, revoke)
        record_cli_event(session, "token.revoked", token_id=token.id, token_name=token.name)
        return f"token {token.id} ({token.prefix}…) revoked"
    if username is None:
        raise UserError("give the USERNAME the token is for (or --revoke ID)")
    user = find_user(session, username)
    if listing:
        return "\n".join(_token_line(t) for t in list_tokens(session, user)) or "no tokens"
    token_text = create_token(session, user, name, days, scopes or None)
    record_cli_event(
        session, "token.created", target=username, token_name=name, scopes=list(scopes), days=days
    )
    return token_text


def _token_line(token: Any) -> str:
    state = "revoked" if token.revoked_at else "active"
    expires = token.expires_at.date().isoformat() if token.expires_at else "never"
    used = token.last_used_at.isoformat(timespec="minutes") if token.last_used_at else "-"
    scopes = ",".join(token.scopes or DEFAULT_SCOPES)
    return f"{token.id}\t{token.prefix}…\t{token.name}\t{scopes}\t{expires}\t{used}\t{state}"
