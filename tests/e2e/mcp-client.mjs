// A scripted MCP client on the official TypeScript SDK, for the Rust integration tests.
//
// Usage: node mcp-client.mjs '<plan JSON>'
// A plan is one client, or an array of clients run concurrently:
//   { "transport": { "type": "http", "url": "...", "headers": { ... } }
//               | { "type": "stdio", "command": "...", "args": [...], "env": { ... } },
//     "steps": [ { "op": "listTools" } | { "op": "callTool", "name": "...", "arguments": { ... } }
//              | { "op": "listPrompts" } | { "op": "getPrompt", "name": "...", "arguments": { ... } }
//              | { "op": "listResources" } | { "op": "listResourceTemplates" }
//              | { "op": "readResource", "uri": "..." } ],
//     "repeat": 1 }
// Prints one JSON document on stdout: per client, the result of each step in order (a thrown error
// becomes { "error": "..." }). Exits 0 whenever it could print that document.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

function transportFor(spec) {
  switch (spec.type) {
    case 'http':
      return new StreamableHTTPClientTransport(new URL(spec.url), {
        requestInit: { headers: spec.headers ?? {} },
      });
    case 'stdio':
      return new StdioClientTransport({
        command: spec.command,
        args: spec.args ?? [],
        // Only what the plan names, plus PATH: nothing of the test's own environment leaks in.
        env: { PATH: process.env.PATH ?? '', ...(spec.env ?? {}) },
        stderr: 'inherit',
      });
    default:
      throw new Error(`unknown transport ${spec.type}`);
  }
}

async function step(client, s) {
  switch (s.op) {
    case 'listTools':
      return await client.listTools();
    case 'callTool':
      return await client.callTool({ name: s.name, arguments: s.arguments ?? {} });
    case 'listPrompts':
      return await client.listPrompts();
    case 'getPrompt':
      return await client.getPrompt({ name: s.name, arguments: s.arguments ?? {} });
    case 'listResources':
      return await client.listResources();
    case 'listResourceTemplates':
      return await client.listResourceTemplates();
    case 'readResource':
      return await client.readResource({ uri: s.uri });
    default:
      throw new Error(`unknown op ${s.op}`);
  }
}

async function runClient(plan) {
  const client = new Client({ name: 'integration-test', version: '1.0.0' });
  const out = [];
  try {
    await client.connect(transportFor(plan.transport));
  } catch (e) {
    return [{ error: `connect: ${e.message ?? e}` }];
  }
  try {
    for (let i = 0; i < (plan.repeat ?? 1); i++) {
      for (const s of plan.steps) {
        try {
          out.push(await step(client, s));
        } catch (e) {
          out.push({ error: String(e.message ?? e) });
        }
        // Yield between calls so that concurrent clients interleave.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  } finally {
    await client.close();
  }
  return out;
}

const plan = JSON.parse(process.argv[2]);
const results = Array.isArray(plan)
  ? await Promise.all(plan.map(runClient))
  : await runClient(plan);
process.stdout.write(JSON.stringify(results));
