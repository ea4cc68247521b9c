"use strict";
// register / invoke: result values, {_value} wrapping, handler errors, targets, waitTimeoutMs,
// methodResponseTimeoutMs, unregister → methodRemoved.  Main = client A (caller, also offers
// "shared"); child "server" = client B.
const { run, sleep, ident, errMsg } = require("../lib/harness");

const roles = {
    async server(ctx) {
        const io = await ctx.connect({ application: `compat-server-${ctx.uid}` });
        const interop = io.interop;
        const reg = (suffix, fn) => interop.register(ctx.n(suffix), fn);
        await reg("echo", (args, caller) => ({ args, caller: { application: caller?.application, peerId: caller?.peerId } }));
        await reg("number", () => 42);
        await reg("string", () => "hi");
        await reg("array", () => [1, 2, 3]);
        await reg("null", () => null);
        await reg("object", () => ({ nested: { list: [1, "two", { three: 3 }], flag: true, nothing: null } }));
        await reg("async", async (args) => {
            await sleep(50);
            return { doubled: args.n * 2 };
        });
        await reg("throws", () => {
            throw new Error("boom from server");
        });
        await reg("rejects", () => Promise.reject(new Error("async boom")));
        await reg("slow", async () => {
            await sleep(1500);
            return { late: true };
        });
        await reg("shared", () => ({ who: "B" }));
        await reg("partial", () => {
            throw new Error("B fails");
        });
        await reg("size", (args) => ({ length: args.blob.length, tail: args.blob.slice(-5), back: args.blob }));
        await reg("temp", () => ({ temp: true }));
        ctx.emit("ready", ident(interop.instance));
        await ctx.serve({
            "register-late": async () => {
                await reg("late", (args) => ({ late: "ok", args }));
            },
            "unregister-temp": () => interop.unregister(ctx.n("temp")),
            "invoke-back": async (args) => {
                const r = await interop.invoke(ctx.n("fromB"), args, "best", { waitTimeoutMs: 3000 });
                return { returned: r.returned, executedBy: r.executed_by?.application };
            },
        });
    },
};

async function main(t) {
    const io = await t.connect(t.a, { application: `compat-caller-${t.uid}` });
    const interop = io.interop;
    const me = ident(interop.instance);
    await interop.register(t.n("shared"), () => ({ who: "A" }));
    await interop.register(t.n("partial"), () => ({ who: "A" }));
    const bCalls = [];
    await interop.register(t.n("fromB"), (args, caller) => {
        bCalls.push({ args, caller: caller?.application });
        return { seen: args };
    });
    const server = await t.spawn("server");
    const B = server.ready;
    const invoke = (suffix, args, target, options) => interop.invoke(t.n(suffix), args, target, options);
    const opt = { waitTimeoutMs: 3000, methodResponseTimeoutMs: 5000 };

    await t.section("results", async () => {
        const r = await invoke("echo", { x: 1, s: "a", list: [1, 2], obj: { k: null } }, "best", opt);
        t.check("echo returns the arguments", r.returned.args, { x: 1, s: "a", list: [1, 2], obj: { k: null } });
        t.check("handler sees the caller instance", r.returned.caller, { application: me.application, peerId: me.peerId });
        t.check("executed_by is the server", ident(r.executed_by)?.peerId, B.peerId);
        t.check("executed_by.application", r.executed_by?.application, B.application);
        t.check("status 0", r.status, 0);
        t.check("all_return_values has one entry", r.all_return_values?.length, 1);
        t.check("all_errors empty", r.all_errors, []);
        t.check("number wrapped as {_value}", (await invoke("number", {}, "best", opt)).returned, { _value: 42 });
        t.check("string wrapped as {_value}", (await invoke("string", {}, "best", opt)).returned, { _value: "hi" });
        t.check("array wrapped as {_value}", (await invoke("array", {}, "best", opt)).returned, { _value: [1, 2, 3] });
        t.check("null becomes {}", (await invoke("null", {}, "best", opt)).returned, {});
        t.check("nested object passes through", (await invoke("object", {}, "best", opt)).returned, {
            nested: { list: [1, "two", { three: 3 }], flag: true, nothing: null },
        });
        t.check("async handler", (await invoke("async", { n: 21 }, "best", opt)).returned, { doubled: 42 });
        t.check("no arguments → handler gets {}", (await invoke("echo", undefined, "best", opt)).returned.args, {});
        const when = new Date(1700000000123);
        const d = (await invoke("echo", { when }, "best", opt)).returned.args.when;
        t.ok("a Date argument round-trips as a Date", d instanceof Date && d.getTime() === when.getTime(), { got: String(d), type: typeof d });
    });

    await t.section("handler errors", async () => {
        await t.rejects("thrown error rejects with its message", invoke("throws", {}, "best", opt), "boom from server");
        await t.rejects("rejected promise rejects with its message", invoke("rejects", {}, "best", opt), "async boom");
        try {
            await invoke("throws", {}, "best", opt);
        } catch (e) {
            t.check("error result status 1", e.status, 1);
            t.check("all_errors has one entry", e.all_errors?.length, 1);
            t.check("all_errors[0].message", e.all_errors?.[0]?.message, "boom from server");
            t.check("error executed_by is the server", e.executed_by?.peerId ?? e.all_errors?.[0]?.executed_by?.peerId, B.peerId);
        }
        // the connection still works after errors
        t.check("invoke after error", (await invoke("number", {}, "best", opt)).returned, { _value: 42 });
    });

    await t.section("targets", async () => {
        const who = (r) => (r.all_return_values || []).map((v) => v.returned?.who).sort();
        const all = await invoke("shared", {}, "all", opt);
        t.check("all: both servers including the caller", who(all), ["A", "B"]);
        t.check("all: executed_by of every value", all.all_return_values.map((v) => v.executed_by?.peerId).sort(), [me.peerId, B.peerId].sort());
        t.check("skipMine: only the other server", who(await invoke("shared", {}, "skipMine", opt)), ["B"]);
        const best = await invoke("shared", {}, "best", opt);
        t.ok("best: exactly one server", best.all_return_values.length === 1 && ["A", "B"].includes(best.returned.who), best.returned);
        t.check("default target is best (one result)", (await interop.invoke(t.n("shared"), {}, undefined, opt)).all_return_values.length, 1);
        t.check("instance filter {application: B}", who(await invoke("shared", {}, { application: B.application }, opt)), ["B"]);
        t.check("instance filter {instance: A}", who(await invoke("shared", {}, { instance: me.instance }, opt)), ["A"]);
        t.check("instance filter {peerId: B}", who(await invoke("shared", {}, { peerId: B.peerId }, opt)), ["B"]);
        t.check(
            "array of filters",
            who(await invoke("shared", {}, [{ application: me.application }, { application: B.application }], opt)),
            ["A", "B"]
        );
        await t.rejects(
            "filter matching no server",
            invoke("shared", {}, { application: "no-such-app" }, { waitTimeoutMs: 0 }),
            "Can not find a method"
        );
    });

    await t.section("multi-target partial failure", async () => {
        const r = await invoke("partial", {}, "all", opt);
        t.check("resolves when one target succeeded", r.all_return_values.map((v) => v.returned), [{ who: "A" }]);
        t.check("the failure is in all_errors", r.all_errors.map((e) => e.message), ["B fails"]);
    });

    await t.section("large payload (about 1 MB each way)", async () => {
        const blob = "x".repeat(1024 * 1024 - 5) + "tail!";
        const r = await invoke("size", { blob }, "best", opt);
        t.check("argument arrived whole", [r.returned.length, r.returned.tail], [blob.length, "tail!"]);
        t.ok("result arrived whole", r.returned.back === blob, { length: r.returned.back?.length });
    });

    await t.section("caller and callee swap (B invokes A)", async () => {
        const r = await server.call("invoke-back", { n: 7, s: "x" });
        t.check("B got A's result", r.returned, { seen: { n: 7, s: "x" } });
        t.check("B sees executed_by = A", r.executedBy, me.application);
        t.check("A's handler got B as caller", bCalls.map((c) => c.caller), [B.application]);
    });

    await t.section("waitTimeoutMs", async () => {
        const t0 = Date.now();
        const pending = invoke("late", { q: 1 }, "best", { waitTimeoutMs: 5000 });
        await sleep(300);
        await server.call("register-late");
        const r = await pending;
        t.check("method registered during the wait is invoked", r.returned, { late: "ok", args: { q: 1 } });
        t.ok("resolved before waitTimeoutMs", Date.now() - t0 < 4500, { elapsed: Date.now() - t0 });
        const t1 = Date.now();
        await t.rejects("never registered → not found", invoke("never", {}, "best", { waitTimeoutMs: 1000 }), "Can not find a method");
        const el = Date.now() - t1;
        t.ok("not-found rejection after about waitTimeoutMs", el >= 800 && el < 3000, { elapsed: el });
        const t2 = Date.now();
        await t.rejects("waitTimeoutMs 0 → immediate not found", invoke("never", {}, "best", { waitTimeoutMs: 0 }), "Can not find a method");
        t.ok("waitTimeoutMs 0 is immediate", Date.now() - t2 < 500, { elapsed: Date.now() - t2 });
    });

    await t.section("methodResponseTimeoutMs", async () => {
        const t0 = Date.now();
        await t.rejects(
            "slow handler → timeout",
            invoke("slow", {}, "best", { waitTimeoutMs: 1000, methodResponseTimeoutMs: 400 }),
            "Invocation timeout (400 ms)"
        );
        const el = Date.now() - t0;
        t.ok("timed out at about 400 ms", el >= 350 && el < 1400, { elapsed: el });
        await sleep(1300); // the late yield arrives at the hub and must not disturb later calls
        t.check("invoke after a late result", (await invoke("async", { n: 1 }, "best", opt)).returned, { doubled: 2 });
    });

    await t.section("unregister → methodRemoved", async () => {
        const removed = [];
        const serverRemoved = [];
        const un1 = interop.methodRemoved((m) => removed.push(m.name));
        const un2 = interop.serverMethodRemoved((e) => serverRemoved.push({ name: e.method?.name, server: e.server?.peerId }));
        t.check("temp listed before", interop.methods({ name: t.n("temp") }).length, 1);
        t.check("temp invokable", (await invoke("temp", {}, "best", opt)).returned, { temp: true });
        await server.call("unregister-temp");
        const t0 = Date.now();
        while (!removed.includes(t.n("temp")) && Date.now() - t0 < 3000) await sleep(20);
        t.ok("methodRemoved fired for temp", removed.includes(t.n("temp")), { removed });
        t.check("serverMethodRemoved fired for (B, temp)", serverRemoved.filter((e) => e.name === t.n("temp")), [{ name: t.n("temp"), server: B.peerId }]);
        t.check("methods() no longer lists temp", interop.methods({ name: t.n("temp") }).length, 0);
        await t.rejects("invoking temp now fails", invoke("temp", {}, "best", { waitTimeoutMs: 0 }), "Can not find a method");
        t.check("other methods of B still there", (await invoke("number", {}, "best", opt)).returned, { _value: 42 });
        un1();
        un2();
        // A unregisters its own method: its own repository and B both drop it
        await interop.unregister(t.n("shared"));
        t.check("A's own unregister: all → only B", (await invoke("shared", {}, "all", opt)).all_return_values.map((v) => v.returned.who), ["B"]);
    });
}

run(__filename, { main, roles });
