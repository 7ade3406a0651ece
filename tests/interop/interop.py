"""The Python side of the interoperability tests (tests/interop.rs): independent PASETO
(pyseto) and JWT (PyJWT) implementations verifying scopekey tokens, minting tokens scopekey must
accept, and minting lenient tokens they accept and scopekey must refuse.

Reads one JSON request on stdin, writes one JSON answer on stdout. Run by the Rust test with
the interpreter named by SCOPEKEY_TEST_PYTHON (a virtual environment that .ci/run creates with
`pip install pyseto "PyJWT[crypto]"`).
"""
import base64
import json
import sys

import jwt
import pyseto
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyseto import Key


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def verify(req):
    """Verify scopekey's tokens with the other libraries' standard calls."""
    out = {}
    p = req["paseto"]
    key = Key.from_paserk(p["public_paserk"])
    token = pyseto.decode(
        key,
        p["token"],
        implicit_assertion=p["implicit_assertion"].encode(),
        deserializer=json,
    )
    out["paseto_claims"] = token.payload
    out["paseto_footer"] = token.footer
    j = req["jwt"]
    public = jwt.PyJWK(j["jwk"]).key
    out["jwt_header"] = jwt.get_unverified_header(j["token"])
    out["jwt_claims"] = jwt.decode(
        j["token"],
        public,
        algorithms=["EdDSA"],
        audience=j["aud"],
        issuer=j["iss"],
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
    )
    return out


def mint(req):
    """Mint tokens with a key generated here, exported as PASERK and JWK for scopekey."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    secret = Key.new(version=4, purpose="public", key=pem)
    public = Key.new(version=4, purpose="public", key=public_pem)
    pid = public.to_paserk_id()
    claims = req["claims"]
    # PASETO, in scopekey's profile: RFC 3339 times, a {"kid": k4.pid} footer, and the
    # environment and token type in the implicit assertion.
    paseto_claims = dict(claims)
    for name in ("exp", "nbf", "iat"):
        paseto_claims[name] = req["rfc3339"][name]
    paseto_token = pyseto.encode(
        secret,
        compact(paseto_claims),
        footer=compact({"kid": pid}),
        implicit_assertion=req["implicit_assertion"].encode(),
    ).decode()
    jwk = jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwk.update({"kid": pid, "use": "sig", "alg": "EdDSA"})
    headers = {"kid": pid, "typ": "at+jwt"}
    jwt_token = jwt.encode(claims, private, algorithm="EdDSA", headers=headers)

    # Tokens these libraries accept and scopekey refuses (docs/threats.md A8, A9, A12).
    lenient = {}
    float_exp = dict(claims, exp=claims["exp"] + 0.5)
    lenient["jwt_float_exp"] = jwt.encode(float_exp, private, algorithm="EdDSA", headers=headers)
    header = b64(compact({"alg": "EdDSA", "kid": pid, "typ": "at+jwt"}))
    body = compact(claims)[:-1] + b',"scope":"admin:*"}'
    payload = b64(body)
    sig = private.sign(f"{header}.{payload}".encode())
    lenient["jwt_duplicate_scope"] = f"{header}.{payload}.{b64(sig)}"
    lenient["jwt_padded_signature"] = jwt_token + "=="
    dup = compact(paseto_claims)[:-1] + b',"scope":"admin:*"}'
    lenient["paseto_duplicate_scope"] = pyseto.encode(
        secret,
        dup,
        footer=compact({"kid": pid}),
        implicit_assertion=req["implicit_assertion"].encode(),
    ).decode()
    accepted = {}
    for name, token in lenient.items():
        try:
            if name.startswith("jwt"):
                jwt.decode(token, private.public_key(), algorithms=["EdDSA"],
                           audience=claims["aud"], issuer=claims["iss"])
            else:
                pyseto.decode(public, token,
                              implicit_assertion=req["implicit_assertion"].encode())
            accepted[name] = True
        except Exception as e:  # noqa: BLE001 - record what the library said
            accepted[name] = f"refused: {e}"
    return {
        "public_paserk": public.to_paserk(),
        "pid": pid,
        "jwks": {"keys": [jwk]},
        "paseto": paseto_token,
        "jwt": jwt_token,
        "lenient": lenient,
        "accepted_there": accepted,
    }


def jwks_client(req):
    """Verify a JWT with the key PyJWKClient fetches from the service's JWKS endpoint."""
    client = jwt.PyJWKClient(req["url"])
    signing_key = client.get_signing_key_from_jwt(req["token"])
    claims = jwt.decode(
        req["token"],
        signing_key.key,
        algorithms=["EdDSA"],
        audience=req["aud"],
        issuer=req["iss"],
    )
    return {"kid": signing_key.key_id, "claims": claims}


if __name__ == "__main__":
    request = json.load(sys.stdin)
    handler = {"verify": verify, "mint": mint, "jwks_client": jwks_client}[request["mode"]]
    json.dump(handler(request), sys.stdout)
