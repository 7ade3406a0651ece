"""An independent OAuth client against the scopekey token service: Authlib (with requests)
discovers the RFC 8414 metadata, gets tokens with client credentials (client_secret_basic,
client_secret_post, and private_key_jwt with an Ed25519 key from `cryptography` signed by
joserfc, Authlib's JOSE library), introspects one, revokes it and introspects it again; with refresh tokens on, it refreshes (and replays the
used refresh token), and it trades a token by RFC 8693 token exchange. Reads a JSON request on stdin, prints a JSON answer.
"""

import json
import os
import sys
import warnings

warnings.simplefilter("ignore")
# The service under test listens on loopback over plain HTTP.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

import requests  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session, OAuthError  # noqa: E402
from joserfc.jwk import OKPKey  # noqa: E402
from authlib.oauth2.rfc7523 import PrivateKeyJWT  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

req = json.load(sys.stdin)
out = {}
meta = requests.get(req["base"] + "/.well-known/oauth-authorization-server", timeout=10).json()
out["issuer"] = meta["issuer"]

basic = OAuth2Session(req["client_id"], req["client_secret"], scope="projects:read")
token = basic.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
out["basic_token"] = token["access_token"]
out["basic_scope"] = token.get("scope")
out["expires_in"] = token.get("expires_in")

post = OAuth2Session(
    req["client_id"], req["client_secret"], token_endpoint_auth_method="client_secret_post"
)
out["post_token"] = post.fetch_token(meta["token_endpoint"], grant_type="client_credentials")[
    "access_token"
]

# With refresh tokens on: Authlib's refresh, then a replay of the used refresh token (on a
# token of its own: the replay revokes that whole family).
refresher = OAuth2Session(req["client_id"], req["client_secret"], scope="projects:read")
own = refresher.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
if "refresh_token" in own:
    # Authlib updates the session's token in place: keep the first refresh token apart.
    first = str(own["refresh_token"])
    refreshed = refresher.refresh_token(meta["token_endpoint"], refresh_token=first)
    out["refreshed"] = refreshed["access_token"]
    out["refreshed_has_new_refresh"] = refreshed.get("refresh_token") not in (None, first)
    try:
        refresher.refresh_token(meta["token_endpoint"], refresh_token=first)
        out["replay"] = "accepted"
    except OAuthError as e:
        out["replay"] = e.error

# RFC 8693 token exchange: the post token traded for a narrower one.
exchanged = post.fetch_token(
    meta["token_endpoint"],
    grant_type="urn:ietf:params:oauth:grant-type:token-exchange",
    subject_token=out["post_token"],
    subject_token_type="urn:ietf:params:oauth:token-type:access_token",
    scope="projects:read",
)
out["exchanged"] = exchanged["access_token"]
out["issued_token_type"] = exchanged.get("issued_token_type")
out["exchanged_scope"] = exchanged.get("scope")

resp = basic.introspect_token(meta["introspection_endpoint"], token=out["basic_token"])
out["introspected"] = resp.json()
resp = basic.revoke_token(meta["revocation_endpoint"], token=out["basic_token"])
out["revoke_status"] = resp.status_code
resp = basic.introspect_token(meta["introspection_endpoint"], token=out["basic_token"])
out["introspected_after"] = resp.json()

private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(req["key_seed_hex"]))
pem = private.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
)
jwt_client = OAuth2Session(
    req["client_id"], OKPKey.import_key(pem), token_endpoint_auth_method="private_key_jwt"
)
jwt_client.register_client_auth_method(PrivateKeyJWT(meta["token_endpoint"], alg="EdDSA"))
out["jwt_token"] = jwt_client.fetch_token(
    meta["token_endpoint"], grant_type="client_credentials"
)["access_token"]

wrong = OAuth2Session(req["client_id"], "sks_not-the-secret")
try:
    wrong.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    out["wrong_secret"] = "accepted"
except OAuthError as e:
    out["wrong_secret"] = e.error

print(json.dumps(out))
