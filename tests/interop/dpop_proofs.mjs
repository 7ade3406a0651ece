// DPoP proofs made by panva's `dpop` package (tests/interop/package.json), for
// tests/interop_dpop.rs. Reads one JSON request on stdin, writes one JSON answer on stdout.
//
//   {"mode": "keys"}  ->  {"ES256": {"private": jwk, "public": jwk, "jkt": "…"}, "Ed25519": {…}}
//     Key pairs generated with WebCrypto; `jkt` is the package's own RFC 7638 thumbprint.
//   {"mode": "proofs", "keys": <the above>, "requests": [{"name", "alg", "htm", "htu",
//     "token", "nonce"?, "iat"?}]}  ->  {"name": "<proof>", …}
//     `iat` (seconds) moves the clock the package reads, for stale proofs.
//
// The package is loaded from SCOPEKEY_TEST_NODE_MODULES (`.ci/run` installs it with `npm ci`
// into target/interop-node).
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.env.SCOPEKEY_TEST_NODE_MODULES;
const dpop = await import(pathToFileURL(join(modules, 'dpop', 'build', 'index.js')).href);

const ALGORITHMS = {
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
  Ed25519: { name: 'Ed25519' },
};

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function keys() {
  const out = {};
  for (const alg of Object.keys(ALGORITHMS)) {
    const pair = await dpop.generateKeyPair(alg, { extractable: true });
    out[alg] = {
      private: await crypto.subtle.exportKey('jwk', pair.privateKey),
      public: await crypto.subtle.exportKey('jwk', pair.publicKey),
      jkt: await dpop.calculateThumbprint(pair.publicKey),
    };
  }
  return out;
}

async function importPair(jwks, alg) {
  const algorithm = ALGORITHMS[alg];
  return {
    privateKey: await crypto.subtle.importKey('jwk', jwks.private, algorithm, false, ['sign']),
    publicKey: await crypto.subtle.importKey('jwk', jwks.public, algorithm, true, ['verify']),
  };
}

async function proofs(request) {
  const out = {};
  const realNow = Date.now;
  for (const r of request.requests) {
    const pair = await importPair(request.keys[r.alg], r.alg);
    if (r.iat !== undefined) Date.now = () => r.iat * 1000;
    try {
      out[r.name] = await dpop.generateProof(pair, r.htu, r.htm, r.nonce, r.token);
    } finally {
      Date.now = realNow;
    }
  }
  return out;
}

const request = await readStdin();
const answer = request.mode === 'keys' ? await keys() : await proofs(request);
process.stdout.write(JSON.stringify(answer));
