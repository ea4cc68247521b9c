"use strict";
// Raises an intent from a Node app written with the real io.Connect client (@interopio/core),
// as an io.Connect app's intents.raise does on the wire: it finds the instances that handle the
// intent (servers of "Tick42.FDC3.Intents.<intent>", with the displayName of their
// flags.intent), picks one, and invokes it with the context. 06-node-intents.ipynb runs it to
// reach a Python handler in the notebook.
//
//   node raise-intent.js INTENT CONTEXT_JSON [PEER_ID]
//
// With several handlers and no PEER_ID it stops, as a raise without a resolver would.

const { connect, run, intentMethod } = require("./hub");

const WAIT_MS = 10000;

async function handlersOf(io, method) {
    for (let waited = 0; waited < WAIT_MS; waited += 100) {
        const servers = io.interop.servers({ name: method });
        if (servers.length) return servers;
        await new Promise((resolve) => setTimeout(resolve, 100)); // discovery is asynchronous
    }
    throw new Error(`no handler of ${method} appeared within ${WAIT_MS} ms`);
}

function displayName(io, server, method) {
    const offered = io.interop.methodsForInstance(server).find((m) => m.name === method);
    return offered?.flags?.intent?.displayName ?? "";
}

async function main() {
    const [intent, contextJson, peerId] = process.argv.slice(2);
    if (!intent || !contextJson) throw new Error("usage: node raise-intent.js INTENT CONTEXT_JSON [PEER_ID]");
    const context = JSON.parse(contextJson);
    const io = await connect("node-raiser");
    const method = intentMethod(intent);
    const handlers = await handlersOf(io, method);
    for (const server of handlers) {
        console.log(`handler of ${intent}: ${displayName(io, server, method)} in ${server.application} (${server.peerId})`);
    }
    const chosen = peerId ? handlers.find((s) => s.peerId === peerId) : handlers.length === 1 ? handlers[0] : undefined;
    if (!chosen) throw new Error(peerId ? `no handler of ${intent} is peer ${peerId}` : `${handlers.length} handlers fit: pass a PEER_ID`);
    const result = await io.interop.invoke(method, context, chosen, { methodResponseTimeoutMs: 10000 });
    console.log(`result from ${result.executed_by?.application}: ${JSON.stringify(result.returned)}`);
    await io.done();
}

run(main);
