"use strict";
// Peer death (SIGKILL, no goodbye): a pending invoke fails fast with "Peer has left while waiting
// for result"; a killed publisher closes its subscriptions (onClosed ServerInitiated); a killed
// subscriber reaches the publisher's subscriptionRemovedHandler.  Killed peers are client B.
const { run, sleep, ident } = require("../lib/harness");

const roles = {
    async hanger(ctx) {
        const io = await ctx.connect({ application: `compat-hanger-${ctx.uid}` });
        await io.interop.register(ctx.n("hang"), (args) => {
            ctx.emit("invoked", args);
            return new Promise(() => undefined); // never answers
        });
        await io.interop.register(ctx.n("ok"), () => ({ fine: true }));
        ctx.emit("ready", ident(io.interop.instance));
        await ctx.serve({});
    },
    async publisher(ctx) {
        const io = await ctx.connect({ application: `compat-dying-pub-${ctx.uid}` });
        await io.interop.createStream(ctx.n("dying"), {
            subscriptionAddedHandler(sub) {
                sub.push({ hello: sub.arguments?.tag });
            },
        });
        ctx.emit("ready", ident(io.interop.instance));
        await ctx.serve({});
    },
    async subscriber(ctx) {
        const io = await ctx.connect({ application: `compat-dying-sub-${ctx.uid}` });
        const sub = await io.interop.subscribe(ctx.n("living"), { arguments: { tag: "doomed" }, waitTimeoutMs: 5000 });
        sub.onData((d) => ctx.emit("data", d.data));
        ctx.emit("ready", ident(io.interop.instance));
        await ctx.serve({});
    },
};

async function main(t) {
    const io = await t.connect(t.a, { application: `compat-survivor-${t.uid}` });
    const interop = io.interop;
    const until = async (cond, ms = 3000) => {
        const t0 = Date.now();
        while (!cond() && Date.now() - t0 < ms) await sleep(20);
        return cond();
    };

    await t.section("pending invoke to a killed server", async () => {
        const hanger = await t.spawn("hanger");
        const H = hanger.ready;
        const removed = [];
        interop.serverRemoved((s, reason) => removed.push({ peerId: s.peerId, reason }));
        t.check("server works before", (await interop.invoke(t.n("ok"), {}, "best", { waitTimeoutMs: 3000 })).returned, { fine: true });
        const pending = interop.invoke(t.n("hang"), { q: 1 }, "best", { waitTimeoutMs: 3000, methodResponseTimeoutMs: 20000 });
        let settled = null;
        pending.then(
            (r) => (settled = { resolved: r.returned }),
            (e) => (settled = { rejected: e })
        );
        t.check("handler was invoked", await hanger.next("invoked", 3000), { q: 1 });
        await sleep(100);
        t.check("still pending before the kill", settled, null);
        const t0 = Date.now();
        await hanger.kill("SIGKILL");
        await t.rejects(
            "invoke rejects",
            pending,
            "Peer has left while waiting for result",
            // @glue42/core 5.13 looks the server up again in a promise continuation of the error:
            // if peer-removed was handled in the same JS task (frames read in one chunk), that
            // lookup throws this TypeError instead. The Glue42 gateway has the same race.
            "\"Cannot read properties of undefined (reading 'methods')\" means the error and the peer-removed for the dead server reached @glue42/core in one read; deliver peer-removed/methods-removed to callers with pending calls a little later than the call errors"
        );
        const elapsed = Date.now() - t0;
        t.ok("rejection arrives well under a second after the kill (< 2 s)", elapsed < 2000, { elapsed });
        t.ok("serverRemoved fires for the killed server", await until(() => removed.some((r) => r.peerId === H.peerId)), removed);
        t.check("method gone after the kill", interop.methods({ name: t.n("hang") }).length, 0);
        await t.rejects("new invoke fails as not found", interop.invoke(t.n("hang"), {}, "best", { waitTimeoutMs: 0 }), "Can not find a method");
    });

    await t.section("publisher killed", async () => {
        const pub = await t.spawn("publisher");
        const P = pub.ready;
        const data = [];
        const closed = [];
        const sub = await interop.subscribe(t.n("dying"), { arguments: { tag: "s" }, waitTimeoutMs: 3000 });
        sub.onData((d) => data.push(d.data));
        sub.onClosed((info) => closed.push({ message: info.message, server: info.server?.peerId }));
        t.ok("subscription is live", await until(() => data.length > 0), data);
        const t0 = Date.now();
        await pub.kill("SIGKILL");
        t.ok("onClosed fires", await until(() => closed.length > 0), closed);
        t.ok("onClosed within 2 s", Date.now() - t0 < 2000, { elapsed: Date.now() - t0 });
        t.check("onClosed message and server", closed, [{ message: "ServerInitiated", server: P.peerId }]);
    });

    await t.section("subscriber killed", async () => {
        const added = [];
        const removed = [];
        const stream = await interop.createStream(t.n("living"), {
            subscriptionAddedHandler: (s) => added.push({ args: s.arguments, peerId: s.instance?.peerId }),
            subscriptionRemovedHandler: (s) => removed.push({ args: s.arguments, peerId: s.instance?.peerId }),
        });
        const subscriber = await t.spawn("subscriber");
        const S = subscriber.ready;
        t.ok("subscription added", await until(() => added.length > 0), added);
        t.check("added: arguments and subscriber", added, [{ args: { tag: "doomed" }, peerId: S.peerId }]);
        stream.push({ tick: 1 });
        t.check("subscriber receives data", await subscriber.next("data", 3000), { tick: 1 });
        const t0 = Date.now();
        await subscriber.kill("SIGKILL");
        t.ok("subscriptionRemovedHandler fires", await until(() => removed.length > 0), removed);
        t.ok("within 2 s", Date.now() - t0 < 2000, { elapsed: Date.now() - t0 });
        t.check("removed: arguments and subscriber", removed, [{ args: { tag: "doomed" }, peerId: S.peerId }]);
        t.check("stream has no subscriptions left", stream.subscriptions().length, 0);
        t.check("stream has no branches left", stream.branches().length, 0);
        stream.push({ tick: 2 }); // pushing to nobody must not break anything
        stream.close();
    });
}

run(__filename, { main, roles });
