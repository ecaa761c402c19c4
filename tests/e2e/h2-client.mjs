// HTTP/2 clients that misbehave, for the gateway's tests: Node's own http2 client, and raw frames
// over TLS where no well-behaved client would go. One scenario per run, given as JSON:
//
//   { "origin": "https://127.0.0.1:PORT", "ca": "/path/ca.pem", "scenario": "...", ... }
//
// - stalled: `count` POSTs to `path` (over `connections` connections) that each send half a body
//   and then nothing; reports, for each, the status it got (or how the stream ended) and when.
// - idle: one connection that opens no stream; reports when the gateway closed it (or that it was
//   still open after `wait_ms`).
// - rapid-reset: `count` streams opened and cancelled at once, each HEADERS with its RST_STREAM
//   (CVE-2023-44487); reports how many were sent, and whether the gateway sent GOAWAY or closed.
// - continuation: HEADERS without END_HEADERS followed by CONTINUATION frames, `count` of 16 KiB
//   (CVE-2024-27316); reports how many bytes were written before the gateway closed, and whether
//   it did.
//
// It prints one JSON report and exits.
import http2 from "node:http2";
import tls from "node:tls";
import fs from "node:fs";

const plan = JSON.parse(process.argv[2]);
const ca = fs.readFileSync(plan.ca);
const started = Date.now();
const elapsed = () => Date.now() - started;

function connect() {
  const client = http2.connect(plan.origin, { ca });
  client.on("error", () => {});
  return client;
}

async function stalled() {
  const connections = Array.from({ length: plan.connections ?? 1 }, connect);
  const half = "x".repeat(50);
  const outcomes = await Promise.all(
    Array.from({ length: plan.count }, (_, i) =>
      new Promise((resolve) => {
        const client = connections[i % connections.length];
        const headers = {
          ":method": "POST",
          ":path": plan.path,
          "content-type": plan.content_type ?? "application/json",
          "content-length": "100",
          ...(plan.headers ?? {}),
        };
        let request;
        try {
          request = client.request(headers, { endStream: false });
        } catch (error) {
          resolve({ outcome: `refused: ${error.code}`, ms: elapsed() });
          return;
        }
        let status = null;
        request.on("response", (h) => {
          status = h[":status"];
        });
        request.on("data", () => {});
        request.on("error", () => {});
        request.on("close", () =>
          resolve({ outcome: status === null ? `reset ${request.rstCode}` : String(status), ms: elapsed() }),
        );
        request.write(half);
      }),
    ),
  );
  for (const c of connections) c.destroy();
  const by = {};
  for (const o of outcomes) by[o.outcome] = (by[o.outcome] ?? 0) + 1;
  return { outcomes: by, max_ms: Math.max(...outcomes.map((o) => o.ms)) };
}

async function idle() {
  const client = connect();
  await new Promise((resolve) => client.on("connect", resolve));
  const closed = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), plan.wait_ms);
    client.on("close", () => {
      clearTimeout(timer);
      resolve(elapsed());
    });
  });
  client.destroy();
  return { closed_after_ms: closed };
}

async function rapidReset() {
  // Raw frames, as the attack sends them: each stream's HEADERS and its RST_STREAM together.
  const conn = await rawConnection();
  await conn.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0))]));
  const get = Buffer.from([0x82, 0x87, 0x84, 0x41, 0x09, ...Buffer.from("127.0.0.1")]);
  let sent = 0;
  for (let stream = 1; sent < plan.count && !conn.closed(); stream += 2) {
    const cancel = Buffer.alloc(4);
    cancel.writeUInt32BE(8); // CANCEL
    if (!(await conn.write(Buffer.concat([frame(1, 0x5, stream, get), frame(3, 0, stream, cancel)])))) break;
    sent++;
  }
  await conn.settle(plan.wait_ms ?? 2000);
  conn.destroy();
  return { sent, goaway: conn.goaway(), closed: conn.closed() };
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/// A TLS connection speaking raw HTTP/2 frames: what it wrote, whether the gateway closed it, and
/// the error code of a GOAWAY it sent.
async function rawConnection() {
  const url = new URL(plan.origin);
  const socket = tls.connect({ host: url.hostname, port: Number(url.port), ca, ALPNProtocols: ["h2"] });
  await new Promise((resolve, reject) => {
    socket.on("secureConnect", resolve);
    socket.on("error", reject);
  });
  let closed = false;
  let goaway = null;
  let received = Buffer.alloc(0);
  socket.on("close", () => {
    closed = true;
  });
  socket.on("error", () => {});
  socket.on("data", (data) => {
    received = Buffer.concat([received, data]);
    while (received.length >= 9) {
      const length = received.readUIntBE(0, 3);
      if (received.length < 9 + length) break;
      if (received[3] === 7 && length >= 8) goaway = received.readUInt32BE(9 + 4);
      received = received.subarray(9 + length);
    }
  });
  return {
    write: (bytes) =>
      new Promise((resolve) => {
        if (closed) return resolve(false);
        socket.write(bytes, (error) => resolve(!error));
      }),
    closed: () => closed,
    goaway: () => goaway,
    settle: async (ms) => {
      const until = Date.now() + ms;
      while (!closed && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    },
    destroy: () => socket.destroy(),
  };
}

/// A frame: 9-byte header and payload.
function frame(type, flags, stream, payload) {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header.writeUInt8(type, 3);
  header.writeUInt8(flags, 4);
  header.writeUInt32BE(stream, 5);
  return Buffer.concat([header, payload]);
}

async function continuation() {
  const conn = await rawConnection();
  // HPACK: :method GET, :scheme https, :path / (static table), then literal headers without
  // indexing, each "x-a" with a long value, for as long as the gateway reads them.
  const literal = (value) =>
    Buffer.concat([Buffer.from([0x00, 3]), Buffer.from("x-a"), Buffer.from([0x7f]), hpackLength(value.length - 127), Buffer.from(value)]);
  await conn.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0))]));
  await conn.write(frame(1, 0, 1, Buffer.from([0x82, 0x87, 0x84])));
  const chunk = literal("a".repeat(16 * 1024 - 8));
  let written = 0;
  for (let i = 0; i < plan.count && !conn.closed(); i++) {
    if (!(await conn.write(frame(9, 0, 1, chunk)))) break;
    written += chunk.length;
  }
  await conn.settle(plan.wait_ms ?? 5000);
  conn.destroy();
  return { written, closed: conn.closed(), goaway: conn.goaway() };
}

/// An HPACK integer continuation for a length past the 7-bit prefix.
function hpackLength(rest) {
  const bytes = [];
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

const scenarios = { stalled, idle, "rapid-reset": rapidReset, continuation };
const report = await scenarios[plan.scenario]();
console.log(JSON.stringify(report));
process.exit(0);
