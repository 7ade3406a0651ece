#!/usr/bin/env python3
"""Writes the seed inputs in fuzz/seeds/<target>/ (committed; the fuzzers' own finds go to the
git-ignored fuzz/corpus/). Deterministic: the fuzz targets' key (seed [42; 32]), fixed claims around
2026-11-23T00:00:00Z (the signed_claims clock). Tokens carry an all-zero signature, so no seed
verifies in the targets that assert nothing verifies. Needs Python 3 with `cryptography`; CI does
not run this, it reads the files."""
import base64, hashlib, json, os, pathlib
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

seed = bytes([42] * 32)
pk = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
    serialization.Encoding.Raw, serialization.PublicFormat.Raw)
public = "k4.public." + b64(pk)
secret = "k4.secret." + b64(seed + pk)
pid = "k4.pid." + b64(hashlib.blake2b(("k4.pid." + public).encode(), digest_size=33).digest())

def compact(v) -> bytes:
    return json.dumps(v, separators=(",", ":")).encode()

claims = {"iss": "iss", "sub": "fuzz-consumer", "aud": "aud", "env": "production",
          "exp": "2026-11-23T00:10:00Z", "nbf": "2026-11-22T23:55:00Z",
          "iat": "2026-11-22T23:55:00Z", "jti": "AAAAAAAAAAAAAAAAAAAAAA",
          "scope": "projects:read projects/42/comments:write"}
claims_full = dict(claims, owner="team-fuzz", purpose="seed", fam="BBBBBBBBBBBBBBBBBBBBBB",
                   scope="projects/*/comments:delete admin:read", iat="2026-11-23T01:00:00+01:00",
                   extra={"nested": [1, 2.5, True, None, "x"]})
footer = compact({"kid": pid})
zero_sig = bytes(64)
body = b64(compact(claims) + zero_sig) + "." + b64(footer)

jwt_claims = dict(claims, exp=1795392600, nbf=1795392000 - 300, iat=1795392000 - 300)
jwt_header = compact({"alg": "EdDSA", "typ": "at+jwt", "kid": pid})
jwt_tail = b64(compact(jwt_claims)) + "." + b64(zero_sig)
jwks = compact({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64(pk), "kid": pid,
                          "use": "sig", "alg": "EdDSA"}]})

seeds = {
    "token_decoder": {"token": "v4.public." + body, "body": body,
                      "jwt": b64(jwt_header) + "." + jwt_tail},
    "jwt": {"jwt": b64(jwt_header) + "." + jwt_tail, "after_header": jwt_tail, "jwks": jwks},
    "paserk": {"public": public, "secret": secret, "pid": pid, "public_body": b64(pk),
               "pid_body": pid[len("k4.pid."):]},
    "scope": {"set": "projects:read projects/42/comments:write", "one": "projects/42:read",
              "broad": "*:read projects/*/comments:delete", "segments": "projects 42 comments"},
    "signed_claims": {"claims": compact(claims), "claims_full": compact(claims_full)},
}
root = pathlib.Path(__file__).resolve().parent / "seeds"
for target, files in seeds.items():
    d = root / target
    d.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (d / name).write_bytes(content if isinstance(content, bytes) else content.encode())
