// One Node client process for the gateway load test (tests/gateway/test_load.py): N generate
// calls through the gateway with the official @google/genai SDK, CONCURRENCY in flight.
// Usage: node gateway_load.mjs <baseUrl> <token> <n> <concurrency> -> one JSON line {ok, codes, errors}
import { GoogleGenAI } from "@google/genai";

const [baseUrl, token, n, concurrency] = process.argv.slice(2);
const ai = new GoogleGenAI({ apiKey: token, httpOptions: { baseUrl } });
const codes = {};
const errors = [];
let next = 0;

async function worker() {
  while (next < Number(n)) {
    const i = next++;
    try {
      const r = await ai.models.generateContent({ model: "gemini-3.1-flash-lite", contents: `node item ${i}` });
      const k = r.text ? "200" : "empty";
      codes[k] = (codes[k] ?? 0) + 1;
    } catch (e) {
      const k = String(e.status ?? "transport");
      codes[k] = (codes[k] ?? 0) + 1;
      if (errors.length < 5) errors.push(String(e.message).slice(0, 200));
    }
  }
}

await Promise.all(Array.from({ length: Number(concurrency) }, worker));
console.log(JSON.stringify({ ok: codes["200"] ?? 0, codes, errors }));
