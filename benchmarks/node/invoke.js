"use strict";
// Scenario 2: io.Connect's own JS client (@interopio/core, from tests/compat/node_modules)
// invokes a Python method through the hub. Usage:
//   node invoke.js URL TOKEN METHOD WARMUP N REPEATS
// Prints one line "@@bench {...}" with the latencies (µs) of each repeat.
const path = require("path");

const compat = path.resolve(__dirname, "..", "..", "tests", "compat", "node_modules");
const IOConnect = require(path.join(compat, "@interopio", "core"));

async function main() {
    const [url, token, method, warmup, n, repeats] = process.argv.slice(2);
    const io = await IOConnect({
        application: "bench-node",
        gateway: { ws: url, reconnectAttempts: 1 },
        auth: { token },
        logger: "error",
        insights: false,
    });
    const deadline = Date.now() + 15000;
    while (!io.interop.methods().some((m) => m.name === method)) {
        if (Date.now() > deadline) throw new Error(`method ${method} never appeared`);
        await new Promise((r) => setTimeout(r, 20));
    }
    const args = { a: 1, b: "hello", c: [1, 2, 3] };
    const call = () => io.interop.invoke(method, args, "best", { waitTimeoutMs: 10000 });
    for (let i = 0; i < Number(warmup); i++) await call();
    const runs = [];
    for (let r = 0; r < Number(repeats); r++) {
        const lat = [];
        for (let i = 0; i < Number(n); i++) {
            const t0 = process.hrtime.bigint();
            const res = await call();
            lat.push(Number(process.hrtime.bigint() - t0) / 1000);
            if (res.returned.b !== "hello") throw new Error("wrong result");
        }
        runs.push(lat);
    }
    process.stdout.write("@@bench " + JSON.stringify({ runs }) + "\n");
    await io.done();
}

main().then(
    () => process.exit(0),
    (e) => {
        process.stdout.write("@@bench " + JSON.stringify({ error: String(e && e.stack || e) }) + "\n");
        process.exit(1);
    }
);
