// The conformance suite's Node clients (tests/clients/test_node_clients.py, issue 25): generate, stream,
// structured output and a tool call through @google/genai and through the Vercel AI SDK (ai +
// @ai-sdk/google), unchanged but for the base URL. Usage: node clients.mjs <genai|ai-sdk> <baseUrl>
// -> prints one JSON object: {feature: {ok, detail}}.
import { GoogleGenAI } from "@google/genai";
import { createGoogleGenerativeAI } from "@ai-sdk/google";
import { generateText, streamText, generateObject, jsonSchema, tool } from "ai";

const [client, baseUrl] = process.argv.slice(2);
const model = "gemini-3.1-flash-lite";
const apiKey = "clients-test-key";
const out = {};
const WEATHER = {
  type: "object",
  properties: { city: { type: "string" } },
  required: ["city"],
};
const PERSON = {
  type: "object",
  properties: { name: { type: "string" }, age: { type: "integer" } },
  required: ["name", "age"],
};

async function feature(name, fn) {
  try {
    out[name] = { ok: true, detail: await fn() };
  } catch (e) {
    out[name] = { ok: false, detail: String(e && e.stack ? e.stack : e).slice(0, 800) };
  }
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

if (client === "genai") {
  const ai = new GoogleGenAI({ apiKey, httpOptions: { baseUrl } });
  await feature("generate", async () => {
    const r = await ai.models.generateContent({ model, contents: "Say hello" });
    check(r.text, "text");
    return r.text;
  });
  await feature("stream", async () => {
    let text = "", n = 0;
    for await (const c of await ai.models.generateContentStream({ model, contents: "Tell a short story" })) {
      n += 1;
      text += c.text ?? "";
    }
    check(n > 1 && text, "chunks");
    return { chunks: n, text };
  });
  await feature("structured", async () => {
    const r = await ai.models.generateContent({
      model, contents: "Invent a person",
      config: { responseMimeType: "application/json", responseJsonSchema: PERSON },
    });
    const v = JSON.parse(r.text);
    check(typeof v.name === "string" && Number.isInteger(v.age), "schema");
    return v;
  });
  await feature("tool", async () => {
    const r = await ai.models.generateContent({
      model, contents: "Weather in Paris?",
      config: { tools: [{ functionDeclarations: [{ name: "get_weather", parametersJsonSchema: WEATHER }] }] },
    });
    const call = r.functionCalls[0];
    check(call.name === "get_weather" && call.args.city === "Paris", JSON.stringify(call));
    return call;
  });
} else {
  const google = createGoogleGenerativeAI({ apiKey, baseURL: `${baseUrl}/v1beta` });
  const m = google(model);
  await feature("generate", async () => {
    const r = await generateText({ model: m, prompt: "Say hello" });
    check(r.text, "text");
    return r.text;
  });
  await feature("stream", async () => {
    const r = streamText({ model: m, prompt: "Tell a short story" });
    let text = "", n = 0;
    for await (const part of r.textStream) {
      n += 1;
      text += part;
    }
    check(n > 1 && text, "chunks");
    return { chunks: n, text };
  });
  await feature("structured", async () => {
    const r = await generateObject({ model: m, prompt: "Invent a person", schema: jsonSchema(PERSON) });
    check(typeof r.object.name === "string" && Number.isInteger(r.object.age), "schema");
    return r.object;
  });
  await feature("tool", async () => {
    const r = await generateText({
      model: m, prompt: "Weather in Paris?",
      tools: { get_weather: tool({ description: "The weather in a city", inputSchema: jsonSchema(WEATHER) }) },
    });
    const call = r.toolCalls[0];
    check(call && call.toolName === "get_weather" && call.input.city === "Paris", JSON.stringify(r.toolCalls));
    return call.input;
  });
}
console.log(JSON.stringify(out));
