// A local OTLP/HTTP sink for the benchmarks: answers every POST to
// /v1/{traces,logs,metrics} with 200 at once and counts them; GET /stats
// returns the counts ({"traces": n, ...}). It stands for a collector on the
// same machine, so `make bench` can time tools/call with the gateway's export
// on beside export off (the export runs after the response and must not show).
import http from "node:http";

const port = Number(process.argv[process.argv.indexOf("--port") + 1]);
const counts = {};
http
  .createServer((req, res) => {
    if (req.method === "GET" && req.url === "/stats") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(counts));
      return;
    }
    req.resume();
    req.on("end", () => {
      const signal = req.url.split("/").pop();
      counts[signal] = (counts[signal] || 0) + 1;
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  })
  .listen(port, "127.0.0.1");
