"""tap-smartforms-auth: turn a fresh authorization code into a stored token chain.

The "App Connected Successfully" page gives an authorization code valid for 5
minutes, inside a ready-made command (a curl POST of JSON to the token endpoint).
This helper takes that command on stdin (or ``--client-id``/``--client-secret``/
``--code``), exchanges the code at the token endpoint, writes the refresh token
into the token store, and says what to put in meltano.yml / .env. Secrets are
read from stdin or a prompt that does not echo, and never printed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import requests

from tap_smartforms import api_shape
from tap_smartforms.settings import DEFAULT_TOKEN_URL, url_problem
from tap_smartforms.token_store import EntryKey, TokenStoreError, open_store

TOKEN_REQUEST_TIMEOUT_SECONDS = 30.0
# Meltano's variable prefix for this plugin's settings.
ENV_PREFIX = "TAP_SMARTFORMS"


class HelperError(Exception):
    """A one-line reason the helper stopped."""


@dataclass(frozen=True)
class CodeExchange:
    """What a code exchange needs; from the ready-made command or the options."""

    token_url: str | None
    client_id: str
    client_secret: str
    code: str
    redirect_uri: str | None


def parse_ready_made_command(text: str) -> CodeExchange:
    """The token URL and JSON body of the command the "App Connected Successfully"
    page shows (``curl --request POST --url ... --data '{...}'``)."""
    try:
        words = shlex.split(text.replace("\\\r\n", " ").replace("\\\n", " "))
    except ValueError:
        raise HelperError("the pasted command has unbalanced quotes; paste all of it") from None
    url = None
    body = None
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else None
        if word == "--url" and following:
            url = following
        elif word in ("-d", "--data", "--data-raw", "--data-binary") and following:
            body = following
        elif url is None and word.startswith(("https://", "http://")):
            url = word
    if body is None:
        raise HelperError("the pasted command has no --data '{...}' part; paste all of it")
    try:
        fields = json.loads(body)
    except ValueError:
        raise HelperError("the pasted command's --data part is not JSON; paste all of it") from None
    if not isinstance(fields, dict):
        raise HelperError("the pasted command's --data part is not a JSON object")
    missing = [name for name in ("client_id", "client_secret", "code") if not fields.get(name)]
    if missing:
        raise HelperError(f"the pasted command lacks {', '.join(missing)}; paste all of it")
    return CodeExchange(
        token_url=url,
        client_id=str(fields["client_id"]),
        client_secret=str(fields["client_secret"]),
        code=str(fields["code"]),
        redirect_uri=str(fields["redirect_uri"]) if fields.get("redirect_uri") else None,
    )


def exchange_code(
    exchange: CodeExchange, token_url: str, session: requests.Session | None = None
) -> str:
    """The refresh token the code is worth. Raises HelperError with the endpoint's reason."""
    body = {
        "grant_type": "authorization_code",
        "client_id": exchange.client_id,
        "client_secret": exchange.client_secret,
        "code": exchange.code,
    }
    if exchange.redirect_uri:
        body["redirect_uri"] = exchange.redirect_uri
    if problem := url_problem(token_url):
        raise HelperError(f"--token-url (or the pasted command's URL) {token_url}: {problem}")
    try:
        response = (session or requests.Session()).post(
            token_url,
            json=body,
            timeout=TOKEN_REQUEST_TIMEOUT_SECONDS,
            # A 307 or 308 would re-send the client secret and the code to another URL.
            allow_redirects=False,
        )
    except (requests.ConnectionError, requests.Timeout) as error:
        raise HelperError(
            f"the token endpoint {token_url} could not be reached ({type(error).__name__})"
        ) from None
    try:
        reply = response.json()
    except ValueError:
        reply = None
    if 300 <= response.status_code < 400:
        raise HelperError(
            f"the token endpoint {token_url} answered HTTP {response.status_code}, a redirect; "
            "it was not followed, as that would send the client secret to another URL: give "
            "the token endpoint itself with --token-url (the tap's oauth_token_url)"
        )
    if response.status_code >= 400:
        code = api_shape.error_code(reply)
        if code == "invalid_grant":
            raise HelperError(
                "the code was refused (invalid_grant): codes last 5 minutes and work once; "
                "authorize again and run this helper at once"
            )
        if code == "invalid_client":
            raise HelperError(
                "the client ID or secret was refused (invalid_client); copy the command again"
            )
        raise HelperError(f"the token endpoint {token_url} answered HTTP {response.status_code}")
    refresh_token = reply.get("refresh_token") if isinstance(reply, dict) else None
    if not isinstance(refresh_token, str) or not refresh_token:
        raise HelperError(
            f"the token endpoint {token_url} replied without a refresh_token; check that the "
            "app asks for offline access"
        )
    return refresh_token


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tap-smartforms-auth",
        description="Exchange the authorization code from the 'App Connected Successfully' "
        "page and store the tokens for tap-smartforms. Without --code, paste the page's "
        "ready-made command on stdin (end with Ctrl-D).",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-source-url", help="the data source URL from the Data Source modal")
    where.add_argument("--data-source-id", help="the Data Source ID from the Data Source modal")
    parser.add_argument("--client-id", help="OAuth client ID (else from the pasted command)")
    parser.add_argument(
        "--client-secret",
        help="OAuth client secret; better left out: it is then asked for without echo",
    )
    parser.add_argument("--code", help="the authorization code (else from the pasted command)")
    parser.add_argument("--redirect-uri", help="the redirect URI, when the app requires it")
    parser.add_argument(
        "--token-url", help=f"the token endpoint (default: the command's, else {DEFAULT_TOKEN_URL})"
    )
    parser.add_argument(
        "--token-store-path",
        help="the tap's token_store_path, when it sets one (default: the tap's default, "
        "the same for every launch by this user on this host)",
    )
    return parser.parse_args(argv)


def _exchange_from(args: argparse.Namespace, stdin: TextIO) -> CodeExchange:
    if args.code:
        client_id = args.client_id or input("Client ID: ").strip()
        secret = args.client_secret or getpass.getpass("Client secret (not shown): ").strip()
        if not client_id or not secret:
            raise HelperError("a client ID and a client secret are needed with --code")
        return CodeExchange(None, client_id, secret, args.code.strip(), args.redirect_uri)
    if stdin.isatty():
        sys.stderr.write(
            "Paste the command from the 'App Connected Successfully' page, then press Ctrl-D:\n"
        )
    pasted = stdin.read()
    if not pasted.strip():
        raise HelperError(
            "nothing was pasted (the input ended); paste the command from the 'App Connected "
            "Successfully' page, then press Ctrl-D, or give --code"
        )
    exchange = parse_ready_made_command(pasted)
    if args.client_id and args.client_id != exchange.client_id:
        raise HelperError("--client-id differs from the client ID in the pasted command")
    return exchange


def _data_source_id(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.data_source_url:
        try:
            endpoint = api_shape.parse_data_source_url(args.data_source_url.strip())
        except ValueError as error:
            raise HelperError(f"--data-source-url: {error}") from None
        return endpoint.data_source_id, args.data_source_url.strip()
    return str(args.data_source_id).strip(), None


def run(argv: Sequence[str] | None = None, stdin: TextIO | None = None) -> int:
    args = _arguments(argv)
    try:
        data_source_id, url = _data_source_id(args)
        exchange = _exchange_from(args, stdin or sys.stdin)
        token_url = args.token_url or exchange.token_url or DEFAULT_TOKEN_URL
        refresh_token = exchange_code(exchange, token_url)
        store = open_store(args.token_store_path)
        key = EntryKey(token_url, exchange.client_id, data_source_id)
        with store.locked():
            store.start_chain(key, refresh_token)
    except (HelperError, TokenStoreError) as error:
        sys.stderr.write(f"tap-smartforms-auth: {error}\n")
        return 1
    except EOFError:
        sys.stderr.write("tap-smartforms-auth: the input ended before the answer; nothing stored\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(
            "\ntap-smartforms-auth: interrupted; run it again (with a new code if it was sent)\n"
        )
        return 130
    _print_next_steps(store.path, key, url, custom_store=bool(args.token_store_path))
    return 0


def _print_next_steps(path: Path, key: EntryKey, url: str | None, *, custom_store: bool) -> None:
    entry = json.dumps({"url": url or f"<the data source URL of {key.data_source_id}>"})
    lines = [
        f"Stored a new refresh token for data source {key.data_source_id} in {path}.",
        "The tap uses it (and keeps it rotated) as long as its settings match:",
        f"  oauth_token_url  {key.token_url}",
        f"  client_id        {key.client_id}",
        f"  token_store_path {path}" + ("" if custom_store else "  (the default here)"),
        "",
        "Put the client secret in .env (never in meltano.yml):",
        f"  {ENV_PREFIX}_CLIENT_SECRET=<the client_secret from the command>",
        f"  {ENV_PREFIX}_CLIENT_ID={key.client_id}",
    ]
    if custom_store:
        lines.append(f"  {ENV_PREFIX}_TOKEN_STORE_PATH={path}")
    if key.token_url != DEFAULT_TOKEN_URL:
        lines.append(f"  {ENV_PREFIX}_OAUTH_TOKEN_URL={key.token_url}")
    lines += [
        "and list the data source without a refresh_token (the store has it), e.g. in",
        f"{ENV_PREFIX}_DATA_SOURCES (a JSON list) or meltano.yml's data_sources:",
        f"  {entry}",
        "If the data source's entry still has an older refresh_token, remove it or replace",
        "it: a configured token the store does not know counts as a new authorization.",
    ]
    # What to do next is this command's output proper, so stdout.
    sys.stdout.write("\n".join(lines) + "\n")


def main() -> None:
    """Console script entry point."""
    sys.exit(run())
