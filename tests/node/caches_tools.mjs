// Context caching and function calling with the official @google/genai Node SDK against the emulator.
// Usage: node caches_tools.mjs <baseUrl>   -> prints one JSON object with the results.
import { GoogleGenAI, ApiError } from "@google/genai";

const baseUrl = process.argv[2];
const model = "gemini-3.1-flash-lite";
const ai = new GoogleGenAI({ apiKey: "node-test-key", httpOptions: { baseUrl } });
const out = {};

const cache = await ai.caches.create({
  model,
  config: { systemInstruction: "Label reviews by sentiment. ".repeat(200), ttl: "300s", displayName: "node" },
});
out.cacheName = cache.name;
out.cacheTokens = cache.usageMetadata?.totalTokenCount;
const cached = await ai.models.generateContent({ model, contents: "Great phone.", config: { cachedContent: cache.name } });
out.cachedUsage = cached.usageMetadata;
const listed = [];
for await (const c of await ai.caches.list({ config: { pageSize: 1 } })) listed.push(c.name);
out.listed = listed;
const updated = await ai.caches.update({ name: cache.name, config: { ttl: "900s" } });
out.updatedExpire = updated.expireTime;
await ai.caches.delete({ name: cache.name });

const tools = [{ functionDeclarations: [{
  name: "get_weather",
  description: "Weather forecast",
  parametersJsonSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
}] }];
const prompt = { role: "user", parts: [{ text: "Weather in Lisbon?" }] };
const first = await ai.models.generateContent({ model, contents: [prompt], config: { tools } });
out.calls = first.functionCalls;
const modelTurn = first.candidates[0].content;
out.signature = modelTurn.parts[0].thoughtSignature ?? null;
const reply = { role: "user", parts: [{ functionResponse: { name: "get_weather", response: { t: 21 } } }] };
const second = await ai.models.generateContent({ model, contents: [prompt, modelTurn, reply], config: { tools } });
out.finalText = second.text;
const dropped = { role: "model", parts: modelTurn.parts.map(({ thoughtSignature, ...rest }) => rest) };
try {
  await ai.models.generateContent({ model, contents: [prompt, dropped, reply], config: { tools } });
  out.droppedError = null;
} catch (e) {
  out.droppedError = { isApiError: e instanceof ApiError, status: e.status, message: JSON.parse(e.message).error.message };
}
console.log(JSON.stringify(out));
