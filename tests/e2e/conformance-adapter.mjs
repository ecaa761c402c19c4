// The adapter between the official MCP conformance suite's `client` mode and the gateway as an OAuth
// client. The suite starts a mock MCP server with its own mock authorization server for a scenario
// and runs this with the server's URL as the last argument (`MCP_CONFORMANCE_SCENARIO` names the
// scenario, `MCP_CONFORMANCE_CONTEXT` holds a pre-registered client). The adapter runs the gateway
// (`GATEWAY_BIN`) with that URL as the backend of a `credentials = "oauth"` route, signs `alice`
// (of `USERS_FILE`) in through the gateway with the official TypeScript SDK client — the sign-in
// chains into the mock server's authorization — and then lists and calls the mock's tool through
// the gateway, as the suite's own reference client does. When the gateway asks the app to sign in
// again (the backend wants more scope, or moved to another authorization server), the app does, at
// most twice, as apps cap their retries.
//
// It exits 0 when every call succeeded, 1 otherwise; the gateway's log goes to stderr then. The
// suite judges the scenario by what its mock servers saw.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { AppProvider } from './app-provider.mjs';
import { userAgentFor } from './user-agent.mjs';

const backend = process.argv.at(-1);
const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? '{}');
const REDIRECT = 'http://127.0.0.1:1/oauth/callback';
const SIGN_INS = 3;

/** A port nothing listens on now. */
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The gateway's config: one route to the mock server, its own client there pre-registered when the scenario gives one. */
function config(dir, port) {
  const origin = `http://127.0.0.1:${port}`;
  const preRegistered = context.client_id
    ? `client_id = ${JSON.stringify(context.client_id)}\nclient_secret_env = "CONFORMANCE_CLIENT_SECRET"\n` +
      'token_endpoint_auth_method = "client_secret_basic"\n'
    : '';
  return `[server]
listen = "127.0.0.1:${port}"
public_url = "${origin}"

[store]
path = ${JSON.stringify(path.join(dir, 'gateway.db'))}
token_key_env = "TOKEN_KEY"

[provider]
kind = "local"
users_file = ${JSON.stringify(process.env.USERS_FILE)}

[[routes]]
path = "/remote"
upstream = ${JSON.stringify(backend)}
credentials = "oauth"

[routes.oauth]
# The mock servers listen on localhost, over http.
allow_private_network = true
${preRegistered}`;
}

/** Runs the gateway until this process ends; resolves with its origin once it is ready. */
async function startGateway(dir) {
  const port = await freePort();
  const file = path.join(dir, 'gateway.toml');
  fs.writeFileSync(file, config(dir, port));
  // Its output goes to a file: the suite waits for this process's own pipes to close.
  const log = fs.openSync(path.join(dir, 'gateway.log'), 'a');
  const gateway = spawn(process.env.GATEWAY_BIN, ['--config', file], {
    stdio: ['ignore', log, log],
    env: {
      ...process.env,
      TOKEN_KEY: crypto.randomBytes(32).toString('base64'),
      CONFORMANCE_CLIENT_SECRET: context.client_secret ?? '',
    },
  });
  process.on('exit', () => gateway.kill('SIGKILL'));
  const origin = `http://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 300; attempt++) {
    if (gateway.exitCode !== null) break;
    const ready = await fetch(`${origin}/readyz`).then((r) => r.ok, () => false);
    if (ready) return origin;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the gateway did not become ready');
}

/** Connects `provider`'s app to `url`, signing in first when the gateway asks it to. */
async function connect(url, provider) {
  for (;;) {
    const client = new Client({ name: 'conformance-adapter', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
    try {
      await client.connect(transport);
      return client;
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
      await transport.finishAuth(provider.redirected.code);
    }
  }
}

/** Calls `call` on a connected app; when the gateway asks the app to sign in again, it does, and calls again. */
async function signedIn(url, provider, state, call) {
  for (;;) {
    try {
      return await call(state.client);
    } catch (e) {
      if (!(e instanceof UnauthorizedError)) throw e;
      await state.client.close();
      await new StreamableHTTPClientTransport(url, { authProvider: provider }).finishAuth(provider.redirected.code);
      state.client = await connect(url, provider);
    }
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conformance-adapter-'));
let failed = false;
try {
  const origin = await startGateway(dir);
  const plan = { publicUrl: origin, username: 'alice', password: 'wonderland' };
  const report = { pages: [] };
  const userAgent = userAgentFor(plan, REDIRECT, report);
  let signIns = 0;
  const provider = new AppProvider({
    name: 'Conformance Adapter',
    redirect: REDIRECT,
    authorize: async (url) => {
      if (++signIns > SIGN_INS) throw new Error(`asked to sign in more than ${SIGN_INS} times`);
      const redirected = await userAgent(url.href);
      if (!redirected.code) throw new Error(`the sign-in ended without a code: ${JSON.stringify(redirected)}`);
      return redirected;
    },
  });
  const url = new URL(`${origin}/remote`);
  const state = { client: await connect(url, provider) };
  const tools = await signedIn(url, provider, state, (c) => c.listTools());
  console.log('tools:', tools.tools.map((t) => t.name).join(', '));
  const result = await signedIn(url, provider, state, (c) => c.callTool({ name: 'test-tool', arguments: {} }));
  console.log('test-tool:', JSON.stringify(result.content));
  if (result.isError) throw new Error('test-tool failed');
  await state.client.close();
} catch (e) {
  failed = true;
  console.error(`adapter: ${e?.stack ?? e}`);
  const log = path.join(dir, 'gateway.log');
  if (fs.existsSync(log)) console.error(`--- the gateway's log ---\n${fs.readFileSync(log, 'utf8').slice(-6000)}`);
}
fs.rmSync(dir, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
