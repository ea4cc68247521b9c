"use strict";
// One @interopio/core peer of the soak (benchmarks/soak.py): node soak.js NAME URL TOKEN
// Same commands as benchmarks/soak_worker.py, one JSON object per stdin line, one
// "@@soak {...}" line per command on stdout.
const path = require("path");
const readline = require("readline");

const compat = path.resolve(__dirname, "..", "..", "tests", "compat", "node_modules");
const IOConnect = require(path.join(compat, "@interopio", "core"));

const MARK = "@@soak ";
const CONTEXTS = ["soak.ctx.0", "soak.ctx.1"];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const emit = (obj) => process.stdout.write(MARK + JSON.stringify(obj) + "\n");
const errMsg = (e) => (e && (e.message || e.reason)) || String(e);

async function main() {
    const [name, url, token] = process.argv.slice(2);
    const io = await IOConnect({
        application: name,
        gateway: { ws: url },
        auth: { token },
        bus: true,
        logger: "error",
        insights: false,
    });
    const events = new Map(); // "pub|round" -> Map(seq -> count)
    const views = {};
    await io.interop.register(`soak.echo.${name}`, (args) => args);
    await io.bus.subscribe("soak.bus.>", (data) => {
        if (!data || data.pub === undefined) return;
        const key = `${data.pub}|${data.round}`;
        if (!events.has(key)) events.set(key, new Map());
        const seqs = events.get(key);
        seqs.set(data.seq, (seqs.get(data.seq) || 0) + 1);
    });
    for (const context of CONTEXTS) {
        await io.contexts.subscribe(context, (data) => {
            views[context] = JSON.parse(JSON.stringify(data));
        });
    }

    const commands = {
        async ready(cmd) {
            const deadline = Date.now() + (cmd.timeout || 60) * 1000;
            for (const peer of cmd.peers || []) {
                while (!io.interop.methods().some((m) => m.name === `soak.echo.${peer}`)) {
                    if (Date.now() > deadline) return { ok: false, error: `${peer}: no method` };
                    await sleep(20);
                }
            }
            return { ok: true };
        },
        async probe(cmd) {
            const tag = String(cmd.round);
            await io.bus.publish(`soak.bus.${name}`, { pub: name, round: tag, seq: 0 });
            const deadline = Date.now() + (cmd.timeout || 30) * 1000;
            let missing = [...(cmd.peers || [])];
            while (missing.length && Date.now() < deadline) {
                missing = missing.filter((p) => !events.has(`${p}|${tag}`));
                await sleep(20);
            }
            return { ok: missing.length === 0, missing };
        },
        async load(cmd) {
            const tag = String(cmd.round);
            const errors = [];
            for (let seq = 1; seq <= cmd.publish; seq++) {
                io.bus.publish(`soak.bus.${name}`, { pub: name, round: tag, seq });
            }
            let invoked = 0;
            for (let i = 0; i < cmd.invoke; i++) {
                for (const peer of cmd.targets) {
                    const args = { from: name, round: tag, i };
                    try {
                        const res = await io.interop.invoke(`soak.echo.${peer}`, args, "best", {
                            waitTimeoutMs: 10000,
                            methodResponseTimeoutMs: 30000,
                        });
                        if (JSON.stringify(res.returned) !== JSON.stringify(args)) {
                            errors.push(`echo from ${peer}: ${JSON.stringify(res.returned)}`);
                        }
                        invoked++;
                    } catch (e) {
                        errors.push(`invoke ${peer}: ${errMsg(e)}`);
                    }
                }
            }
            const acked = {};
            for (let i = 0; i < cmd.update; i++) {
                const context = CONTEXTS[i % CONTEXTS.length];
                const value = `${tag}:${i}`;
                try {
                    await io.contexts.update(context, { [name]: value });
                    acked[context] = value;
                } catch (e) {
                    errors.push(`update ${context}: ${errMsg(e)}`);
                }
            }
            return { invoked, acked, errors };
        },
        async report(cmd) {
            const tag = String(cmd.round);
            const received = {};
            for (const [key, seqs] of events) {
                const [pub, round] = key.split("|");
                if (round !== tag) continue;
                let total = 0;
                let max = 0;
                for (const [seq, count] of seqs) {
                    total += count;
                    max = Math.max(max, seq);
                }
                received[pub] = { total, unique: seqs.size, max };
            }
            return { received, views: JSON.parse(JSON.stringify(views)) };
        },
    };

    emit({ ready: true, pid: process.pid });
    const rl = readline.createInterface({ input: process.stdin });
    for await (const line of rl) {
        const cmd = JSON.parse(line);
        if (cmd.cmd === "quit") break;
        const handler = commands[cmd.cmd];
        let reply;
        try {
            reply = handler ? await handler(cmd) : { ok: false, error: `unknown ${cmd.cmd}` };
        } catch (e) {
            reply = { ok: false, error: errMsg(e) };
        }
        emit(reply);
    }
    process.exit(0);
}

main().catch((e) => {
    process.stderr.write(`soak worker failed: ${errMsg(e)}\n`);
    process.exit(1);
});
