// The fixture's resources, prompts and completions. Part of server.mjs.

import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { PNG_BASE64, image, text } from './media.mjs';

// ---------------------------------------------------------------- resources

export const RESOURCES = [
  {
    uri: 'test://static-text',
    name: 'static-text',
    description: 'A static text resource',
    mimeType: 'text/plain',
    contents: { text: 'This is the content of the static text resource.' }
  },
  {
    uri: 'test://static-binary',
    name: 'static-binary',
    description: 'A static binary resource (1x1 PNG)',
    mimeType: 'image/png',
    contents: { blob: PNG_BASE64 }
  },
  {
    uri: 'test://watched-resource',
    name: 'watched-resource',
    description: 'A resource clients may subscribe to',
    mimeType: 'text/plain',
    contents: { text: 'This resource can be watched.' }
  }
];

export const TEMPLATE = {
  uriTemplate: 'test://template/{id}/data',
  name: 'template-data',
  description: 'Data for the given id',
  mimeType: 'application/json',
  pattern: /^test:\/\/template\/([^/]+)\/data$/
};

export function readResource(uri) {
  const resource = RESOURCES.find((r) => r.uri === uri);
  if (resource) return [{ uri, mimeType: resource.mimeType, ...resource.contents }];
  const match = TEMPLATE.pattern.exec(uri);
  if (match) {
    const id = decodeURIComponent(match[1]);
    const data = { id, templateTest: true, data: `Data for ID: ${id}` };
    return [{ uri, mimeType: TEMPLATE.mimeType, text: JSON.stringify(data) }];
  }
  throw new McpError(ErrorCode.InvalidParams, `Resource not found: ${uri}`);
}

// ---------------------------------------------------------------- prompts

export const PROMPTS = {
  test_simple_prompt: {
    description: 'A prompt without arguments',
    arguments: [],
    messages: () => [{ role: 'user', content: text('This is a simple prompt for testing.') }]
  },
  test_prompt_with_arguments: {
    description: 'A prompt with two required arguments',
    arguments: [
      { name: 'arg1', description: 'First test argument', required: true },
      { name: 'arg2', description: 'Second test argument', required: true }
    ],
    messages: ({ arg1, arg2 }) => [
      { role: 'user', content: text(`Prompt with arguments: arg1='${arg1}', arg2='${arg2}'`) }
    ]
  },
  test_prompt_with_embedded_resource: {
    description: 'A prompt that embeds the resource given as argument',
    arguments: [{ name: 'resourceUri', description: 'URI of the resource to embed', required: true }],
    messages: ({ resourceUri }) => [
      {
        role: 'user',
        content: {
          type: 'resource',
          resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' }
        }
      },
      { role: 'user', content: text('Please process the embedded resource above.') }
    ]
  },
  test_prompt_with_image: {
    description: 'A prompt with an image',
    arguments: [],
    messages: () => [
      { role: 'user', content: image() },
      { role: 'user', content: text('Please analyze the image above.') }
    ]
  }
};

export function getPrompt(name, args = {}) {
  const prompt = PROMPTS[name];
  if (!prompt) throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${name}`);
  const missing = prompt.arguments.filter((a) => a.required && args[a.name] === undefined);
  if (missing.length > 0) {
    throw new McpError(ErrorCode.InvalidParams, `Missing arguments: ${missing.map((a) => a.name).join(', ')}`);
  }
  return { description: prompt.description, messages: prompt.messages(args) };
}

// Completion: a few canned values per prompt argument, filtered by prefix.
const COMPLETIONS = {
  'test_prompt_with_arguments/arg1': ['paris', 'park', 'party', 'test', 'testing'],
  'test_prompt_with_arguments/arg2': ['hello', 'world']
};

export function complete({ ref, argument }) {
  const key = ref.type === 'ref/prompt' ? `${ref.name}/${argument.name}` : undefined;
  const values = (COMPLETIONS[key] ?? []).filter((v) => v.startsWith(argument.value ?? ''));
  return { completion: { values, total: values.length, hasMore: false } };
}
