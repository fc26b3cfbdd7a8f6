"""tap-smartforms-auth: reading the ready-made command, exchanging the code, storing it."""

from __future__ import annotations

import io
import json

import pytest

from tap_smartforms import auth_helper
from tap_smartforms.auth_helper import HelperError, parse_ready_made_command
from tap_smartforms.settings import validate
from tap_smartforms.token_store import (
    EntryKey,
    RefreshTokenSource,
    TokenStore,
    TokenStoreError,
    fingerprint,
)
from tap_smartforms_emulator import Emulator, FormSpec

BODY = {
    "grant_type": "authorization_code",
    "client_id": "client-1",
    "client_secret": "secret-1",
    "code": "code-1",
    "redirect_uri": "https://example.invalid/cb",
}
TOKEN_URL = "https://auth.atlassian.com/oauth/token"


def ready_made(body: dict[str, str] = BODY) -> str:
    # As the "App Connected Successfully" page lays it out: one option per line.
    return (
        f"curl --request POST \\\n  --url '{TOKEN_URL}' \\\n"
        "  --header 'Content-Type: application/json' \\\n"
        f"  --data '{json.dumps(body)}'"
    )


def test_the_ready_made_command_gives_url_client_secret_and_code():
    exchange = parse_ready_made_command(ready_made())

    assert exchange.token_url == TOKEN_URL
    assert (exchange.client_id, exchange.client_secret, exchange.code) == (
        "client-1",
        "secret-1",
        "code-1",
    )
    assert exchange.redirect_uri == "https://example.invalid/cb"


def test_a_command_on_one_line_with_a_bare_url_reads_the_same():
    text = f"curl -X POST {TOKEN_URL} -H 'Content-Type: application/json' -d '{json.dumps(BODY)}'"

    assert parse_ready_made_command(text) == parse_ready_made_command(ready_made())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("curl --url x", "no --data"),
        ('curl --data \'{"code": ', "unbalanced quotes"),
        ("curl --data 'not json'", "is not JSON"),
        (ready_made({**BODY, "code": ""}), "lacks code"),
    ],
)
def test_a_broken_paste_says_what_is_wrong_without_quoting_it(text: str, expected: str):
    with pytest.raises(HelperError, match=expected) as raised:
        parse_ready_made_command(text)
    assert "secret-1" not in str(raised.value)


@pytest.fixture
def emu():
    with Emulator(forms=[FormSpec(responses=1, seed=1)]) as started:
        yield started


def test_a_code_given_by_option_is_stored_and_the_secret_is_asked_without_echo(
    emu, tmp_path, monkeypatch, capsys
):
    (ds,) = emu.data_source_ids
    asked: list[str] = []

    def getpass(prompt: str) -> str:
        asked.append(prompt)
        return emu.client_secret

    monkeypatch.setattr(auth_helper.getpass, "getpass", getpass)
    store_path = tmp_path / "tokens.json"
    code = emu.authorization_code(ds)

    status = auth_helper.run(
        [
            "--data-source-id",
            ds,
            "--client-id",
            emu.client_id,
            "--code",
            code,
            "--token-url",
            emu.token_url,
            "--token-store-path",
            str(store_path),
        ]
    )

    out, err = capsys.readouterr()
    assert status == 0, err
    assert asked == ["Client secret (not shown): "]
    stored = TokenStore(store_path).read(EntryKey(emu.token_url, emu.client_id, ds))
    assert stored is not None
    assert stored.origin == fingerprint(stored.refresh_token)
    assert "TAP_SMARTFORMS_CLIENT_SECRET" in out
    assert f"TAP_SMARTFORMS_TOKEN_STORE_PATH={store_path}" in out
    for secret in (emu.client_secret, code, stored.refresh_token):
        assert secret not in out + err


def test_after_the_helper_a_data_source_needs_no_refresh_token_in_the_config(emu, tmp_path):
    (ds,) = emu.data_source_ids
    store_path = tmp_path / "tokens.json"
    config = emu.tap_config(token_store_path=str(store_path))
    del config["data_sources"][0]["refresh_token"]
    key = EntryKey(emu.token_url, emu.client_id, ds)
    command = ready_made(
        {
            **BODY,
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "code": emu.authorization_code(ds),
        }
    ).replace(TOKEN_URL, emu.token_url)
    with pytest.raises(TokenStoreError, match="tap-smartforms-auth") as before:
        RefreshTokenSource(TokenStore(store_path), key, None).pick(None)

    status = auth_helper.run(
        ["--data-source-url", emu.data_source_url(ds), "--token-store-path", str(store_path)],
        stdin=io.StringIO(command),
    )

    assert str(store_path) in str(before.value)
    assert status == 0
    assert validate(config) == []
    held, _ = RefreshTokenSource(TokenStore(store_path), key, None).pick(None)
    assert held.source == "store"


def test_a_used_code_is_refused_with_what_to_do(emu, tmp_path, capsys):
    (ds,) = emu.data_source_ids
    code = emu.authorization_code(ds)
    command = ready_made(
        {**BODY, "client_id": emu.client_id, "client_secret": emu.client_secret, "code": code}
    ).replace(TOKEN_URL, emu.token_url)
    arguments = ["--data-source-id", ds, "--token-store-path", str(tmp_path / "tokens.json")]
    assert auth_helper.run(arguments, stdin=io.StringIO(command)) == 0
    capsys.readouterr()

    status = auth_helper.run(arguments, stdin=io.StringIO(command))

    err = capsys.readouterr().err
    assert status == 1
    assert "the code was refused (invalid_grant)" in err
    assert "authorize again" in err
    assert code not in err
