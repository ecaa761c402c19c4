// MCP fixture server for the gateway's tests.
//
// What it is: a Streamable HTTP MCP server (stateful: one SDK Server and
// transport per Mcp-Session-Id) that implements every tool, resource, prompt
// and utility the official conformance suite (@modelcontextprotocol/conformance,
// `server` mode) calls, so the suite can run against it directly or through the
// gateway. Built on @modelcontextprotocol/sdk and plain node:http.
//
//   node server.mjs --port N [--get-delay-ms M]
//   MCP endpoint: http://127.0.0.1:N/mcp   (prints "listening on ..." when ready)
//
// Why the unusual behaviours exist:
// - Everything a tool sends while it runs (elicitation/create,
//   sampling/createMessage, log and progress notifications) goes through the
//   handler's `extra.sendRequest` / `extra.sendNotification`, i.e. RELATED to
//   the tools/call request, so it travels on that POST's own SSE stream. Sent
//   unrelated, it would go on the standalone GET stream and be lost whenever
//   the client's GET has not reached the server yet (a race, not a bug of the
//   thing under test).
// - The one deliberate exception is the tool `elicit_on_standalone_stream`: it
//   sends its elicitation UNRELATED to the call, so it rides the session's
//   standalone GET stream. The gateway's regression test uses it to check that
//   a proxied GET stream is opened and forwarded promptly.
// - `--get-delay-ms N` holds every GET /mcp for N ms before the SDK handles it,
//   standing in for a backend that does async work before it opens the stream
//   (with the tool above it makes the client's tools/call hang: the intended
//   failure mode the gateway is tested against).
// - `GET /_fixture/stats` reports how many MCP requests and GETs arrived, how GET streams ended, and whether a client
//   (i.e. the proxy in front) ever pipelined a request behind an unfinished
//   response on the same socket, which a correct proxy never does.
// - An in-memory EventStore (one per session) makes the SDK send SSE priming
//   events with ids and a retry field, and lets a client resume a closed
//   stream with Last-Event-ID (SEP-1699; scenario server-sse-polling).
// - Within a session, an MCP-Protocol-Version header naming an OLDER
//   supported version than the one negotiated at initialize is replaced by the
//   negotiated one before the SDK sees it. The SDK (1.32.2) sends priming
//   events, and lets a tool close its SSE stream, only when that header says
//   2025-11-25 or later, while scenario server-sse-polling (suite 0.1.16)
//   negotiates 2025-11-25 and then sends "2025-03-26" on its raw POST; without
//   this the scenario only gets WARNINGs (no priming event, no retry field).
// - It uses the SDK's low-level Server (which the SDK marks deprecated in
//   favour of McpServer) so tool inputSchemas are plain JSON Schema sent
//   exactly as written, keeping the 2020-12 keywords scenario
//   json-schema-2020-12 looks for.
// - Every request's Host and Origin must name localhost, 127.0.0.1 or [::1]
//   (any port), else 403: the DNS-rebinding protection a localhost server needs
//   (scenario dns-rebinding-protection).

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  LATEST_PROTOCOL_VERSION,
  McpError,
  ReadResourceRequestSchema,
  SUPPORTED_PROTOCOL_VERSIONS,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  isInitializeRequest
} from '@modelcontextprotocol/sdk/types.js';
import { PROMPTS, TEMPLATE, RESOURCES, complete, getPrompt, readResource } from './content.mjs';
import { MemoryEventStore } from './event-store.mjs';
import { sleep } from './media.mjs';
import { TOOLS } from './tools.mjs';

// ---------------------------------------------------------------- options

const { values: options } = parseArgs({
  options: {
    port: { type: 'string' },
    'get-delay-ms': { type: 'string', default: '0' }
  }
});
const PORT = Number(options.port);
const GET_DELAY_MS = Number(options['get-delay-ms']);
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535 || !(GET_DELAY_MS >= 0)) {
  console.error('usage: node server.mjs --port N [--get-delay-ms N]');
  process.exit(2);
}

const MCP_PATH = '/mcp';
const STATS_PATH = '/_fixture/stats';
// Suggested reconnection delay sent in SSE priming events (the `retry` field).
const SSE_RETRY_MS = 1000;
const MAX_BODY_BYTES = 4 * 1024 * 1024;

// ---------------------------------------------------------------- MCP server

function createMcpServer() {
  const server = new Server(
    { name: 'gateway-conformance-fixture', version: '1.0.0' },
    {
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        logging: {},
        completions: {}
      }
    }
  );
  // Subscriptions are only recorded: no resource here ever changes, so no
  // notifications/resources/updated is ever due.
  const subscriptions = new Set();

  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: Object.entries(TOOLS).map(([name, tool]) => ({
      name,
      description: tool.description,
      inputSchema: tool.inputSchema
    }))
  }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const tool = TOOLS[request.params.name];
    if (!tool) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    return tool.run(request.params.arguments ?? {}, { server, extra });
  });

  server.setRequestHandler(ListResourcesRequestSchema, () => ({
    resources: RESOURCES.map(({ uri, name, description, mimeType }) => ({ uri, name, description, mimeType }))
  }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({
    resourceTemplates: [
      {
        uriTemplate: TEMPLATE.uriTemplate,
        name: TEMPLATE.name,
        description: TEMPLATE.description,
        mimeType: TEMPLATE.mimeType
      }
    ]
  }));
  server.setRequestHandler(ReadResourceRequestSchema, (request) => ({
    contents: readResource(request.params.uri)
  }));
  server.setRequestHandler(SubscribeRequestSchema, (request) => {
    subscriptions.add(request.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, (request) => {
    subscriptions.delete(request.params.uri);
    return {};
  });

  server.setRequestHandler(ListPromptsRequestSchema, () => ({
    prompts: Object.entries(PROMPTS).map(([name, p]) => ({ name, description: p.description, arguments: p.arguments }))
  }));
  server.setRequestHandler(GetPromptRequestSchema, (request) =>
    getPrompt(request.params.name, request.params.arguments)
  );
  server.setRequestHandler(CompleteRequestSchema, (request) => complete(request.params));
  // logging/setLevel and ping are answered by the SDK itself.

  return server;
}

// ---------------------------------------------------------------- sessions

const sessions = new Map(); // Mcp-Session-Id -> { server, transport, protocolVersion }

// The protocol version the SDK will answer an initialize request with.
function negotiatedVersion(initBody) {
  const init = Array.isArray(initBody) ? initBody.find(isInitializeRequest) : initBody;
  const requested = init.params.protocolVersion;
  return SUPPORTED_PROTOCOL_VERSIONS.includes(requested) ? requested : LATEST_PROTOCOL_VERSION;
}

async function openSession(initBody) {
  const server = createMcpServer();
  const session = { server, transport: undefined, protocolVersion: negotiatedVersion(initBody) };
  session.transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: randomUUID,
    eventStore: new MemoryEventStore(),
    retryInterval: SSE_RETRY_MS,
    onsessioninitialized: (id) => sessions.set(id, session)
  });
  server.onclose = () => sessions.delete(session.transport.sessionId);
  await server.connect(session.transport);
  return session;
}

// The session named by the request's Mcp-Session-Id, or undefined after
// answering 400 (no header) or 404 (unknown or ended session, per the spec).
function findSession(req, res) {
  const id = req.headers['mcp-session-id'];
  if (!id) {
    sendJsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    return undefined;
  }
  const session = sessions.get(id);
  if (!session) sendJsonRpcError(res, 404, -32001, 'Session not found');
  else useNegotiatedVersion(req, session.protocolVersion);
  return session;
}

// Replaces an older (but supported) MCP-Protocol-Version header with the
// session's negotiated version; see the header comment for why. Unsupported
// values are left for the SDK to reject.
function useNegotiatedVersion(req, negotiated) {
  const sent = req.headers['mcp-protocol-version'];
  if (!SUPPORTED_PROTOCOL_VERSIONS.includes(sent) || sent >= negotiated) return;
  req.headers['mcp-protocol-version'] = negotiated;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i].toLowerCase() === 'mcp-protocol-version') req.rawHeaders[i + 1] = negotiated;
  }
}

// ---------------------------------------------------------------- HTTP

const LOCAL_HOSTNAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

function isLocalHostname(authority) {
  try {
    return LOCAL_HOSTNAMES.has(new URL(`http://${authority}`).hostname);
  } catch {
    return false;
  }
}

// DNS-rebinding protection: a reason to refuse the request, or undefined.
function rejectNonLocal(headers) {
  if (!headers.host || !isLocalHostname(headers.host)) return `Invalid Host header: ${headers.host}`;
  const origin = headers.origin;
  if (origin === undefined) return undefined;
  let originHost;
  try {
    originHost = new URL(origin).host;
  } catch {
    originHost = undefined;
  }
  return originHost && isLocalHostname(originHost) ? undefined : `Invalid Origin header: ${origin}`;
}

function sendJson(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function sendJsonRpcError(res, status, code, message) {
  sendJson(res, status, { jsonrpc: '2.0', error: { code, message }, id: null });
}

// The parsed JSON body, or undefined after answering 413 or 400.
async function readJsonBody(req, res) {
  const chunks = [];
  let size = 0;
  // Read to the end even when too large, so the 413 is not cut off by a reset.
  for await (const chunk of req) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  }
  if (size > MAX_BODY_BYTES) {
    sendJsonRpcError(res, 413, -32000, 'Request body too large');
    return undefined;
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    sendJsonRpcError(res, 400, -32700, 'Parse error: body is not JSON');
    return undefined;
  }
}

const hasInitialize = (body) => (Array.isArray(body) ? body.some(isInitializeRequest) : isInitializeRequest(body));

async function handlePost(req, res) {
  const body = await readJsonBody(req, res);
  if (body === undefined) return;
  if (req.headers['mcp-session-id'] === undefined) {
    if (!hasInitialize(body)) {
      sendJsonRpcError(res, 400, -32000, 'Bad Request: no Mcp-Session-Id and not an initialize request');
      return;
    }
    const session = await openSession(body);
    await session.transport.handleRequest(req, res, body);
    return;
  }
  const session = findSession(req, res);
  if (session) await session.transport.handleRequest(req, res, body);
}

async function handleGet(req, res) {
  if (GET_DELAY_MS > 0) {
    let gone = false;
    res.once('close', () => (gone = true));
    await sleep(GET_DELAY_MS);
    // A client that hung up meanwhile must not leave the SDK a stream that no
    // connection will ever cancel (it would refuse the session's next GET, 409).
    if (gone) return;
  }
  const session = findSession(req, res);
  if (session) await session.transport.handleRequest(req, res);
}

async function handleDelete(req, res) {
  const session = findSession(req, res);
  if (session) await session.transport.handleRequest(req, res);
}

async function handleRequest(req, res) {
  const refusal = rejectNonLocal(req.headers);
  if (refusal) {
    sendJsonRpcError(res, 403, -32000, refusal);
    return;
  }
  const path = new URL(req.url, 'http://localhost').pathname;
  if (path === STATS_PATH && req.method === 'GET') {
    sendJson(res, 200, stats);
    return;
  }
  if (path !== MCP_PATH) {
    sendJson(res, 404, { error: `no such path: ${path}` });
    return;
  }
  if (req.method === 'POST') await handlePost(req, res);
  else if (req.method === 'GET') await handleGet(req, res);
  else if (req.method === 'DELETE') await handleDelete(req, res);
  else {
    res.setHeader('Allow', 'GET, POST, DELETE');
    sendJsonRpcError(res, 405, -32000, 'Method not allowed');
  }
}

// ---------------------------------------------------------------- stats

// Served as JSON at GET /_fixture/stats.
const stats = { mcpRequestsReceived: 0, getRequestsReceived: 0, getStreamsOpened: 0, getStreamsClosedByPeer: 0, requestsOnBusySockets: 0 };

// Registered before the MCP handler, so it sees every request as it arrives.
function trackStats(httpServer) {
  const openResponses = new WeakMap(); // socket -> responses not yet closed
  httpServer.on('request', (req, res) => {
    const socket = req.socket;
    const open = openResponses.get(socket) ?? 0;
    // Node parses pipelined requests while an earlier response is still being
    // written; a request arriving then was sent behind an unfinished response.
    if (open > 0) stats.requestsOnBusySockets++;
    openResponses.set(socket, open + 1);
    res.once('close', () => openResponses.set(socket, openResponses.get(socket) - 1));
    if (req.url.split('?')[0] === MCP_PATH) stats.mcpRequestsReceived++;
    if (req.method === 'GET' && req.url.split('?')[0] === MCP_PATH) {
      // Counted on arrival, before any --get-delay-ms: a test waits for it to know its GET got here.
      stats.getRequestsReceived++;
      watchGetStream(res);
    }
  });
}

// A GET /mcp answered 200 is an SSE stream; it was closed by the peer if the
// connection went away before the server ended the response.
function watchGetStream(res) {
  let opened = false;
  const writeHead = res.writeHead;
  res.writeHead = function (...args) {
    const result = writeHead.apply(this, args);
    if (!opened && this.statusCode === 200) {
      opened = true;
      stats.getStreamsOpened++;
    }
    return result;
  };
  res.once('close', () => {
    if (opened && !res.writableFinished) stats.getStreamsClosedByPeer++;
  });
}

// ---------------------------------------------------------------- main

const httpServer = http.createServer();
trackStats(httpServer);
httpServer.on('request', (req, res) => {
  handleRequest(req, res).catch((error) => {
    console.error('error handling', req.method, req.url, error);
    if (!res.headersSent) sendJsonRpcError(res, 500, -32603, 'Internal error');
    else res.destroy();
  });
});
httpServer.listen(PORT, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${httpServer.address().port}${MCP_PATH}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const { transport } of sessions.values()) transport.close().catch(() => {});
    httpServer.close();
    httpServer.closeAllConnections();
    process.exit(0);
  });
}
