"use strict";
// Node benchmark workers: `node worker.js ROLE '<json params>'`, driven like the Python ones
// (benchmarks/worker.py): one "@@bench {ready...}" line, then one JSON command per stdin line,
// each answered with exactly one "@@bench {...}" line; "quit" (or the end of stdin) ends it.
// io.Connect's own JS client (@interopio/core) and NATS's (the npm package `nats`) come from
// tests/compat/node_modules (scripts/setup.sh). Roles:
//   io-caller, io-handler, io-publisher, io-sub      @interopio/core through the hub
//   nats-caller, nats-responder, nats-pub, nats-sub  nats.js through nats-server
// Times shared between processes use process.hrtime (CLOCK_MONOTONIC, like Python's
// time.monotonic on Linux); latencies are in microseconds.
const path = require("path");
const readline = require("readline");

const compat = path.resolve(__dirname, "..", "..", "tests", "compat", "node_modules");
const MARK = "@@bench ";
const SMALL_ARGS = { a: 1, b: "hello", c: [1, 2, 3] };

const emit = (obj) => process.stdout.write(MARK + JSON.stringify(obj) + "\n");
const now = () => Number(process.hrtime.bigint()) / 1e9;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// The stream item every system carries (benchmarks/worker.py: fan_data / fan_item).
function fanData(run, seq, size) {
    const head = `${run} ${seq} `;
    return head + "x".repeat(Math.max(0, size - head.length));
}

// Sequential calls of `once`: the latency of each, in µs.
async function timedCalls(once, n) {
    const lat = [];
    for (let i = 0; i < n; i++) {
        const t0 = process.hrtime.bigint();
        await once();
        lat.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    return lat;
}

function callerCommands(once) {
    const run = async (cmd) => ({ lat_us: await timedCalls(once, Number(cmd.n)) });
    return { warmup: run, run };
}

// Counts one run's items on a subscriber: loss, order, first and last arrival (the Python
// FanCounter's fields, reported as one subscriber of a FanCounters).
class FanCounter {
    constructor() {
        this.reset(-1, 0);
    }
    reset(run, n) {
        Object.assign(this, { run, n, count: 0, nextSeq: 0, outOfOrder: 0, foreign: 0 });
        Object.assign(this, { tFirst: 0, tLast: 0 });
    }
    seen(item) {
        const t = now();
        const [run, seq] = item.d.split(" ", 2).map(Number);
        if (run !== this.run) {
            this.foreign += 1;
            return;
        }
        if (this.count === 0) this.tFirst = t;
        this.tLast = t;
        this.count += 1;
        if (seq !== this.nextSeq) this.outOfOrder += 1;
        this.nextSeq = seq + 1;
    }
    async result(timeout, idle = 3) {
        const deadline = now() + timeout;
        let last = -1;
        while (this.count < this.n && now() < deadline) {
            if (this.count === last && now() - this.tLast > idle) break; // nothing more comes
            last = this.count;
            await sleep(20);
        }
        return {
            count: this.count,
            expected: this.n,
            out_of_order: this.outOfOrder,
            foreign: this.foreign,
            t_first: this.tFirst,
            t_last: this.tLast,
        };
    }
    commands() {
        return {
            expect: async (cmd) => {
                this.reset(Number(cmd.run), Number(cmd.n));
                return { ok: true };
            },
            result: async (cmd) => ({ subs: [await this.result(Number(cmd.timeout || 60))] }),
        };
    }
}

// Publish `n` items through `send`, then `flush`.
async function publishLoop(send, cmd, flush) {
    const [run, n, size] = [Number(cmd.run), Number(cmd.n), Number(cmd.size)];
    const t0 = now();
    for (let seq = 0; seq < n; seq++) send({ d: fanData(run, seq, size) });
    if (flush) await flush();
    return { t_start: t0, t_end: now() };
}

// ------------------------------------------------------------------ @interopio/core

async function ioConnect(p, application) {
    const IOConnect = require(path.join(compat, "@interopio", "core"));
    return IOConnect({
        application,
        gateway: { ws: p.url, reconnectAttempts: 1 },
        auth: { token: p.token },
        logger: "error",
        insights: false,
    });
}

async function ioWaitMethod(io, name, ms = 15000) {
    const deadline = Date.now() + ms;
    while (!io.interop.methods().some((m) => m.name === name)) {
        if (Date.now() > deadline) throw new Error(`method ${name} never appeared`);
        await sleep(20);
    }
}

const roles = {
    async "io-caller"(p) {
        const io = await ioConnect(p, "bench-node-caller");
        await ioWaitMethod(io, p.method);
        const once = async () => {
            const res = await io.interop.invoke(p.method, SMALL_ARGS, "best", { waitTimeoutMs: 10000 });
            if (res.returned.b !== "hello") throw new Error("wrong result");
        };
        return [io, callerCommands(once)];
    },
    async "io-handler"(p) {
        const io = await ioConnect(p, "bench-node-handler");
        await io.interop.register(p.method, (args) => args);
        return [io, {}];
    },
    async "io-publisher"(p) {
        const io = await ioConnect(p, "bench-node-publisher");
        const stream = await io.interop.createStream(p.stream);
        return [io, { publish: (cmd) => publishLoop((item) => stream.push(item), cmd) }];
    },
    async "io-sub"(p) {
        const io = await ioConnect(p, "bench-node-sub");
        const counter = new FanCounter();
        const sub = await io.interop.subscribe(p.stream, { waitTimeoutMs: 15000 });
        sub.onData((d) => counter.seen(d.data));
        return [io, counter.commands()];
    },

    // -------------------------------------------------------------- nats.js

    async "nats-caller"(p) {
        const nc = await natsConnect(p);
        const body = encoder.encode(JSON.stringify(SMALL_ARGS));
        const once = async () => {
            const reply = await nc.request(p.subject, body, { timeout: 10000 });
            if (JSON.parse(decoder.decode(reply.data)).b !== "hello") throw new Error("wrong result");
        };
        return [nc, callerCommands(once)];
    },
    async "nats-responder"(p) {
        const nc = await natsConnect(p);
        // decode the arguments and encode the result, as a JSON handler does
        nc.subscribe(p.subject, {
            callback: (err, msg) => {
                if (!err) msg.respond(encoder.encode(JSON.stringify(JSON.parse(decoder.decode(msg.data)))));
            },
        });
        await nc.flush();
        return [nc, {}];
    },
    async "nats-pub"(p) {
        const nc = await natsConnect(p);
        const send = (item) => nc.publish(p.subject, encoder.encode(JSON.stringify(item)));
        return [nc, { publish: (cmd) => publishLoop(send, cmd, () => nc.flush()) }];
    },
    async "nats-sub"(p) {
        const nc = await natsConnect(p);
        const counter = new FanCounter();
        nc.subscribe(p.subject, {
            callback: (err, msg) => {
                if (!err) counter.seen(JSON.parse(decoder.decode(msg.data)));
            },
        });
        await nc.flush();
        return [nc, counter.commands()];
    },
};

async function natsConnect(p) {
    const { connect } = require(path.join(compat, "nats"));
    return connect({ servers: p.url.replace(/^nats:\/\//, ""), reconnect: false });
}

async function close(client) {
    try {
        if (typeof client.done === "function") await client.done(); // @interopio/core
        else await client.close(); // nats.js
    } catch {
        // gone already
    }
}

async function main() {
    const [role, raw] = process.argv.slice(2);
    const make = roles[role];
    if (!make) throw new Error(`unknown role ${role}`);
    const [client, commands] = await make(JSON.parse(raw || "{}"));
    emit({ ready: true, pid: process.pid });
    const rl = readline.createInterface({ input: process.stdin });
    const lines = rl[Symbol.asyncIterator]();
    for (;;) {
        const { value, done } = await lines.next();
        if (done) break;
        const cmd = JSON.parse(value);
        if (cmd.cmd === "quit") break;
        const handler = commands[cmd.cmd];
        try {
            if (!handler) throw new Error(`unknown command ${cmd.cmd}`);
            emit(await handler(cmd));
        } catch (e) {
            emit({ error: String((e && e.stack) || e) });
        }
    }
    rl.close();
    await close(client);
}

main().then(
    () => process.exit(0),
    (e) => {
        emit({ error: String((e && e.stack) || e) });
        process.exit(1);
    },
);
