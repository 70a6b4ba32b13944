"""Tokens without a server: RS256 (public key verifies, private key issues), algorithm confusion,
and production settings that lack a secret."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from anju.auth import AuthError, ConfigError, VerifiedTokens, issue_token, keys, verified_token, verify_token
from anju.settings import AuthSettings, Settings


def _pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def _hs256_by_hand(claims: dict[str, object], secret: bytes) -> str:
    """An HS256 JWT built without PyJWT (which refuses a PEM key as an HMAC secret)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    body = {k: int(v.timestamp()) if isinstance(v, dt.datetime) else v for k, v in claims.items()}
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{b64(json.dumps(body).encode())}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def test_rs256_tokens_and_algorithm_confusion() -> None:
    private, public = _pem_pair()
    s = Settings(env="test", auth=AuthSettings(algorithm="RS256", jwt_public_key=public, jwt_private_key=private))
    k = keys(s)
    token = issue_token(s, "alice")
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert verify_token(k, s, f"Bearer {token}") == "alice"
    # one decode answers the name and the expiry (the live connection's deadline), the cache the same
    dated = issue_token(s, "bob", ttl_hours=2, now=dt.datetime.now(dt.UTC).replace(microsecond=0))
    expiry = jwt.decode(dated, options={"verify_signature": False})["exp"]
    assert verified_token(k, s, f"Bearer {dated}") == ("bob", float(expiry))
    cache = VerifiedTokens()
    assert cache.verified(k, s, f"Bearer {dated}") == cache.verified(k, s, f"Bearer {dated}") == ("bob", float(expiry))
    assert cache.name(k, s, f"Bearer {dated}") == "bob" and len(cache.entries) == 1
    # HS256 signed with the public key as the secret (the classic confusion) is refused
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": "alice", "iat": now, "exp": now + dt.timedelta(hours=1), "iss": "anju", "aud": "anju"}
    for bad in (_hs256_by_hand(claims, public.encode()), jwt.encode(claims, _pem_pair()[0], algorithm="RS256")):
        with pytest.raises(AuthError):  # the second: signed by another key pair
            verify_token(k, s, f"Bearer {bad}")
    # verifying servers need no private key; issuing then says what is missing
    verify_only = Settings(env="test", auth=AuthSettings(algorithm="RS256", jwt_public_key=public))
    assert verify_token(keys(verify_only), verify_only, f"Bearer {token}") == "alice"
    with pytest.raises(ConfigError, match="PRIVATE_KEY"):
        issue_token(verify_only, "alice")


def test_prod_requires_its_secrets() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET|ID_NUMBER_KEY"):
        keys(Settings(env="prod"))
