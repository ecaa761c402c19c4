// What the fixture's tools, resources and prompts return: test media (a PNG,
// a WAV) and the content blocks made of them. Part of server.mjs.

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A 1x1 PNG (one blue pixel).
export const PNG_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNQSHgAAAIEAWFYJMtfAAAAAElFTkSuQmCC';

// A tiny WAV file: 8 samples of silence, 8 kHz, mono, 16-bit PCM.
function silentWavBase64(samples = 8) {
  const dataBytes = samples * 2;
  const wav = Buffer.alloc(44 + dataBytes);
  wav.write('RIFF', 0);
  wav.writeUInt32LE(36 + dataBytes, 4);
  wav.write('WAVE', 8);
  wav.write('fmt ', 12);
  wav.writeUInt32LE(16, 16); // fmt chunk size
  wav.writeUInt16LE(1, 20); // PCM
  wav.writeUInt16LE(1, 22); // mono
  wav.writeUInt32LE(8000, 24); // sample rate
  wav.writeUInt32LE(8000 * 2, 28); // byte rate
  wav.writeUInt16LE(2, 32); // block align
  wav.writeUInt16LE(16, 34); // bits per sample
  wav.write('data', 36);
  wav.writeUInt32LE(dataBytes, 40);
  return wav.toString('base64');
}
export const WAV_BASE64 = silentWavBase64();

export const text = (value) => ({ type: 'text', text: value });
export const image = () => ({ type: 'image', data: PNG_BASE64, mimeType: 'image/png' });
