// Reads hex-encoded MessagePack values (one per line, made by msgspec) on stdin,
// decodes and re-encodes each with the browser codec, and prints them as hex.
import { decode, encode } from "../../fastcomm/web/msgpack.js";

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const out = [];
  for (const line of input.split("\n").filter(Boolean)) {
    out.push(Buffer.from(encode(decode(new Uint8Array(Buffer.from(line, "hex"))))).toString("hex"));
  }
  process.stdout.write(out.join("\n") + "\n");
});
