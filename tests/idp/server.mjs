// OAuth 2.0 authorization server for the test suite, built on oidc-provider 8.8.1.
//
// Usage: node server.mjs CONFIG_JSON_PATH
//
// The server listens on 127.0.0.1 at a free port and writes one JSON line to stdout
// once it accepts requests: {"ready": true, "port": N, "issuer": "http://127.0.0.1:N"}.
// It exits when stdin closes and on SIGTERM or SIGINT. Log messages go to stderr.
//
// The configuration file is a JSON object with these keys:
// - clients: client metadata as oidc-provider accepts it (required).
// - scopes: scopes besides openid and offline_access (default ["read", "write"]).
// - accessTokenTtl, clientCredentialsTtl, refreshTokenTtl, deviceCodeTtl: token
//   lifetimes in seconds (defaults 120, the value of accessTokenTtl, 14 days and
//   600).
// - rotateRefreshToken: issue a new refresh token on every refresh (default true).
// - deviceInterval: the `interval` in seconds of device authorization responses
//   (default 1).
// - enforceSlowDown: reject device-code polls that come too fast with a `slow_down`
//   error (default false).
//
// On top of oidc-provider, this server adds behaviour that oidc-provider 8.8.1
// lacks and that the client library must be tested against:
// - Strict client authentication. A client registered for client_secret_basic is
//   rejected when it sends client_secret in the body, and the other way round.
// - The `interval` field in the device authorization response, and `slow_down`
//   errors for device-code polls that come too fast (RFC 8628, section 3.5).
// - Request counters at GET /_test/stats and POST /_test/reset.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';

import Provider from 'oidc-provider';

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';
const MAX_BODY_BYTES = 56 * 1024; // the body size limit oidc-provider applies
const SLOW_DOWN_INCREMENT_SECONDS = 5; // RFC 8628, section 3.5

// Endpoints where the registered token_endpoint_auth_method is enforced.
const CLIENT_AUTH_PATHS = new Map([
  ['/token', 'token'],
  ['/token/revocation', 'revocation'],
  ['/token/introspection', 'introspection'],
  ['/device/auth', 'device_authorization'],
]);

const STATS_PATH = '/_test/stats';
const RESET_PATH = '/_test/reset';

function log(message) {
  console.error(`test-idp: ${message}`);
}

function loadSettings(path) {
  const raw = JSON.parse(readFileSync(path, 'utf8'));
  if (!Array.isArray(raw.clients)) {
    throw new Error(`configuration ${path} has no "clients" list`);
  }
  const scopes = new Set(['openid', 'offline_access', ...(raw.scopes ?? ['read', 'write'])]);
  return {
    clients: raw.clients,
    scopes: [...scopes],
    accessTokenTtl: raw.accessTokenTtl ?? 120,
    clientCredentialsTtl: raw.clientCredentialsTtl ?? raw.accessTokenTtl ?? 120,
    refreshTokenTtl: raw.refreshTokenTtl ?? 14 * 24 * 60 * 60,
    deviceCodeTtl: raw.deviceCodeTtl ?? 600,
    rotateRefreshToken: raw.rotateRefreshToken ?? true,
    deviceInterval: raw.deviceInterval ?? 1,
    enforceSlowDown: raw.enforceSlowDown ?? false,
  };
}

// Read the whole request body as a string. The promise is rejected for bodies above
// MAX_BODY_BYTES.
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`request body exceeds ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// Decode the client id of an HTTP Basic header. Client ids and secrets are
// form-urlencoded before base64 encoding (RFC 6749, section 2.3.1).
function basicClientId(authorization) {
  const [scheme, value] = authorization.split(' ');
  if (scheme.toLowerCase() !== 'basic' || !value) {
    return undefined;
  }
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const separator = decoded.indexOf(':');
  if (separator === -1) {
    return undefined;
  }
  try {
    return decodeURIComponent(decoded.slice(0, separator).replace(/\+/g, '%20'));
  } catch {
    return undefined;
  }
}

// Return the authentication method a request uses and the client id it names.
function detectClientAuth(ctx, form) {
  const authorization = ctx.get('authorization');
  if (authorization && authorization.toLowerCase().startsWith('basic ')) {
    return { method: 'client_secret_basic', clientId: basicClientId(authorization) };
  }
  if (form.has('client_assertion')) {
    return { method: 'client_assertion', clientId: form.get('client_id') ?? undefined };
  }
  if (form.has('client_secret')) {
    return { method: 'client_secret_post', clientId: form.get('client_id') ?? undefined };
  }
  return { method: 'none', clientId: form.get('client_id') ?? undefined };
}

function sendJson(ctx, status, body) {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

function createCounters() {
  return { token_requests: {}, endpoint_requests: {} };
}

function increment(counts, key) {
  counts[key] = (counts[key] ?? 0) + 1;
}

function createTestMiddleware(settings) {
  const registeredAuthMethods = new Map(
    settings.clients.map((client) => [
      client.client_id,
      client.token_endpoint_auth_method ?? 'client_secret_basic',
    ]),
  );
  let counters = createCounters();
  // device_code -> { interval: seconds, lastPoll: performance.now() value or null }
  const devicePolls = new Map();

  function checkDevicePoll(ctx, deviceCode) {
    let state = devicePolls.get(deviceCode);
    if (!state) {
      state = { interval: settings.deviceInterval, lastPoll: null };
      devicePolls.set(deviceCode, state);
    }
    const now = performance.now();
    const elapsedMs = state.lastPoll === null ? Infinity : now - state.lastPoll;
    state.lastPoll = now;
    if (settings.enforceSlowDown && elapsedMs < state.interval * 1000) {
      state.interval += SLOW_DOWN_INCREMENT_SECONDS;
      log(`slow_down: device code polled after ${Math.round(elapsedMs)} ms, interval is now ${state.interval} s`);
      sendJson(ctx, 400, {
        error: 'slow_down',
        error_description: `polling too fast, wait at least ${state.interval} seconds between requests`,
      });
      return false;
    }
    return true;
  }

  return async function testMiddleware(ctx, next) {
    if (ctx.path === STATS_PATH && ctx.method === 'GET') {
      sendJson(ctx, 200, counters);
      return;
    }
    if (ctx.path === RESET_PATH && ctx.method === 'POST') {
      counters = createCounters();
      sendJson(ctx, 200, counters);
      return;
    }

    const endpoint = CLIENT_AUTH_PATHS.get(ctx.path);
    if (!endpoint || ctx.method !== 'POST') {
      await next();
      return;
    }
    increment(counters.endpoint_requests, endpoint);

    // Other content types are left to oidc-provider, which rejects them.
    if (!ctx.is(FORM_CONTENT_TYPE)) {
      await next();
      return;
    }

    // Reading the body here consumes the request stream, so oidc-provider parses
    // the string stored in req.body instead. It prints a one-time warning about an
    // upstream body parser when it does so.
    let rawBody;
    try {
      rawBody = await readBody(ctx.req);
    } catch (error) {
      log(`invalid_request on ${ctx.path}: failed to read the request body: ${error.message}`);
      sendJson(ctx, 400, { error: 'invalid_request', error_description: error.message });
      return;
    }
    ctx.req.body = rawBody;
    const form = new URLSearchParams(rawBody);

    if (endpoint === 'token') {
      increment(counters.token_requests, form.get('grant_type') ?? '(missing)');
    }

    const { method: usedMethod, clientId } = detectClientAuth(ctx, form);
    const registeredMethod = registeredAuthMethods.get(clientId);
    // Unknown clients and requests with both a Basic header and a body secret are
    // left to oidc-provider, which rejects them with its own error.
    const mixed = usedMethod === 'client_secret_basic' && form.has('client_secret');
    if (registeredMethod !== undefined && !mixed && registeredMethod !== usedMethod) {
      log(`invalid_client on ${ctx.path}: client ${clientId} registered ${registeredMethod}, used ${usedMethod}`);
      if (usedMethod === 'client_secret_basic') {
        ctx.set('WWW-Authenticate', 'Basic realm="test-idp", error="invalid_client"');
      }
      sendJson(ctx, 401, {
        error: 'invalid_client',
        error_description: `client authentication method mismatch: registered ${registeredMethod}, used ${usedMethod}`,
      });
      return;
    }

    if (endpoint === 'token' && form.get('grant_type') === DEVICE_CODE_GRANT) {
      if (!checkDevicePoll(ctx, form.get('device_code') ?? '')) {
        return;
      }
    }

    await next();

    // oidc-provider 8.8.1 leaves `interval` out of the device authorization response.
    if (endpoint === 'device_authorization' && ctx.status === 200 && ctx.body?.device_code) {
      ctx.body = { ...ctx.body, interval: settings.deviceInterval };
      devicePolls.set(ctx.body.device_code, { interval: settings.deviceInterval, lastPoll: null });
    }
  };
}

function createProvider(issuer, settings) {
  const provider = new Provider(issuer, {
    clients: settings.clients,
    scopes: settings.scopes,
    clockTolerance: 0,
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { methods: ['S256'], required: () => true },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
    ttl: {
      AccessToken: settings.accessTokenTtl,
      ClientCredentials: settings.clientCredentialsTtl,
      RefreshToken: settings.refreshTokenTtl,
      DeviceCode: settings.deviceCodeTtl,
    },
    // A refresh token only for a grant that carries offline_access, which the
    // server keeps in a code grant only when the request also sent
    // prompt=consent (OpenID Connect Core 1.0, section 11).
    issueRefreshToken: async (ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    rotateRefreshToken: settings.rotateRefreshToken,
  });
  provider.use(createTestMiddleware(settings));
  provider.on('server_error', (ctx, error) => log(`server_error on ${ctx.path}: ${error.stack}`));
  return provider;
}

// oidc-provider 8.8.1 checks the metadata of configured clients only when a request
// first uses the client. Loading each client here turns invalid metadata into a
// start-up failure instead of an invalid_client response in some later test.
async function validateClients(provider, clients) {
  for (const { client_id: clientId } of clients) {
    try {
      await provider.Client.find(clientId);
    } catch (error) {
      throw new Error(`invalid metadata for client ${clientId}: ${error.error_description ?? error.message}`);
    }
  }
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

async function main() {
  const configPath = process.argv[2];
  if (!configPath) {
    console.error('usage: node server.mjs CONFIG_JSON_PATH');
    process.exit(2);
  }
  // oidc-provider prints its notices with console.info, which writes to stdout.
  // stdout carries only the ready line, so the notices go to stderr.
  console.info = console.error;

  const settings = loadSettings(configPath);
  const server = createServer();
  const port = await listen(server);
  const issuer = `http://127.0.0.1:${port}`;
  const provider = createProvider(issuer, settings);
  await validateClients(provider, settings.clients);
  server.on('request', provider.callback());

  const shutdown = (reason) => {
    log(`stopping (${reason})`);
    server.closeAllConnections();
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();

  log(`listening at ${issuer} with ${settings.clients.length} clients`);
  process.stdout.write(`${JSON.stringify({ ready: true, port, issuer })}\n`);
}

main().catch((error) => {
  console.error(`test-idp: failed to start: ${error.stack}`);
  process.exit(1);
});
