// The fixture's tools, each as the conformance suite calls it. Part of
// server.mjs, whose header says why some behave as they do.

import { CreateMessageResultSchema, ElicitResultSchema } from '@modelcontextprotocol/sdk/types.js';
import { WAV_BASE64, image, sleep, text } from './media.mjs';

const NO_ARGS = { type: 'object', properties: {} };

function stringArgs(...names) {
  const properties = Object.fromEntries(names.map((name) => [name, { type: 'string' }]));
  return { type: 'object', properties, required: names };
}

// Each tool: description, inputSchema (raw JSON Schema, sent as is) and
// run(args, ctx) returning a CallToolResult. ctx = { server, extra }.
export const TOOLS = {
  test_simple_text: {
    description: 'Returns a simple text content',
    inputSchema: NO_ARGS,
    run: () => ({ content: [text('This is a simple text response for testing.')] })
  },

  test_image_content: {
    description: 'Returns an image content (1x1 PNG)',
    inputSchema: NO_ARGS,
    run: () => ({ content: [image()] })
  },

  test_audio_content: {
    description: 'Returns an audio content (tiny WAV)',
    inputSchema: NO_ARGS,
    run: () => ({ content: [{ type: 'audio', data: WAV_BASE64, mimeType: 'audio/wav' }] })
  },

  test_embedded_resource: {
    description: 'Returns an embedded resource content',
    inputSchema: NO_ARGS,
    run: () => ({
      content: [
        {
          type: 'resource',
          resource: {
            uri: 'test://embedded-resource',
            mimeType: 'text/plain',
            text: 'This is an embedded resource content.'
          }
        }
      ]
    })
  },

  test_multiple_content_types: {
    description: 'Returns text, image and resource contents together',
    inputSchema: NO_ARGS,
    run: () => ({
      content: [
        text('Multiple content types test:'),
        image(),
        {
          type: 'resource',
          resource: {
            uri: 'test://mixed-content-resource',
            mimeType: 'application/json',
            text: JSON.stringify({ test: 'data', value: 123 })
          }
        }
      ]
    })
  },

  test_tool_with_logging: {
    description: 'Sends three info log notifications while it runs',
    inputSchema: NO_ARGS,
    run: async (_args, ctx) => {
      await log(ctx, 'info', 'Tool execution started');
      await sleep(50);
      await log(ctx, 'info', 'Tool processing data');
      await sleep(50);
      await log(ctx, 'info', 'Tool execution completed');
      return { content: [text('Tool with logging executed successfully')] };
    }
  },

  test_error_handling: {
    description: 'Always fails, reporting the failure as a tool error',
    inputSchema: NO_ARGS,
    run: () => ({
      isError: true,
      content: [text('This tool intentionally returns an error for testing')]
    })
  },

  test_tool_with_progress: {
    description: 'Reports progress 0, 50 and 100 of 100 while it runs',
    inputSchema: NO_ARGS,
    run: async (_args, { extra }) => {
      const progressToken = extra._meta?.progressToken;
      for (const progress of [0, 50, 100]) {
        if (progressToken !== undefined) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken, progress, total: 100 }
          });
        }
        if (progress < 100) await sleep(50);
      }
      return { content: [text('Tool with progress executed successfully')] };
    }
  },

  test_sampling: {
    description: 'Asks the client to sample an LLM with the given prompt',
    inputSchema: stringArgs('prompt'),
    run: async ({ prompt }, ctx) => {
      if (!ctx.server.getClientCapabilities()?.sampling) {
        return { isError: true, content: [text('Client does not support sampling')] };
      }
      const result = await ctx.extra.sendRequest(
        {
          method: 'sampling/createMessage',
          params: {
            messages: [{ role: 'user', content: text(String(prompt)) }],
            maxTokens: 100
          }
        },
        CreateMessageResultSchema
      );
      const reply = result.content?.type === 'text' ? result.content.text : JSON.stringify(result.content);
      return { content: [text(`LLM response: ${reply}`)] };
    }
  },

  test_elicitation: {
    description: 'Asks the user (through the client) for a username and email',
    inputSchema: stringArgs('message'),
    run: ({ message }, ctx) =>
      elicitAndReport(ctx, 'User response', {
        message: String(message),
        requestedSchema: {
          type: 'object',
          properties: {
            username: { type: 'string', description: "User's response" },
            email: { type: 'string', description: "User's email address" }
          },
          required: ['username', 'email']
        }
      })
  },

  // SEP-1034: every primitive type carries a default.
  test_elicitation_sep1034_defaults: {
    description: 'Elicitation whose schema has defaults for every primitive type',
    inputSchema: NO_ARGS,
    run: (_args, ctx) =>
      elicitAndReport(ctx, 'Elicitation completed', {
        message: 'Please review and update the form fields with defaults',
        requestedSchema: {
          type: 'object',
          properties: {
            name: { type: 'string', description: 'User name', default: 'John Doe' },
            age: { type: 'integer', description: 'User age', default: 30 },
            score: { type: 'number', description: 'User score', default: 95.5 },
            status: {
              type: 'string',
              description: 'User status',
              enum: ['active', 'inactive', 'pending'],
              default: 'active'
            },
            verified: { type: 'boolean', description: 'Verification status', default: true }
          }
        }
      })
  },

  // SEP-1330: the five enum shapes (untitled/titled single and multi select,
  // and the deprecated enumNames form).
  test_elicitation_sep1330_enums: {
    description: 'Elicitation whose schema uses all five enum variants',
    inputSchema: NO_ARGS,
    run: (_args, ctx) =>
      elicitAndReport(ctx, 'Elicitation completed', {
        message: 'Please pick from the enum fields',
        requestedSchema: {
          type: 'object',
          properties: {
            untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
            titledSingle: {
              type: 'string',
              oneOf: [
                { const: 'value1', title: 'First Option' },
                { const: 'value2', title: 'Second Option' },
                { const: 'value3', title: 'Third Option' }
              ]
            },
            legacyEnum: {
              type: 'string',
              enum: ['opt1', 'opt2', 'opt3'],
              enumNames: ['Option One', 'Option Two', 'Option Three']
            },
            untitledMulti: {
              type: 'array',
              items: { type: 'string', enum: ['option1', 'option2', 'option3'] }
            },
            titledMulti: {
              type: 'array',
              items: {
                anyOf: [
                  { const: 'value1', title: 'First Choice' },
                  { const: 'value2', title: 'Second Choice' },
                  { const: 'value3', title: 'Third Choice' }
                ]
              }
            }
          }
        }
      })
  },

  // SEP-1613: the inputSchema keeps its 2020-12 keywords ($schema, $defs,
  // additionalProperties); the low-level SDK Server passes it through as is.
  json_schema_2020_12_tool: {
    description: 'Tool with JSON Schema 2020-12 features',
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: {
        address: {
          type: 'object',
          properties: { street: { type: 'string' }, city: { type: 'string' } }
        }
      },
      properties: {
        name: { type: 'string' },
        address: { $ref: '#/$defs/address' }
      },
      additionalProperties: false
    },
    run: (args) => ({ content: [text(`Received: ${JSON.stringify(args ?? {})}`)] })
  },

  // SEP-1699: close this call's SSE stream before answering, so the client has
  // to come back with Last-Event-ID and gets the result replayed.
  test_reconnection: {
    description: 'Closes its SSE stream mid-call; the result arrives after the client resumes',
    inputSchema: NO_ARGS,
    run: async (_args, { extra }) => {
      extra.closeSSEStream?.();
      await sleep(100);
      return { content: [text('Reconnection test completed: the result was delivered after the stream closed')] };
    }
  },

  // Gateway regression test only (see the header): elicitation UNRELATED to the
  // call, so it goes on the standalone GET stream.
  elicit_on_standalone_stream: {
    description: 'Elicits an answer over the standalone GET SSE stream (gateway regression test)',
    inputSchema: NO_ARGS,
    run: async (_args, { server }) => {
      const result = await server.request(
        {
          method: 'elicitation/create',
          params: {
            message: 'Please answer (sent on the standalone stream)',
            requestedSchema: {
              type: 'object',
              properties: { answer: { type: 'string' } },
              required: ['answer']
            }
          }
        },
        ElicitResultSchema
      );
      const reply = result.action === 'accept' ? `answer=${result.content?.answer}` : `action=${result.action}`;
      return { content: [text(reply)] };
    }
  }
};

// A log notification related to the running request, honouring the level the
// client chose with logging/setLevel (the SDK keeps it per session).
async function log({ server, extra }, level, data) {
  if (server.isMessageIgnored(level, extra.sessionId)) return;
  await extra.sendNotification({
    method: 'notifications/message',
    params: { level, logger: 'fixture', data }
  });
}

// Sends elicitation/create related to the running call and reports the
// outcome as text.
async function elicitAndReport({ server, extra }, label, params) {
  if (!server.getClientCapabilities()?.elicitation) {
    return { isError: true, content: [text('Client does not support elicitation')] };
  }
  const result = await extra.sendRequest({ method: 'elicitation/create', params }, ElicitResultSchema);
  return {
    content: [text(`${label}: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`)]
  };
}
