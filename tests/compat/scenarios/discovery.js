"use strict";
// Discovery: methods()/servers() contents and method definitions as seen by another peer; events
// methodAdded/methodRemoved, serverAdded/serverRemoved, serverMethodAdded/serverMethodRemoved.
// Child "early" (B) registers before A connects (A must learn them at join); child "late" (C)
// connects after A subscribed to the events, registers, unregisters and leaves.
const { run, sleep, ident } = require("../lib/harness");

const DEF_ONE = {
    displayName: "Method One",
    description: "the first method",
    accepts: "String name, Int? count",
    returns: "String greeting",
    objectTypes: ["Instrument", "Client"],
    version: 2,
    flags: { custom: "x", level: 3 },
};

const roles = {
    async early(ctx) {
        const io = await ctx.connect({ application: `compat-early-${ctx.uid}` });
        await io.interop.register({ name: ctx.n("one"), ...DEF_ONE }, () => ({ one: 1 }));
        await io.interop.register(ctx.n("two"), () => ({ two: 2 }));
        await io.interop.createStream(ctx.n("stream"));
        ctx.emit("ready", { ...ident(io.interop.instance), process: process.pid });
        await ctx.serve({
            "unregister-two": () => io.interop.unregister(ctx.n("two")),
        });
    },
    async late(ctx) {
        const io = await ctx.connect({ application: `compat-late-${ctx.uid}` });
        ctx.emit("ready", ident(io.interop.instance));
        await ctx.serve({
            register: (suffix) => io.interop.register(ctx.n(suffix), () => ({})),
        });
    },
};

async function main(t) {
    const early = await t.spawn("early");
    const B = early.ready;
    const io = await t.connect(t.a, { application: `compat-observer-${t.uid}` });
    const interop = io.interop;
    const me = ident(interop.instance);
    const names = () => interop.methods().map((m) => m.name);

    await t.section("state known at join", async () => {
        // methods of peers that were there before A joined must be known when init resolves
        const ms = names();
        t.ok("methods() lists B's methods right after connect", ms.includes(t.n("one")) && ms.includes(t.n("two")), ms.filter((n) => n.includes(t.uid)));
        const one = interop.methods({ name: t.n("one") });
        t.check("one entry for method one", one.length, 1);
        const m = one[0] || {};
        t.check("definition fields", {
            name: m.name,
            displayName: m.displayName,
            description: m.description,
            accepts: m.accepts,
            returns: m.returns,
            objectTypes: m.objectTypes,
            version: m.version,
            flags: m.flags,
            supportsStreaming: m.supportsStreaming,
        }, { name: t.n("one"), ...DEF_ONE, supportsStreaming: false });
        t.check("method.getServers() = [B]", (m.getServers?.() || []).map((s) => s.peerId), [B.peerId]);
        const stream = interop.methods({ name: t.n("stream") })[0];
        t.check("stream method has supportsStreaming", stream?.supportsStreaming, true);
        const serverIds = interop.servers().map((s) => s.peerId);
        t.ok("servers() includes B", serverIds.includes(B.peerId), serverIds);
        t.ok("servers() includes A itself", serverIds.includes(me.peerId), serverIds);
        const b = interop.servers().find((s) => s.peerId === B.peerId) || {};
        t.check("B's identity as seen by A", ident(b), { ...ident(B) });
        t.check("B's pid is its process id", b.pid, B.process);
        t.ok("A's identity is complete", !!(me.peerId && me.instance && me.application && me.user !== undefined && me.machine), me);
        t.check("A's application as configured", me.application, `compat-observer-${t.uid}`);
        t.check("servers({name: one}) = [B]", interop.servers({ name: t.n("one") }).map((s) => s.peerId), [B.peerId]);
        const forB = interop.methodsForInstance({ instance: B.instance }).map((x) => x.name).sort();
        t.check("methodsForInstance(B)", forB, [t.n("one"), t.n("stream"), t.n("two")]);
        t.check("instance.getMethods() of B (streams included)", (b.getMethods?.() || []).map((x) => x.name).sort(), [t.n("one"), t.n("stream"), t.n("two")]);
        t.check("instance.getStreams() of B", (b.getStreams?.() || []).map((x) => x.name), [t.n("stream")]);
    });

    const ev = { methodAdded: [], methodRemoved: [], serverAdded: [], serverRemoved: [], smAdded: [], smRemoved: [] };
    const mine = (name) => typeof name === "string" && name.includes(t.uid);
    interop.methodAdded((m) => mine(m.name) && ev.methodAdded.push(m.name));
    interop.methodRemoved((m) => mine(m.name) && ev.methodRemoved.push(m.name));
    interop.serverAdded((s) => ev.serverAdded.push(s.peerId));
    interop.serverRemoved((s, reason) => ev.serverRemoved.push({ peerId: s.peerId, reason }));
    interop.serverMethodAdded((e) => mine(e.method?.name) && ev.smAdded.push({ server: e.server?.peerId, name: e.method?.name }));
    interop.serverMethodRemoved((e) => mine(e.method?.name) && ev.smRemoved.push({ server: e.server?.peerId, name: e.method?.name }));
    const until = async (cond, ms = 3000) => {
        const t0 = Date.now();
        while (!cond() && Date.now() - t0 < ms) await sleep(20);
        return cond();
    };

    await t.section("events replay existing state", async () => {
        await until(() => ev.methodAdded.includes(t.n("one")) && ev.serverAdded.includes(B.peerId), 1500);
        t.ok("methodAdded replays B's methods", [t.n("one"), t.n("two"), t.n("stream")].every((n) => ev.methodAdded.includes(n)), ev.methodAdded);
        t.ok("serverAdded replays B", ev.serverAdded.includes(B.peerId), ev.serverAdded);
        t.ok("serverMethodAdded replays (B, one)", ev.smAdded.some((e) => e.server === B.peerId && e.name === t.n("one")), ev.smAdded);
    });

    let C;
    let late;
    await t.section("peer joins, registers, leaves", async () => {
        late = await t.spawn("late");
        C = late.ready;
        t.ok("serverAdded fires for a new peer (no methods yet)", await until(() => ev.serverAdded.includes(C.peerId)), ev.serverAdded);
        t.ok("servers() includes C", interop.servers().some((s) => s.peerId === C.peerId));
        await late.call("register", "c1");
        t.ok("methodAdded fires for c1", await until(() => ev.methodAdded.includes(t.n("c1"))), ev.methodAdded);
        t.check("serverMethodAdded (C, c1)", ev.smAdded.filter((e) => e.name === t.n("c1")), [{ server: C.peerId, name: t.n("c1") }]);
        t.check("c1 offered by C", interop.methods({ name: t.n("c1") }).map((m) => m.getServers().map((s) => s.peerId)), [[C.peerId]]);
        // a second server for an existing method: serverMethodAdded, but no new methodAdded
        await late.call("register", "two");
        t.ok("serverMethodAdded (C, two)", await until(() => ev.smAdded.some((e) => e.server === C.peerId && e.name === t.n("two"))), ev.smAdded);
        t.check("methodAdded not repeated for two", ev.methodAdded.filter((n) => n === t.n("two")).length, 1);
        t.check("servers({name: two}) = B and C", interop.servers({ name: t.n("two") }).map((s) => s.peerId).sort(), [B.peerId, C.peerId].sort());

        await early.call("unregister-two");
        t.ok("serverMethodRemoved (B, two)", await until(() => ev.smRemoved.some((e) => e.server === B.peerId && e.name === t.n("two"))), ev.smRemoved);
        t.check("methodRemoved not fired while C still offers two", ev.methodRemoved.includes(t.n("two")), false);

        await late.call("exit");
        t.ok("serverRemoved fires for C", await until(() => ev.serverRemoved.some((e) => e.peerId === C.peerId)), ev.serverRemoved);
        t.ok("methodRemoved for c1", await until(() => ev.methodRemoved.includes(t.n("c1"))), ev.methodRemoved);
        t.ok("methodRemoved for two (last server left)", await until(() => ev.methodRemoved.includes(t.n("two"))), ev.methodRemoved);
        t.ok("serverMethodRemoved (C, c1)", ev.smRemoved.some((e) => e.server === C.peerId && e.name === t.n("c1")), ev.smRemoved);
        t.ok("servers() no longer lists C", !interop.servers().some((s) => s.peerId === C.peerId));
        t.check("methods({name: c1}) empty", interop.methods({ name: t.n("c1") }).length, 0);
        t.ok("B unaffected", interop.servers().some((s) => s.peerId === B.peerId));
        t.check("serverRemoved not fired for B", ev.serverRemoved.some((e) => e.peerId === B.peerId), false);
    });

    await t.section("peer killed", async () => {
        await early.kill("SIGKILL");
        t.ok("serverRemoved fires for killed B", await until(() => ev.serverRemoved.some((e) => e.peerId === B.peerId)), ev.serverRemoved);
        t.ok("methodRemoved for one and stream", await until(() => ev.methodRemoved.includes(t.n("one")) && ev.methodRemoved.includes(t.n("stream"))), ev.methodRemoved);
        t.check("no method of this run left", names().filter(mine), []);
        t.ok("servers() lists A itself still", interop.servers().some((s) => s.peerId === me.peerId));
    });
}

run(__filename, { main, roles });
