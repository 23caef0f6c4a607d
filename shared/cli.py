"""The `streams` command: administer workspaces, tokens and sources, and export the API document."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.bootstrap import get_services
from shared.domain.errors import StreamsError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result = args.run(args)
    except StreamsError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streams", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    workspace = commands.add_parser("workspace", help="manage workspaces").add_subparsers(
        required=True
    )
    create_ws = workspace.add_parser("create", help="create a workspace")
    create_ws.add_argument("--name", required=True)
    create_ws.set_defaults(run=_create_workspace)

    token = commands.add_parser("token", help="manage API tokens").add_subparsers(required=True)
    create_token = token.add_parser("create", help="create a token scoped to one workspace")
    create_token.add_argument("--workspace", required=True, help="workspace id")
    create_token.add_argument("--name", default="cli")
    expiry = create_token.add_mutually_exclusive_group()
    expiry.add_argument(
        "--expires-at", type=_aware_datetime, help="ISO-8601 time the token stops working"
    )
    expiry.add_argument(
        "--expires-in-days", type=_positive_days, help="days until the token stops working"
    )
    create_token.set_defaults(run=_create_token)
    list_tokens = token.add_parser(
        "list", help="list a workspace's tokens (id, name, dates; never the secret)"
    )
    list_tokens.add_argument("--workspace", required=True, help="workspace id")
    list_tokens.set_defaults(run=_list_tokens)
    revoke_token = token.add_parser("revoke", help="revoke a token by its id")
    revoke_token.add_argument("--workspace", required=True, help="workspace id")
    revoke_token.add_argument("--id", required=True, dest="token_id", help="token id")
    revoke_token.set_defaults(run=_revoke_token)

    source = commands.add_parser("source", help="manage event sources").add_subparsers(
        required=True
    )
    create_source = source.add_parser("create", help="create an event source and its topic")
    create_source.add_argument("--workspace", required=True, help="workspace id")
    create_source.add_argument("--name", required=True)
    create_source.set_defaults(run=_create_source)

    reconcile = commands.add_parser(
        "reconcile",
        help="recreate the topics and subscriptions of every source and destination from "
        "Firestore; print what existed and what was created",
    )
    reconcile.add_argument(
        "--dry-run", action="store_true", help="report only: create and change nothing"
    )
    reconcile.set_defaults(run=_reconcile)

    tail = commands.add_parser(
        "tail", help="show a workspace's live events, one line each (Ctrl-C stops)"
    )
    tail.add_argument("--gateway", help="gateway URL (default: from .streams/dev.json)")
    tail.add_argument("--token", help="API token (default: $STREAMS_TOKEN or .streams/dev.json)")
    tail.add_argument("--workspace", help="workspace id (default: from .streams/dev.json)")
    tail.add_argument("--dev-file", help="settings written by `make dev` (.streams/dev.json)")
    tail.add_argument("--source-id", help="only this source's events")
    tail.add_argument("--event-type", help="only this call type (track, page, identify, ...)")
    tail.add_argument("--event-name", help="only this event name (a track's event, a page's name)")
    tail.add_argument("--json", action="store_true", help="print each event's JSON as received")
    tail.add_argument("--no-color", action="store_true", help="never colour the output")
    tail.add_argument("--max-events", type=int, help="stop after this many events")
    tail.set_defaults(run=_tail)

    openapi = commands.add_parser("openapi", help="print or write the OpenAPI document")
    openapi.add_argument("--output", type=Path, help="write to this file instead of stdout")
    openapi.set_defaults(run=_openapi)

    edge = commands.add_parser(
        "edge-config",
        help="print or write the load balancer's route rules (terraform/modules/edge)",
    )
    edge.add_argument("--output", type=Path, help="write to this file instead of stdout")
    edge.set_defaults(run=_edge_config)
    return parser


def _create_workspace(args: argparse.Namespace) -> dict[str, Any]:
    return get_services().workspaces.create(args.name).model_dump()


def _create_token(args: argparse.Namespace) -> dict[str, Any]:
    expires_at = args.expires_at
    if args.expires_in_days is not None:
        expires_at = datetime.now(UTC) + timedelta(days=args.expires_in_days)
    token, record = get_services().workspaces.create_token(args.workspace, args.name, expires_at)
    # The only time the plaintext exists outside the caller's hands: it is not stored.
    return {"token": token, **record.model_dump()}


def _list_tokens(args: argparse.Namespace) -> list[dict[str, Any]]:
    services = get_services()
    services.workspaces.get(args.workspace)
    return [token.model_dump() for token in services.workspaces.list_tokens(args.workspace)]


def _revoke_token(args: argparse.Namespace) -> dict[str, Any]:
    get_services().workspaces.revoke_token(args.workspace, args.token_id)
    return {"revoked": args.token_id}


def _aware_datetime(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date-time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs a time zone (e.g. Z or +01:00): {text!r}")
    return moment


def _positive_days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not 0 < days <= 36_500:
        raise argparse.ArgumentTypeError(f"must be between 0 and 36500 days: {text!r}")
    return days


def _create_source(args: argparse.Namespace) -> dict[str, Any]:
    services = get_services()
    services.workspaces.get(args.workspace)
    return services.sources.create(args.workspace, args.name, created_by="cli").model_dump()


def _reconcile(args: argparse.Namespace) -> dict[str, Any]:
    return get_services().reconciler.run(dry_run=args.dry_run).as_dict()


def _tail(args: argparse.Namespace) -> None:
    from shared.tail import TailError, options_from, tail

    try:
        tail(options_from(args))
    except (ValueError, TailError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        pass


def _openapi(args: argparse.Namespace) -> None:
    from shared.api.routes import openapi_document

    text = json.dumps(openapi_document(), indent=2) + "\n"
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)


def _edge_config(args: argparse.Namespace) -> None:
    from shared.api.routes import ROUTES
    from shared.http.edge_config import render_routes

    text = render_routes(ROUTES)
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    raise SystemExit(main())
