// The whole OAuth flow with the official TypeScript SDK client, as an MCP app would do it, with a
// headless user agent standing in for the browser (user-agent.mjs).
//
// Usage: node oauth-flow.mjs '<plan JSON>'
//   { "url": "<MCP server URL>", "username": "...", "password": "...",
//     "consent": "approve" | "deny", "tokenAuth": "none" | "client_secret_post" | "client_secret_basic",
//     "noRefresh": true (a client without the refresh_token grant),
//     "stepUp": { "name": "<tool>", "arguments": {...} } (after signing in, call a tool that may
//       need more scopes: on 403 insufficient_scope the SDK authorizes again, then it is retried;
//       the flow ends there) }
// Prints one JSON report on stdout; a failure becomes { "error": "...", ...the report so far }.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { AppProvider } from './app-provider.mjs';
import { userAgentFor } from './user-agent.mjs';

const plan = JSON.parse(process.argv[2]);
const report = { pages: [], authorizeUrl: null };
// The app's redirect URI. Nothing listens there: the user agent stops before fetching it.
const REDIRECT = 'http://127.0.0.1:1/oauth/callback';

const userAgent = userAgentFor(plan, REDIRECT, report);

async function connect(provider) {
  const client = new Client({ name: 'integration-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(plan.url), { authProvider: provider });
  await client.connect(transport);
  return { client, transport };
}

/**
 * Calls `call` as a signed-in app would: if the server asks for more scopes (403
 * insufficient_scope), the SDK sends the user through the authorization again and throws
 * UnauthorizedError; the app finishes that authorization and calls again.
 */
async function stepUp(provider, call) {
  const out = {};
  const before = provider.redirected;
  let { client } = await connect(provider);
  try {
    out.first = await client.callTool(call);
  } catch (e) {
    out.firstError = String(e?.message ?? e);
    // Its GET stream would keep this process alive until the gateway timed it out.
    await client.close();
    if (!(e instanceof UnauthorizedError) || provider.redirected === before) return out;
    out.authorizeUrl = report.authorizeUrl;
    const back = provider.redirected;
    if (back.error) {
      out.denied = back;
      return out;
    }
    const finish = new StreamableHTTPClientTransport(new URL(plan.url), { authProvider: provider });
    await finish.finishAuth(back.code);
    ({ client } = await connect(provider));
    out.scope = provider.tokens().scope;
    try {
      out.second = await client.callTool(call);
    } catch (e) {
      out.secondError = String(e?.message ?? e);
    }
  }
  await client.close();
  return out;
}

const provider = new AppProvider({
  name: 'Integration Test App',
  redirect: REDIRECT,
  metadata: {
    grant_types: plan.noRefresh ? ['authorization_code'] : ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: plan.tokenAuth ?? 'none',
  },
  authorize: async (url) => {
    report.authorizeUrl = url.href;
    return (report.redirect = await userAgent(url.href));
  },
  onClient: (info) => { report.registered = info; },
  onTokens: (tokens) => { (report.tokens ??= []).push(tokens); },
  invalidates: false,
});
try {
  // 1. No token: 401 -> discovery -> registration -> authorize -> login -> consent -> redirect.
  try {
    await connect(provider);
    throw new Error('connected without authorizing');
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  const back = provider.redirected;
  if (back.error) {
    report.denied = back;
    process.stdout.write(JSON.stringify(report));
    process.exit(0);
  }
  report.stateMatched = back.state === provider._state;
  // 2. The code for tokens, then the tools.
  const first = new StreamableHTTPClientTransport(new URL(plan.url), { authProvider: provider });
  await first.finishAuth(back.code);
  const { client } = await connect(provider);
  report.tools = (await client.listTools()).tools.map((t) => t.name).sort();
  if (plan.stepUp) {
    await client.close();
    report.firstScope = provider.tokens().scope;
    report.stepUp = await stepUp(provider, plan.stepUp);
    throw null;
  }
  report.shown = await client.callTool({ name: 'show_auth_token', arguments: {} });
  report.request = await client.callTool({ name: 'make_authenticated_request', arguments: { message: 'from the oauth flow' } });
  await client.close();

  // 3. Refresh: the SDK trades the refresh token for new tokens.
  const before = provider.tokens();
  const refreshed = await auth(provider, { serverUrl: new URL(plan.url) });
  const after = provider.tokens();
  report.refresh = {
    result: refreshed,
    accessChanged: after.access_token !== before.access_token,
    refreshRotated: after.refresh_token !== before.refresh_token,
  };
  const again = await connect(provider);
  report.afterRefresh = await again.client.callTool({ name: 'show_auth_token', arguments: {} });
  await again.client.close();

  // 4. The rotated-away refresh token, replayed later, is refused (and revokes the grant).
  const tokenUrl = new URL('/token', plan.url).href;
  const revokeUrl = new URL('/revoke', plan.url).href;
  const form = (fields) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });
  const clientFields = { client_id: provider._client.client_id, ...(provider._client.client_secret ? { client_secret: provider._client.client_secret } : {}) };

  // 5. Revocation: revoking the refresh token ends the grant; the access token is refused at once.
  // A plan with `keepGrant` stops before it, and reports the tokens it holds.
  if (plan.keepGrant) {
    report.kept = after;
    throw null;
  }
  const revoke = await fetch(revokeUrl, form({ token: after.refresh_token, token_type_hint: 'refresh_token', ...clientFields }));
  report.revokeStatus = revoke.status;
  const probe = await fetch(plan.url, {
    method: 'POST',
    headers: { authorization: `Bearer ${after.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'probe', version: '1' } } }),
  });
  report.afterRevoke = { status: probe.status, challenge: probe.headers.get('www-authenticate') };
  const reuse = await fetch(tokenUrl, form({ grant_type: 'refresh_token', refresh_token: after.refresh_token, ...clientFields }));
  report.refreshAfterRevoke = { status: reuse.status, body: await reuse.json() };
} catch (e) {
  if (e !== null) report.error = String(e?.stack ?? e);
}
// Then exit: a client left open by a failed step (its GET stream) would keep the process alive.
process.stdout.write(JSON.stringify(report), () => process.exit(0));
