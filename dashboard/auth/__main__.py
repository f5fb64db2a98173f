"""Manage accounts and wall-screen device tokens from the command line.

    python -m dashboard.auth add-user NAME --role dispatcher [--role supervisor] [--scope 440304]
                                           [--department "Water Affairs Bureau"] [--password-stdin]
    python -m dashboard.auth set-password NAME [--password-stdin]
    python -m dashboard.auth disable NAME | enable NAME
    python -m dashboard.auth list
    python -m dashboard.auth add-device NAME [--scope 440304]      # prints the screen's sign-in link path, once
    python -m dashboard.auth revoke-device TOKEN_ID
    python -m dashboard.auth add-api-key NAME [--channel website] [--posts-per-minute 30]   # prints the key, once
    python -m dashboard.auth list-api-keys
    python -m dashboard.auth revoke-api-key KEY_ID

The database is ``--database-url``, else CITYTWIN_DATABASE_URL, else data/citytwin.sqlite. Without
``--password-stdin`` a random password is made and printed once.
"""
from __future__ import annotations

import argparse
import secrets
import sys

from layers.accounts import ROLES, AccountError, Accounts
from layers.reference import CHANNELS
from layers.store import Store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.auth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None)
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add-user")
    add.add_argument("name")
    add.add_argument("--role", action="append", choices=ROLES, required=True)
    add.add_argument("--scope", default=None, help="a unit code (a district, a street…); default the whole city")
    add.add_argument("--department", action="append", default=[])
    add.add_argument("--password-stdin", action="store_true")
    password = commands.add_parser("set-password")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true")
    for name in ("disable", "enable"):
        commands.add_parser(name).add_argument("name")
    commands.add_parser("list")
    device = commands.add_parser("add-device")
    device.add_argument("name")
    device.add_argument("--scope", default=None)
    commands.add_parser("revoke-device").add_argument("token_id")
    api_key = commands.add_parser("add-api-key", help="an Open311 API key for an application")
    api_key.add_argument("name", help="whose application")
    api_key.add_argument("--channel", default="website", choices=[code for code, *_ in CHANNELS])
    api_key.add_argument("--posts-per-minute", type=int, default=None,
                         help="its own rate limit (default: CITYTWIN_OPEN311_POSTS_PER_MINUTE)")
    commands.add_parser("list-api-keys")
    commands.add_parser("revoke-api-key").add_argument("key_id")
    args = parser.parse_args(argv)

    store = Store(args.database_url)
    accounts = Accounts(store)
    units = None
    if getattr(args, "scope", None):
        units = set(store.read_frame("units", ["code"])["code"])

    def new_password() -> tuple[str, bool]:
        if args.password_stdin:
            return sys.stdin.readline().rstrip("\n"), False
        return secrets.token_urlsafe(15), True

    try:
        if args.command == "add-user":
            chosen, shown = new_password()
            accounts.add(args.name, chosen, roles=args.role, scope=args.scope, departments=args.department,
                         units=units)
            accounts.record("command line", "account.create", args.name,
                            detail=f"roles={','.join(sorted(args.role))} scope={args.scope or 'city'}")
            print(f"created {args.name} ({', '.join(args.role)}; scope {args.scope or 'the city'})")
            if shown:
                print(f"password: {chosen}")
        elif args.command == "set-password":
            chosen, shown = new_password()
            accounts.change(args.name, password=chosen)
            accounts.record("command line", "account.change", args.name, detail="password")
            print(f"password of {args.name} changed" + (f": {chosen}" if shown else ""))
        elif args.command in ("disable", "enable"):
            accounts.change(args.name, active=args.command == "enable")
            accounts.record("command line", "account.change", args.name, detail=args.command)
            print(f"{args.name} {args.command}d")
        elif args.command == "list":
            for row in accounts.list():
                print(f"{row['name']:24} {row['roles']:30} {row['scope'] or 'city':12} "
                      f"{'active' if row['active'] else 'disabled':8} {row['departments']}")
        elif args.command == "add-device":
            token_id, token = accounts.add_device(args.name, scope=args.scope, created_by="command line",
                                                  units=units)
            accounts.record("command line", "device.create", token_id, detail=f"scope={args.scope or 'city'}")
            print(f"device {token_id}: open /device/{token} on the screen (shown once)")
        elif args.command == "revoke-device":
            accounts.revoke_device(args.token_id)
            accounts.record("command line", "device.revoke", args.token_id)
            print(f"device {args.token_id} revoked")
        elif args.command == "add-api-key":
            key_id, key = accounts.add_api_key(args.name, channel=args.channel, created_by="command line",
                                               posts_per_minute=args.posts_per_minute)
            accounts.record("command line", "api_key.create", key_id,
                            detail=f"name={args.name} channel={args.channel} "
                                   f"per_minute={args.posts_per_minute or 'default'}")
            print(f"API key {key_id} for {args.name}: {key} (shown once)")
        elif args.command == "list-api-keys":
            for row in accounts.api_keys():
                print(f"{row['key_id']:18} {row['name'][:30]:30} {row['channel']:20} "
                      f"{row['posts_per_minute'] or 'default'!s:>8}/min "
                      f"{'revoked' if row['revoked_at'] else 'active'}")
        elif args.command == "revoke-api-key":
            accounts.revoke_api_key(args.key_id)
            accounts.record("command line", "api_key.revoke", args.key_id)
            print(f"API key {args.key_id} revoked")
    except AccountError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
