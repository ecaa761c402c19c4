// A user signs in through the gateway with the official TypeScript SDK client to a route whose
// backend has its own authorization server: the gateway's sign-in chains into that server's (the
// user agent fills in both), and then the app calls the backend's `whoami` tool through the gateway.
//
// Usage: node connections-flow.mjs '{"url": "<the route's URL>", "username": "...", "password": "...",
//                                    "steps": ["whoami", {"post": "<url>"}, …],
//                                    "publicUrl": "...", "replicas": ["<origin>", …]}'
// With `replicas`, every request to the gateway's public URL (the browser's and the app's) goes to
// the next replica in turn, as behind a load balancer.
// After signing in, the app takes each step: calls `whoami` (default: once), or POSTs to a URL (the
// remote server's controls). When a call is refused because the user must sign in again (the
// gateway lost their connection), the app signs in again, as apps do, and calls once more; the step
// records that it did, and how many 401s the app was answered.
import crypto from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { AppProvider } from './app-provider.mjs';
import { balancedFetch, userAgentFor } from './user-agent.mjs';

const plan = JSON.parse(process.argv[2]);
const report = { pages: [] };
const REDIRECT = 'http://127.0.0.1:1/oauth/callback';
const userAgent = userAgentFor(plan, REDIRECT, report);
const toReplicas = balancedFetch(plan);
/** The app's requests, counting the 401s it is answered (each step reports how many it saw). */
let unauthorized = 0;
const balanced = (input, init) => toReplicas(input, init).then((response) => {
  if (response.status === 401) unauthorized++;
  return response;
});
const sha = (text) => crypto.createHash('sha256').update(text).digest('hex');

async function connect(provider) {
  const client = new Client({ name: 'connections-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(plan.url), { authProvider: provider, fetch: balanced });
  await client.connect(transport);
  return client;
}

const provider = new AppProvider({
  name: 'Connections Test App',
  redirect: REDIRECT,
  authorize: async (url) => {
    report.authorizeUrl = url.href;
    return (report.redirect = await userAgent(url.href));
  },
});
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
  await new StreamableHTTPClientTransport(new URL(plan.url), { authProvider: provider, fetch: balanced }).finishAuth(provider.redirected.code);
  report.gatewayAccessToken = sha(provider.tokens().access_token);
  const client = await connect(provider);
  report.tools = (await client.listTools()).tools.map((t) => t.name);
  const whoami = async (c) => JSON.parse((await c.callTool({ name: 'whoami', arguments: {} })).content[0].text);
  let current = client;
  report.steps = [];
  for (const step of plan.steps ?? ['whoami']) {
    if (step.post) {
      await fetch(step.post, { method: 'POST' });
      report.steps.push({ posted: step.post });
      continue;
    }
    const before = provider.redirected;
    const unauthorizedBefore = unauthorized;
    try {
      report.steps.push({ whoami: await whoami(current), unauthorized: unauthorized - unauthorizedBefore });
    } catch (e) {
      if (!(e instanceof UnauthorizedError) || provider.redirected === before) throw e;
      // Asked to sign in again: the user agent did; the app finishes it and calls again.
      await current.close();
      const again = provider.redirected;
      if (again.error) {
        report.steps.push({ signedInAgain: again });
        throw null;
      }
      await new StreamableHTTPClientTransport(new URL(plan.url), { authProvider: provider, fetch: balanced }).finishAuth(again.code);
      current = await connect(provider);
      report.steps.push({ signedInAgain: again, whoami: await whoami(current) });
    }
  }
  report.whoami = report.steps.find((s) => s.whoami)?.whoami;
  await current.close();
} catch (e) {
  if (e !== null) report.error = String(e?.stack ?? e);
}
process.stdout.write(JSON.stringify(report), () => process.exit(0));
