// Preload for server-everything's Streamable HTTP mode: make every TCP listen() bind
// 127.0.0.1 (its express app calls app.listen(PORT) with no host, i.e. all interfaces) and
// say on stderr which port it got (PORT=0 picks a free one):
//
//   PORT=0 node --require ./tests/interop/loopback.cjs \
//     target/interop/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js streamableHttp
//
// stderr then carries one line `loopback: listening 127.0.0.1:PORT`.
"use strict";
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, callback])
    if (typeof args[1] === "string") args[1] = "127.0.0.1";
    else args.splice(1, 0, "127.0.0.1");
  } else if (first && typeof first === "object" && first.path === undefined) {
    args[0] = { ...first, host: "127.0.0.1" };
  }
  this.once("listening", () => {
    const a = this.address();
    if (a && typeof a === "object") process.stderr.write(`loopback: listening ${a.address}:${a.port}\n`);
  });
  return listen.apply(this, args);
};
