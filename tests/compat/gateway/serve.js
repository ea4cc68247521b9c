#!/usr/bin/env node
// The real Glue42 gateway (@glue42/gateway-web, installed from npm) served over WebSocket on a
// loopback port, so that our Python client and the JS clients can be tested against it.
//
//   node tests/compat/gateway/serve.js --port 0 --token T [--user U] [--password P]
//        [--channels default|none] [--inactive-seconds N]
//
// prints "Glue42 gateway: ws://127.0.0.1:PORT/" once it accepts connections, and stops on
// SIGTERM/SIGINT. Authentication is checked here, as an io.Connect gateway does it:
//   - {method: "access-token", token}         the token given with --token
//   - {method: "secret", login, secret}        login --user (any login when not given) and
//                                              password --password (the token when not given)
//   - {method: "gateway-token", token}         a token the gateway issued on "create-token"
//                                              (checked by the gateway itself)
// Every login resolves to the same user (--user, else "interop"), so all peers see each other
// (GW3 visibility: same user).
// With --channels default the ten colour channels are created at start as io.Connect Desktop
// creates the ones of its channels.json: retained contexts "___channel___<Name>" holding
// {name, meta: {color}, data: {}}, by a platform peer that stays connected.
//
// The adapter translates frames only: one JSON text frame in is one message to the gateway,
// one message out is one text frame. Anything else (binary frames, JSON arrays) is not GW3:
// the connection is closed with code 1003 and the reason, so a client that sends an extension
// the gateway never accepted fails loudly.
"use strict";

const { WebSocketServer } = require("ws");
const gatewayWeb = require("@glue42/gateway-web/node/gateway-web.js");

const DEFAULT_CHANNELS = [
  ["Red", "red"], ["Green", "green"], ["Blue", "#66ABFF"], ["Pink", "#F328BB"],
  ["Yellow", "#FFE733"], ["DarkYellow", "#b09b00"], ["Orange", "#fa5a28"],
  ["Purple", "#c873ff"], ["Lime", "#8af59e"], ["Cyan", "#80f3ff"],
];

function parseArgs(argv) {
  const args = {
    port: 0, token: "", user: "", password: "", channels: "none", log: "warn",
    "inactive-seconds": "0",
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in args) || i + 1 >= argv.length) {
      throw new Error(`unknown or incomplete argument ${argv[i]}`);
    }
    args[key] = argv[i + 1];
  }
  args.port = Number(args.port);
  if (!args.token) throw new Error("--token is required");
  if (!args.password) args.password = args.token;
  if (!["default", "none"].includes(args.channels)) {
    throw new Error("--channels must be default or none");
  }
  return args;
}

function authenticator(args) {
  return (request) => {
    const auth = request.authentication || {};
    const user = args.user || "interop";
    const ok = (login) => Promise.resolve({ type: "success", login, user });
    if (auth.method === "access-token" && auth.token === args.token) {
      return ok(user);
    }
    const loginOk = !args.user || auth.login === args.user;
    if (auth.method === "secret" && typeof auth.login === "string" && loginOk && auth.secret === args.password) {
      return ok(auth.login);
    }
    return Promise.reject(`Authentication failed (${auth.method || "no method"})`);
  };
}

// A client of the gateway inside this process: sends messages, awaits replies by request id.
async function localPeer(gateway, onEvent) {
  const pending = new Map();
  let nextId = 1;
  const client = await gateway.connect((_client, msg) => {
    const waiter = pending.get(msg.request_id);
    if (waiter !== undefined) {
      pending.delete(msg.request_id);
      (msg.type === "error" ? waiter.reject : waiter.resolve)(msg);
    } else if (onEvent) {
      onEvent(msg);
    }
  });
  const peer = {
    id: null,
    request(message) {
      const request_id = `seed-${nextId++}`;
      return new Promise((resolve, reject) => {
        pending.set(request_id, { resolve, reject });
        client.send({ ...message, request_id, ...(peer.id ? { peer_id: peer.id } : {}) });
      });
    },
  };
  return peer;
}

async function seedChannels(gateway, args) {
  const platform = await localPeer(gateway);
  const welcome = await platform.request({
    domain: "global",
    type: "hello",
    identity: { application: "io-connect-platform", applicationName: "Channels" },
    authentication: { method: "access-token", token: args.token },
  });
  platform.id = welcome.peer_id;
  for (const [name, color] of DEFAULT_CHANNELS) {
    await platform.request({
      domain: "global",
      type: "create-context",
      name: `___channel___${name}`,
      data: { name, meta: { color }, data: {} },
      lifetime: "retained",
    });
  }
}

function serve(gateway, args) {
  const server = new WebSocketServer({ host: "127.0.0.1", port: args.port });
  server.on("connection", async (socket) => {
    let client = null;
    const early = [];
    socket.on("message", (data, isBinary) => {
      let message = null;
      if (!isBinary) {
        try {
          message = JSON.parse(data.toString("utf8"));
        } catch (_) {
          message = null;
        }
      }
      if (message === null || typeof message !== "object" || Array.isArray(message)) {
        const what = isBinary ? "a binary frame" : Array.isArray(message) ? "a JSON array" : "not a JSON object";
        socket.close(1003, `not a GW3 message: ${what}`);
        return;
      }
      if (client === null) early.push(message);
      else client.send(message);
    });
    socket.on("close", () => {
      if (client !== null) client.disconnect();
    });
    client = await gateway.connect((_c, msg) => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(msg));
    });
    for (const message of early.splice(0)) client.send(message);
    if (socket.readyState !== socket.OPEN) client.disconnect();
  });
  return new Promise((resolve, reject) => {
    server.on("listening", () => resolve(server));
    server.on("error", reject);
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  gatewayWeb.configure_logging({
    level: args.log,
    appender: (entry) => process.stderr.write(`gateway ${entry.level}: ${entry.message}\n`),
  });
  const gateway = gatewayWeb.create({
    authentication: { authenticator: authenticator(args) },
    clients: {
      // a socket close removes a peer here, so no idle scavenging (meant for MessagePorts)
      // unless --inactive-seconds N asks for it: peers silent for N seconds are removed
      inactive_seconds: Number(args["inactive-seconds"]),
      // each in-process client gets a dropping queue of this many messages (default 100);
      // the WebSocket drains it, so a large one models a server gateway that never drops
      buffer_size: 1000000,
    },
  });
  await gateway.start();
  if (args.channels === "default") await seedChannels(gateway, args);
  const server = await serve(gateway, args);
  const stop = () => {
    server.close();
    gateway.stop().finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdout.write(`Glue42 gateway: ws://127.0.0.1:${server.address().port}/\n`);
}

main().catch((error) => {
  process.stderr.write(`gateway adapter failed: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
