"""The OAuth token endpoint's state: chains of rotating refresh tokens (docs/api-contract.md §2).

A chain starts with a consent (the initial refresh token made at construction, or
an authorization code exchange) and belongs to one data source. Each refresh
rotates its refresh token; the one sent stays usable for ``reuse_window`` seconds
(a stale use), and using it later revokes the whole chain, access tokens included.
"""

from __future__ import annotations

import math
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .clock import MonotonicClock
from .stats import StatsRecorder

CODE_LIFETIME = 300.0
REFRESH_IDLE_LIFETIME = 90 * 86_400.0
CHAIN_LIFETIME = 365 * 86_400.0
SCOPE = "read:smartforms offline_access"


class OAuthError(Exception):
    """A token endpoint failure: HTTP status and the OAuth error body."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _invalid_grant(description: str = "Unknown or invalid refresh token.") -> OAuthError:
    return OAuthError(403, "invalid_grant", description)


@dataclass
class Chain:
    """Every token grown from one consent, for one data source."""

    id: str
    data_source_id: str
    started_at: float
    current_refresh_token: str
    revoked: bool = False


@dataclass
class _RefreshToken:
    chain: Chain
    issued_at: float
    superseded_at: float | None = None


@dataclass
class _AccessToken:
    chain: Chain
    expires_at: float


@dataclass
class _Code:
    data_source_id: str
    expires_at: float
    used: bool = False


@dataclass
class TokenService:
    """Issues, rotates, validates and revokes tokens. Thread-safe."""

    client_id: str
    client_secret: str
    access_token_ttl: float
    reuse_window: float
    rotate: bool
    clock: MonotonicClock
    recorder: StatsRecorder
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _chains: list[Chain] = field(default_factory=list, init=False)
    _refresh: dict[str, _RefreshToken] = field(default_factory=dict, init=False)
    _access: dict[str, _AccessToken] = field(default_factory=dict, init=False)
    _codes: dict[str, _Code] = field(default_factory=dict, init=False)

    # ------------------------------------------------------------ set-up helpers

    def start_chain(self, data_source_id: str) -> str:
        """A new chain for a data source; returns its first refresh token."""
        with self._lock:
            return self._start_chain(data_source_id).current_refresh_token

    def issue_code(self, data_source_id: str) -> str:
        """A one-time authorization code valid for ``CODE_LIFETIME`` seconds."""
        code = f"code-{secrets.token_hex(16)}"
        with self._lock:
            self._codes[code] = _Code(data_source_id, self.clock() + CODE_LIFETIME)
        return code

    def revoke_data_source(self, data_source_id: str) -> int:
        """Revoke every live chain of a data source; returns how many."""
        with self._lock:
            chains = [c for c in self._chains if c.data_source_id == data_source_id]
            live = [c for c in chains if not c.revoked]
            for chain in live:
                self._revoke(chain)
            return len(live)

    # ------------------------------------------------------------ data endpoint

    def authenticate(self, access_token: str) -> Chain | None:
        """The chain of a live access token, else None (unknown, expired or revoked)."""
        with self._lock:
            record = self._access.get(access_token)
            if record is None or record.chain.revoked or self.clock() >= record.expires_at:
                return None
            return record.chain

    # ------------------------------------------------------------ token endpoint

    def grant(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Answer one token request (a 200 body), or raise ``OAuthError``."""
        if params.get("client_id") != self.client_id or (
            params.get("client_secret") != self.client_secret
        ):
            raise OAuthError(401, "invalid_client", "Unknown client or wrong client secret.")
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError(400, "invalid_request", "Missing grant_type.")
        with self._lock:
            try:
                if grant_type == "refresh_token":
                    return self._refresh_grant(params.get("refresh_token", ""))
                if grant_type == "authorization_code":
                    return self._code_grant(params.get("code", ""))
            except OAuthError as error:
                if error.error == "invalid_grant":
                    self.recorder.count("invalid_grants")
                raise
        raise OAuthError(400, "unsupported_grant_type", f"Unsupported grant_type {grant_type!r}.")

    def _refresh_grant(self, token: str) -> dict[str, Any]:
        if not token:
            raise OAuthError(400, "invalid_request", "Missing refresh_token.")
        now = self.clock()
        record = self._refresh.get(token)
        if record is None or record.chain.revoked:
            raise _invalid_grant()
        chain = record.chain
        if now - chain.started_at > CHAIN_LIFETIME:
            self._revoke(chain)
            raise _invalid_grant()
        if record.superseded_at is not None:
            if now - record.superseded_at <= self.reuse_window:
                self.recorder.count("stale_refresh_uses")
                self.recorder.count("refreshes")
                return self._reply(chain, chain.current_refresh_token)
            self._revoke(chain)
            raise _invalid_grant()
        if now - record.issued_at > REFRESH_IDLE_LIFETIME:
            raise _invalid_grant()
        self.recorder.count("refreshes")
        if not self.rotate:
            record.issued_at = now
            return self._reply(chain, None)
        record.superseded_at = now
        new_token = self._mint_refresh(chain)
        return self._reply(chain, new_token)

    def _code_grant(self, code: str) -> dict[str, Any]:
        if not code:
            raise OAuthError(400, "invalid_request", "Missing code.")
        record = self._codes.get(code)
        if record is None or record.used or self.clock() >= record.expires_at:
            raise _invalid_grant("Invalid or expired authorization code.")
        record.used = True
        chain = self._start_chain(record.data_source_id)
        self.recorder.count("code_exchanges")
        return self._reply(chain, chain.current_refresh_token)

    # ------------------------------------------------------------ internals (lock held)

    def _start_chain(self, data_source_id: str) -> Chain:
        chain = Chain(
            id=f"chain-{len(self._chains) + 1}",
            data_source_id=data_source_id,
            started_at=self.clock(),
            current_refresh_token="",
        )
        self._chains.append(chain)
        self._mint_refresh(chain)
        return chain

    def _mint_refresh(self, chain: Chain) -> str:
        token = f"rt-{secrets.token_hex(32)}"
        self._refresh[token] = _RefreshToken(chain, issued_at=self.clock())
        chain.current_refresh_token = token
        return token

    def _reply(self, chain: Chain, refresh_token: str | None) -> dict[str, Any]:
        access_token = f"at-{secrets.token_hex(24)}"
        self._access[access_token] = _AccessToken(chain, self.clock() + self.access_token_ttl)
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": max(1, math.ceil(self.access_token_ttl)),
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        body["scope"] = SCOPE
        return body

    def _revoke(self, chain: Chain) -> None:
        if not chain.revoked:
            chain.revoked = True
            self.recorder.chain_revoked(chain.data_source_id)
