"use strict";
// How the Node examples reach the notebooks' interop hub with the real io.Connect client
// (@interopio/core): exactly as they would reach io.Connect Desktop, with the hub's WebSocket
// (JUPYTER_INTEROP_URL) and token (JUPYTER_INTEROP_TOKEN) that a notebook kernel inherits from
// Jupyter and passes on to the programs it starts.

const IOConnectCore = require("@interopio/core");

// Connect as `application`; `options` adds to the client's configuration (e.g. `bus: true`).
async function connect(application, options = {}) {
    const url = process.env.JUPYTER_INTEROP_URL;
    const token = process.env.JUPYTER_INTEROP_TOKEN;
    if (!url || !token) {
        throw new Error("JUPYTER_INTEROP_URL and JUPYTER_INTEROP_TOKEN must be set");
    }
    return IOConnectCore({
        application,
        gateway: { ws: url },
        auth: { token },
        insights: false, // no OpenTelemetry config lookup in Node
        logger: "error",
        ...options,
    });
}

// Run `main`; a failure is printed and ends the process with status 1.
function run(main) {
    main().catch((error) => {
        console.error(error);
        process.exit(1);
    });
}

// What the io.Connect intents API registers for a handler of `intent`, and what a raise invokes
// (docs/INTENTS.md): the method "Tick42.FDC3.Intents.<intent>". @interopio/core has no intents
// API of its own (it lives in io.Connect Desktop and Browser), so the examples use the method.
const intentMethod = (intent) => `Tick42.FDC3.Intents.${intent}`;

module.exports = { connect, run, intentMethod };
