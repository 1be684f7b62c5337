// Drives the emulator's Batch and Files APIs with the official @google/genai Node SDK.
// Usage: node batches.mjs <baseUrl>   -> prints one JSON object with the results.
import { GoogleGenAI } from "@google/genai";

const baseUrl = process.argv[2];
const model = "gemini-3.1-flash-lite";
const ai = new GoogleGenAI({ apiKey: "node-test-key", httpOptions: { baseUrl } });
const out = {};

const job = await ai.batches.create({
  model,
  src: [
    { contents: [{ role: "user", parts: [{ text: "Describe the lighthouse" }] }], metadata: { key: "n-1" } },
    { contents: [{ role: "user", parts: [{ text: "Describe the harbour" }] }], metadata: { key: "n-2" } },
  ],
  config: { displayName: "node inline" },
});
out.created = { name: job.name, state: job.state };
let got = await ai.batches.get({ name: job.name });
out.inline = {
  state: got.state,
  keys: (got.dest?.inlinedResponses ?? []).map((r) => r.metadata?.key),
  texts: (got.dest?.inlinedResponses ?? []).map((r) => r.response?.candidates?.[0]?.content?.parts?.[0]?.text ?? null),
};

const jsonl = ['{"key": "f-1", "request": {"contents": [{"parts": [{"text": "one"}]}]}}',
               '{"key": "f-2", "request": {"contents": [{"parts": [{"text": "two"}]}]}}'].join("\n") + "\n";
const file = await ai.files.upload({
  file: new Blob([jsonl], { type: "application/jsonl" }),
  config: { mimeType: "application/jsonl", displayName: "node input" },
});
out.file = { name: file.name, sizeBytes: file.sizeBytes };
const fjob = await ai.batches.create({ model, src: file.name });
got = await ai.batches.get({ name: fjob.name });
out.fileJob = { state: got.state, responsesFile: got.dest?.fileName ?? null };
const pager = await ai.batches.list({ config: { pageSize: 1 } });
out.listed = [];
for await (const j of pager) out.listed.push(j.name);
await ai.batches.cancel({ name: fjob.name });
await ai.batches.delete({ name: job.name });
console.log(JSON.stringify(out));
