// Drives the flashlane emulator with the official @google/genai Node SDK.
// Usage: node interop.mjs <baseUrl>   -> prints one JSON object with the results.
// The 429 is triggered by a scenario rule loaded over the control API.
import { GoogleGenAI, ApiError } from "@google/genai";

const baseUrl = process.argv[2];
const model = "gemini-3.1-flash-lite";
const ai = new GoogleGenAI({ apiKey: "node-test-key", httpOptions: { baseUrl } });
const out = {};

const r = await ai.models.generateContent({
  model,
  contents: "Say hello from Node in a few words",
  config: { thinkingConfig: { thinkingLevel: "MINIMAL" }, maxOutputTokens: 200 },
});
out.text = r.text;
out.usage = r.usageMetadata;

const stream = await ai.models.generateContentStream({
  model,
  contents: "Tell a short story about a lighthouse keeper and the winter sea",
});
out.streamChunks = 0;
out.streamText = "";
for await (const chunk of stream) {
  out.streamChunks += 1;
  out.streamText += chunk.text ?? "";
}

await fetch(`${baseUrl}/_emulator/scenario`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ rules: [{ times: 1, action: { error: 429, retry_delay: 7 } }] }),
});
try {
  await ai.models.generateContent({ model, contents: "this one is rate limited" });
  out.error = null;
} catch (e) {
  out.error = {
    isApiError: e instanceof ApiError,
    status: e.status,
    body: (() => { try { return JSON.parse(e.message); } catch { return e.message; } })(),
  };
}
console.log(JSON.stringify(out));
