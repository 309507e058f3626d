// Validates device templates with Microsoft's DTDL parser (the .NET DTDLParser compiled to WebAssembly,
// published as @digicatapult/dtdl-parser). One process for every template: the parser takes ~1 s to start.
//
// argv[2]: absolute path of the parser's build/index.js. stdin: {"name": [interface, ...], ...}.
// stdout: {"name": [] | [{"id": ValidationID, "cause": text}, ...], ...}
import { pathToFileURL } from "node:url";

const parser = await import(pathToFileURL(process.argv[2]).href);
const interop = await parser.getInterop();
let input = "";
for await (const chunk of process.stdin) input += chunk;
const templates = JSON.parse(input);
const results = {};
for (const [name, interfaces] of Object.entries(templates)) {
  try {
    interop.parse(JSON.stringify(interfaces));
    results[name] = [];
  } catch (error) {
    let errors;
    try {
      errors = JSON.parse(error.message).Errors ?? [];
    } catch {
      errors = [{ ValidationID: "notJson", Cause: String(error.message) }];
    }
    results[name] = errors.map((e) => ({ id: e.ValidationID, cause: e.Cause }));
    if (results[name].length === 0) results[name] = [{ id: "unknown", cause: String(error.message) }];
  }
}
process.stdout.write(JSON.stringify(results));
// The WebAssembly runtime keeps timers alive for ~10 s after the work is done; do not wait for them.
process.exit(0);
