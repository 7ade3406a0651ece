// Verifying a scopekey JWT with Node's standard library only (node:crypto, Node 16+).
// Shown in docs/interop.md; run by tests/interop.rs when SCOPEKEY_TEST_NODE names a node binary.
"use strict";
const crypto = require("node:crypto");

function verifyScopekeyJwt(token, jwks, expected) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("not a JWS compact token");
  const [h, p, s] = parts;
  const header = JSON.parse(Buffer.from(h, "base64url"));
  if (header.alg !== "EdDSA" || header.typ !== "at+jwt") throw new Error("not an EdDSA access token");
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Error("unknown kid");
  const key = crypto.createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: "jwk" });
  const signature = Buffer.from(s, "base64url");
  if (!crypto.verify(null, Buffer.from(`${h}.${p}`), key, signature)) throw new Error("bad signature");
  const claims = JSON.parse(Buffer.from(p, "base64url"));
  const now = Math.floor(Date.now() / 1000);
  const leeway = 60;
  if (claims.iss !== expected.iss) throw new Error("wrong issuer");
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audiences.includes(expected.aud)) throw new Error("wrong audience");
  if (claims.env !== expected.env) throw new Error("wrong environment");
  if (!Number.isInteger(claims.exp) || now >= claims.exp + leeway) throw new Error("expired");
  if (Number.isInteger(claims.nbf) && claims.nbf > now + leeway) throw new Error("not yet valid");
  return claims; // then check claims.scope (space-separated resource:action) for the action
}

module.exports = { verifyScopekeyJwt };

if (require.main === module) {
  const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
  try {
    const claims = verifyScopekeyJwt(input.token, input.jwks, input.expected);
    process.stdout.write(JSON.stringify({ ok: true, claims }));
  } catch (e) {
    process.stdout.write(JSON.stringify({ ok: false, error: e.message }));
  }
}
