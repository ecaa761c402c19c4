// The client side of the gateway's stream test: SSE streams opened and cut by the client, then a
// server-to-client request on the GET stream during a tools/call, in rounds, against the fixture
// (server.mjs) behind the gateway.
//
// Usage: node stream-order.mjs '<plan JSON>'
//   { "url": "<MCP URL through the gateway>", "token": "<bearer>", "statsUrl": "<fixture>/_fixture/stats",
//     "rounds": N, "timeoutMs": M, "waitForGet": true | false }
// Prints one JSON report on stdout; a failure becomes { "error": "...", ...the report so far }.
//
// Each round:
// 1. A session (raw fetch) opens its GET stream and three POST SSE streams (tools/list), reads the
//    first event of each POST stream and cuts them all, as the conformance suite's
//    server-sse-multiple-streams does. Then it opens a GET stream again: the backend answers 409
//    while it still holds the first one, so a 200 shows the cut reached it. The session is deleted.
// 2. The official SDK client opens a new session (and, on its own, the session's GET stream), and
//    calls `elicit_on_standalone_stream`, whose elicitation the fixture sends on the GET stream: a
//    tools/call that overtakes the GET on its way to the fixture finds no stream there, and the
//    elicitation is lost. With `waitForGet`, the call goes only once the fixture has received the
//    GET, so it was surely sent first; then the fixture should hold each GET (--get-delay-ms), like
//    a backend with work to do before the stream opens. Without it, the call goes at once, as the
//    SDK's own next request does, and the two race to the gateway.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema, LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';

const plan = JSON.parse(process.argv[2]);
const report = { rounds: [], cutGetStreams: 0 };
const auth = { authorization: `Bearer ${plan.token}` };
const mcpHeaders = (session) => ({
  ...auth,
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': LATEST_PROTOCOL_VERSION,
  ...(session ? { 'mcp-session-id': session } : {}),
});

async function stats() {
  return (await fetch(plan.statsUrl)).json();
}

/** Polls the fixture until `done(stats)` holds; fails after `timeoutMs`. */
async function untilStats(done, what) {
  const deadline = Date.now() + plan.timeoutMs;
  for (;;) {
    const current = await stats();
    if (done(current)) return current;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(current)}`);
    // Polling interval while waiting for a condition.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function post(session, message) {
  return fetch(plan.url, { method: 'POST', headers: mcpHeaders(session), body: JSON.stringify(message) });
}

/** Opens the session's GET stream; resolves with the response once its headers arrived. */
async function openGet(session, controller) {
  const response = await fetch(plan.url, {
    method: 'GET',
    headers: { ...mcpHeaders(session), accept: 'text/event-stream' },
    signal: controller.signal,
  });
  return response;
}

/** Step 1: streams opened and cut by the client; returns what the backend said to a new GET. */
async function cutStreams() {
  const init = await post(undefined, {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'cutter', version: '1' } },
  });
  const session = init.headers.get('mcp-session-id');
  await init.body.cancel();
  if (!session) throw new Error(`initialize gave no session (${init.status})`);
  const initialized = await post(session, { jsonrpc: '2.0', method: 'notifications/initialized' });
  await initialized.body?.cancel();

  const getCut = new AbortController();
  const get = await openGet(session, getCut);
  if (get.status !== 200) throw new Error(`the first GET stream answered ${get.status}`);
  const posts = await Promise.all(
    [0, 1, 2].map((i) => post(session, { jsonrpc: '2.0', id: 100 + i, method: 'tools/list', params: {} })),
  );
  for (const response of posts) {
    if (!response.headers.get('content-type')?.includes('text/event-stream')) {
      throw new Error(`tools/list did not answer with a stream (${response.status})`);
    }
    const reader = response.body.getReader();
    await reader.read();
    await reader.cancel();
  }
  getCut.abort();
  report.cutGetStreams += 1;
  await untilStats((s) => s.getStreamsClosedByPeer >= report.cutGetStreams, 'the cut GET stream never closed at the backend');

  const againCut = new AbortController();
  const again = await openGet(session, againCut);
  const reopened = again.status;
  againCut.abort();
  if (reopened === 200) {
    report.cutGetStreams += 1;
    // Before the DELETE, which would end the stream from the server's side.
    await untilStats((s) => s.getStreamsClosedByPeer >= report.cutGetStreams, 'the cut GET stream never closed at the backend');
  }
  const end = await fetch(plan.url, { method: 'DELETE', headers: mcpHeaders(session) });
  await end.body?.cancel();
  return reopened;
}

/** Step 2: an elicitation on the GET stream during a tools/call, through the official SDK client. */
async function elicitOnGetStream() {
  const client = new Client({ name: 'stream-order', version: '1' }, { capabilities: { elicitation: {} } });
  client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { answer: 'yes' } }));
  const transport = new StreamableHTTPClientTransport(new URL(plan.url), { requestInit: { headers: auth } });
  const before = (await stats()).getRequestsReceived;
  await client.connect(transport);
  // The SDK opens the GET stream after initialize without waiting for it.
  if (plan.waitForGet) {
    await untilStats((s) => s.getRequestsReceived > before, 'the SDK client opened no GET stream');
  }
  const started = Date.now();
  try {
    const result = await client.callTool({ name: 'elicit_on_standalone_stream', arguments: {} }, undefined, {
      timeout: plan.timeoutMs,
    });
    return { text: result.content?.[0]?.text, ms: Date.now() - started };
  } catch (e) {
    return { error: String(e?.message ?? e), ms: Date.now() - started };
  } finally {
    await client.close();
    report.cutGetStreams += 1;
  }
}

try {
  for (let round = 0; round < plan.rounds; round++) {
    const reopened = await cutStreams();
    const elicitation = await elicitOnGetStream();
    report.rounds.push({ reopened, elicitation });
  }
  report.stats = await untilStats(
    (s) => s.getStreamsClosedByPeer >= report.cutGetStreams,
    'cut GET streams still open at the backend',
  );
} catch (e) {
  report.error = String(e?.stack ?? e);
}
process.stdout.write(JSON.stringify(report));
