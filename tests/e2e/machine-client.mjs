// A machine client on the official TypeScript SDK's client-credentials support (the MCP
// `oauth-client-credentials` extension): no browser, no user. It finds the gateway's authorization
// server from the 401, asks its token endpoint for a token with its secret
// (ClientCredentialsProvider, client_secret_basic) or a signed assertion (PrivateKeyJwtProvider,
// private_key_jwt), then lists the tools and calls one.
// Usage: node machine-client.mjs '{"url": "...", "clientId": "...", "expectedIssuer": "...",
//   "clientSecret": "..." | "privateKeyPem": "...", "algorithm": "RS256", "tool": "show_auth_token"}'
// Prints { tools, call, tokenRequests, refreshTokens, accessToken } or { error }.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider, PrivateKeyJwtProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const plan = JSON.parse(process.argv[2]);
const provider = plan.privateKeyPem
  ? new PrivateKeyJwtProvider({
    clientId: plan.clientId,
    privateKey: plan.privateKeyPem,
    algorithm: plan.algorithm ?? 'RS256',
    expectedIssuer: plan.expectedIssuer,
  })
  : new ClientCredentialsProvider({
    clientId: plan.clientId,
    clientSecret: plan.clientSecret,
    expectedIssuer: plan.expectedIssuer,
  });

// What the client sends to the token endpoint and gets back, counted.
let tokenRequests = 0;
let refreshTokens = 0;
const tracked = async (url, init) => {
  const response = await fetch(url, init);
  if (String(url).endsWith('/token')) {
    tokenRequests += 1;
    const body = await response.clone().json().catch(() => ({}));
    if (body.refresh_token) refreshTokens += 1;
  }
  return response;
};

try {
  const client = new Client({ name: 'machine-client', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(plan.url), { authProvider: provider, fetch: tracked });
  try {
    await client.connect(transport);
  } catch (error) {
    // The SDK's client answers the first 401 by getting a token, then asks the caller to connect again.
    if (error?.constructor?.name !== 'UnauthorizedError') throw error;
    await client.connect(new StreamableHTTPClientTransport(new URL(plan.url), { authProvider: provider, fetch: tracked }));
  }
  const tools = (await client.listTools()).tools.map((t) => t.name);
  const call = plan.tool ? await client.callTool({ name: plan.tool, arguments: {} }) : null;
  await client.close();
  const accessToken = provider.tokens()?.access_token;
  console.log(JSON.stringify({ tools, call, tokenRequests, refreshTokens, accessToken }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error?.stack ?? error), tokenRequests }));
}
