"use strict";
// The JSON-lines protocol of tests/integration/nodekit.py, for a Node app driven from Python:
// commands on stdin as `{"id", "cmd", "args"}`, replies and events on stdout as
// `@@peer {"id"|"event", ...}`. Used by tests/compat/intents_peer.js and
// tests/integration/gateway_js_peer.js.
const readline = require("readline");

const MARK = "@@peer ";

const emit = (msg) => process.stdout.write(MARK + JSON.stringify(msg) + "\n");
const errText = (e) => (e && typeof e.message === "string" ? e.message : typeof e === "string" ? e : JSON.stringify(e));

// Answer each command line with `commands[cmd](args)`; end the client and exit when stdin closes.
function serve(io, commands) {
    const rl = readline.createInterface({ input: process.stdin });
    rl.on("line", async (line) => {
        const { id, cmd, args } = JSON.parse(line);
        try {
            emit({ id, ok: true, result: (await commands[cmd](args || {})) ?? null });
        } catch (e) {
            emit({ id, ok: false, error: errText(e) });
        }
    });
    rl.on("close", async () => {
        await io.done().catch(() => undefined);
        process.exit(0);
    });
    emit({ event: "ready", peerId: io.interop.instance.peerId });
}

// Run the app's main(); a failure is printed as `<what> failed: …` and exits with 1.
function run(main, what) {
    main().catch((e) => {
        process.stderr.write(`${what} failed: ${errText(e)}\n`);
        process.exit(1);
    });
}

module.exports = { emit, errText, serve, run };
