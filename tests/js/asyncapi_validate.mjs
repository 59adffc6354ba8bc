// Parse an AsyncAPI document (path in argv[2]) with the official parser; print its
// diagnostics as JSON lines ({severity, code, message, path}); exit 1 on any error.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(process.argv[2], "utf8"));
let errors = 0;
for (const d of diagnostics) {
  if (d.severity === 0) errors += 1;
  console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
}
if (document) {
  console.log(JSON.stringify({ operations: document.operations().length, messages: document.allMessages().length }));
}
process.exit(errors || !document ? 1 : 0);
