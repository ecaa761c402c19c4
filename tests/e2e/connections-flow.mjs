// A user signs in through the gateway with the official TypeScript SDK client to a route whose
// backend has its own authorization server: the gateway's sign-in chains into that server's (the
// user agent fills in both), and then the app calls the backend's `whoami` tool through the gateway.
//
// Usage: node connections-flow.mjs '{"url": "<the route's URL>", "username": "...", "password": "...",
//                                    "forgetUrl": "<POSTed after two calls, then the app calls again>"}'
// With `forgetUrl` (the remote server's `/_forget`), the app calls `whoami` a second time, has the
// remote authorization server forget everything, and calls again: the gateway cannot refresh the
// user's token there, so the app is asked to sign in again, which connects the user anew.
// Prints one JSON report: the pages visited, the app's tokens at the gateway (their SHA-256), what
// `whoami` answered; a failure becomes { "error": "...", ...the report so far }.
import crypto from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { userAgentFor } from './user-agent.mjs';

const plan = JSON.parse(process.argv[2]);
const report = { pages: [] };
const REDIRECT = 'http://127.0.0.1:1/oauth/callback';
const userAgent = userAgentFor(plan, REDIRECT, report);
const sha = (text) => crypto.createHash('sha256').update(text).digest('hex');

class AppProvider {
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return { client_name: 'Connections Test App', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  state() { return (this._state = `state-${Math.random().toString(36).slice(2)}`); }
  clientInformation() { return this._client; }
  saveClientInformation(info) { this._client = info; }
  tokens() { return this._tokens; }
  saveTokens(tokens) { this._tokens = tokens; }
  saveCodeVerifier(v) { this._verifier = v; }
  codeVerifier() { return this._verifier; }
  // As apps do: tokens the server refuses are dropped, and the SDK signs in again.
  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'client') this._client = undefined;
    if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
  }
  async redirectToAuthorization(url) {
    report.authorizeUrl = url.href;
    this.redirected = await userAgent(url.href);
    report.redirect = this.redirected;
  }
}

async function connect(provider) {
  const client = new Client({ name: 'connections-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(plan.url), { authProvider: provider });
  await client.connect(transport);
  return client;
}

const provider = new AppProvider();
try {
  try {
    await connect(provider);
    throw new Error('connected without signing in');
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  if (provider.redirected.error) {
    report.denied = provider.redirected;
    throw null;
  }
  await new StreamableHTTPClientTransport(new URL(plan.url), { authProvider: provider }).finishAuth(provider.redirected.code);
  report.gatewayAccessToken = sha(provider.tokens().access_token);
  const client = await connect(provider);
  report.tools = (await client.listTools()).tools.map((t) => t.name);
  const whoami = async (c) => JSON.parse((await c.callTool({ name: 'whoami', arguments: {} })).content[0].text);
  report.whoami = await whoami(client);
  if (plan.forgetUrl) {
    report.again = await whoami(client);
    await fetch(plan.forgetUrl, { method: 'POST' });
    const before = provider.redirected;
    try {
      report.afterForget = await whoami(client);
    } catch (e) {
      report.afterForgetError = String(e?.message ?? e);
      if (!(e instanceof UnauthorizedError) || provider.redirected === before) throw e;
      await client.close();
      report.signedInAgain = provider.redirected;
      await new StreamableHTTPClientTransport(new URL(plan.url), { authProvider: provider }).finishAuth(provider.redirected.code);
      const reconnected = await connect(provider);
      report.reconnected = await whoami(reconnected);
      await reconnected.close();
    }
  }
  await client.close();
} catch (e) {
  if (e !== null) report.error = String(e?.stack ?? e);
}
process.stdout.write(JSON.stringify(report), () => process.exit(0));
