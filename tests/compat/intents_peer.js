"use strict";
// A Node app with a real @interopio/core or @glue42/core client (tests/compat/node_modules) taking
// part in intents with Python, driven by tests/integration/test_client_intents.py over JSON lines
// (commands on stdin `{"id", "cmd", "args"}`, replies and events on stdout as
// `@@peer {"id"|"event", ...}`, the protocol of tests/integration/nodekit.py).
//
// The core packages have no intents API (it lives in io.Connect Desktop/Browser and Glue42
// Desktop/Web), so this app does on the wire what their addIntentListener and raise do
// (docs/INTENTS.md): a listener is the method "Tick42.FDC3.Intents.<intent>" registered with
// flags.intent = {contextTypes, displayName, icon, description} and called with the context as
// its arguments; a raise invokes that method on the chosen instance.
// PEER_CONFIG (JSON) holds {flavor, url, token, application}.
const path = require("path");
const { emit, serve, run } = require("./lib/linepeer");

const config = JSON.parse(process.env.PEER_CONFIG);
const modules = path.join(process.env.COMPAT_DIR, "node_modules");
const factory = require(path.join(modules, config.flavor === "glue42" ? "@glue42/core" : "@interopio/core"));
const PREFIX = "Tick42.FDC3.Intents.";


async function main() {
    const options = {
        application: config.application,
        gateway: { ws: config.url, reconnectAttempts: 1 },
        // @interopio/core logs in with an access token, @glue42/core with user + password
        auth: config.flavor === "interopio" ? { token: config.token } : { username: "compat", password: config.token },
        logger: "error",
    };
    if (config.flavor === "interopio") options.insights = false;
    const io = await factory(options);
    const commands = {
        // addIntentListener({intent, contextTypes, displayName, icon, description}, handler)
        async listen({ intent, contextTypes, displayName, icon, description }) {
            const flags = { intent: { contextTypes, displayName, icon, description } };
            await io.interop.register({ name: PREFIX + intent, flags }, (context, caller) => {
                emit({ event: "intent", intent, context, caller: caller.application });
                return { type: "fdc3.chart", ticker: context.id?.ticker, by: config.application };
            });
            return true;
        },
        // raise({intent, context, target: {instance}}): invoke the listener's method
        async raise({ intent, context, peerId }) {
            const target = peerId ? { peerId } : "best";
            const result = await io.interop.invoke(PREFIX + intent, context, target, { waitTimeoutMs: 10000 });
            return { returned: result.returned, executedBy: result.executed_by?.application };
        },
        // a raise with no running handler: ask the Jupyter server's app directory to start a
        // notebook that declares the intent (the method JupyterInterop.Apps.Start, docs/INTENTS.md),
        // then invoke the handler it registered; a failed start answers {fdc3Error, context}
        async raiseStarting({ intent, context }) {
            let started;
            try {
                started = await io.interop.invoke(
                    "JupyterInterop.Apps.Start",
                    { intent, context_type: context.type },
                    "best",
                    { waitTimeoutMs: 10000, methodResponseTimeoutMs: 90000 },
                );
            } catch (e) {
                // both clients reject with the GW3 error's context as `returned`
                const failure = e.returned ?? {};
                return { fdc3Error: failure.fdc3_error, context: failure, message: e.message };
            }
            const peerId = started.returned.peer_id;
            const result = await io.interop.invoke(PREFIX + intent, context, { peerId }, { waitTimeoutMs: 10000 });
            return { started: started.returned, returned: result.returned, executedBy: result.executed_by?.application };
        },
        // the flags of the intent's method, once discovery has seen it (it is eventually consistent)
        async methodFlags({ intent }) {
            for (let waited = 0; waited < 10000; waited += 50) {
                const found = io.interop.methods().filter((m) => m.name === PREFIX + intent);
                if (found.length) return found.map((m) => m.flags);
                await new Promise((resolve) => setTimeout(resolve, 50));
            }
            throw new Error(`no method ${PREFIX + intent} appeared`);
        },
    };
    serve(io, commands);
}

run(main, "intents peer");
