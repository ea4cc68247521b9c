"use strict";
// A Node peer using the real @interopio/core (from tests/compat/node_modules), driven by
// test_client_js.py over JSON lines: commands on stdin `{"id", "cmd", "args"}`, replies and
// events on stdout as `@@peer {"id"|"event", ...}`. Dates are reported as
// {"$date": ISO string} so that the Python side can check that they arrived as Date objects.
const path = require("path");
const readline = require("readline");

const COMPAT = process.env.COMPAT_DIR;
const IO = require(path.join(COMPAT, "node_modules", "@interopio", "core"));
const MARK = "@@peer ";

function plain(value) {
    if (value instanceof Date) return { $date: value.toISOString() };
    if (Array.isArray(value)) return value.map(plain);
    if (value && typeof value === "object") {
        const out = {};
        for (const [k, v] of Object.entries(value)) {
            if (typeof v !== "function") out[k] = plain(v);
        }
        return out;
    }
    return value === undefined ? null : value;
}

function revive(value) {
    if (Array.isArray(value)) return value.map(revive);
    if (value && typeof value === "object") {
        if (typeof value.$date === "string" && Object.keys(value).length === 1) return new Date(value.$date);
        const out = {};
        for (const [k, v] of Object.entries(value)) out[k] = revive(v);
        return out;
    }
    return value;
}

const emit = (msg) => process.stdout.write(MARK + JSON.stringify(plain(msg)) + "\n");
const errText = (e) => (e && typeof e.message === "string" ? e.message : typeof e === "string" ? e : JSON.stringify(e));

async function main() {
    const io = await IO({
        application: "js-peer",
        gateway: { ws: process.env.HUB_URL, reconnectAttempts: 1 },
        auth: { token: process.env.HUB_TOKEN },
        bus: true,
        insights: false,
        logger: "error",
    });
    const interop = io.interop;
    await interop.register("Js.Echo", (args, caller) => ({
        args,
        caller: caller && caller.application,
        isDate: args.when instanceof Date,
        stamp: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
    }));
    await interop.register("Js.Number", (args) => args.n * 2);
    await interop.register("Js.Fail", () => {
        throw new Error("js boom");
    });
    const stream = await interop.createStream("Js.Ticks", {
        subscriptionRequestHandler: (request) => {
            if (request.arguments.symbol === "BAD") request.reject("no such symbol");
            else request.acceptOnBranch(request.arguments.symbol || "");
        },
    });
    const subscriptions = {};
    const commands = {
        async invoke({ method, args, target }) {
            const r = await interop.invoke(method, revive(args || {}), target || "best", {
                waitTimeoutMs: 5000,
                methodResponseTimeoutMs: 5000,
            });
            return { returned: r.returned, executedBy: r.executed_by && r.executed_by.application };
        },
        async invokeFail({ method }) {
            try {
                await interop.invoke(method, {}, "best", { waitTimeoutMs: 5000 });
                return { failed: false };
            } catch (e) {
                return { failed: true, message: errText(e) };
            }
        },
        async push({ data, branch }) {
            stream.push(revive(data), branch);
            return true;
        },
        async subscribe({ name, args, key }) {
            const sub = await interop.subscribe(name, { arguments: args || {}, waitTimeoutMs: 5000 });
            subscriptions[key] = sub;
            sub.onData((d) => emit({ event: "data", key, data: d.data, private: d.private }));
            sub.onClosed((info) => emit({ event: "closed", key, message: info.message }));
            return { servers: sub.servers.map((s) => s.application) };
        },
        async contextSubscribe({ name }) {
            await io.contexts.subscribe(name, (data, delta, removed, unsub, extra) =>
                emit({ event: "context", name, data, delta, removed, updaterId: extra && extra.updaterId })
            );
            return true;
        },
        async contextUpdate({ name, data }) {
            await io.contexts.update(name, revive(data));
            return true;
        },
        async contextSetPath({ name, path: p, value }) {
            await io.contexts.setPath(name, p, revive(value));
            return true;
        },
        async contextGet({ name }) {
            return await io.contexts.get(name);
        },
        async busSubscribe({ topic }) {
            await io.bus.subscribe(topic, (data, t, source) =>
                emit({ event: "bus", topic: t, data, source: source && source.application })
            );
            return true;
        },
        async busPublish({ topic, data }) {
            io.bus.publish(topic, revive(data));
            return true;
        },
        async servers() {
            return interop.servers().map((s) => ({ application: s.application, peerId: s.peerId }));
        },
    };
    const rl = readline.createInterface({ input: process.stdin });
    rl.on("line", async (line) => {
        let msg;
        try {
            msg = JSON.parse(line);
        } catch {
            return;
        }
        const fn = commands[msg.cmd];
        try {
            if (!fn) throw new Error(`unknown command ${msg.cmd}`);
            emit({ id: msg.id, ok: true, result: await fn(msg.args || {}) });
        } catch (e) {
            emit({ id: msg.id, ok: false, error: errText(e) });
        }
    });
    process.stdin.on("end", () => process.exit(0));
    emit({ event: "ready", peerId: interop.instance.peerId, application: interop.instance.application });
}

main().catch((e) => {
    process.stderr.write(`js peer failed: ${e && e.stack ? e.stack : errText(e)}\n`);
    process.exit(1);
});
