"use strict";
// Streams: createStream, subscribe with arguments, accept / acceptOnBranch / reject, push to all
// and to branches, unicast sub.push (private), subscriber close → publisher's removed handler,
// stream.close() → subscribers' onClosed.  Child "publisher" = client B; main = subscriber A.
const { run, sleep, ident } = require("../lib/harness");

const roles = {
    async second(ctx) {
        const io = await ctx.connect({ application: `compat-publisher2-${ctx.uid}` });
        const multi = await io.interop.createStream(ctx.n("multi"));
        ctx.emit("ready", ident(io.interop.instance));
        await ctx.serve({ "push-multi": (data) => multi.push(data) });
    },
    async publisher(ctx) {
        const io = await ctx.connect({ application: `compat-publisher-${ctx.uid}` });
        const subs = new Map(); // tag → StreamSubscription
        const stream = await io.interop.createStream(ctx.n("prices"), {
            subscriptionRequestHandler(req) {
                const args = req.arguments || {};
                ctx.emit("request", { args, instance: ident(req.instance) });
                if (args.reject) req.reject(args.reject);
                else if (args.branch) req.acceptOnBranch(args.branch);
                else req.accept();
            },
            subscriptionAddedHandler(sub) {
                subs.set(sub.arguments?.tag, sub);
                ctx.emit("added", { args: sub.arguments, branch: sub.branchKey, instance: ident(sub.instance) });
                if (sub.arguments?.welcome) sub.push({ welcome: sub.arguments.tag });
            },
            subscriptionRemovedHandler(sub) {
                subs.delete(sub.arguments?.tag);
                ctx.emit("removed", { args: sub.arguments, branch: sub.branchKey });
            },
        });
        // a second stream with the default (auto-accept) request handler
        const simple = await io.interop.createStream(ctx.n("simple"));
        const multi = await io.interop.createStream(ctx.n("multi"));
        ctx.emit("ready", ident(io.interop.instance));
        await ctx.serve({
            "push-multi": (data) => multi.push(data),
            push: ({ data, branches }) => stream.push(data, branches),
            "push-private": ({ tag, data }) => {
                const sub = subs.get(tag);
                if (!sub) throw new Error(`no subscription with tag ${tag}`);
                sub.push(data);
            },
            "close-sub": (tag) => subs.get(tag).close(),
            "close-branch": (key) => stream.branch(key).close(),
            branches: () => ({
                keys: stream.branches().map((b) => b.key).sort(),
                subs: stream.subscriptions().map((s) => s.arguments?.tag).sort(),
            }),
            "push-simple": (data) => simple.push(data),
            burst: (count) => {
                for (let i = 0; i < count; i++) simple.push({ i, pad: "p".repeat(100) });
            },
            close: () => stream.close(),
        });
    },
};

async function main(t) {
    const io = await t.connect(t.a, { application: `compat-subscriber-${t.uid}` });
    const interop = io.interop;
    const me = ident(interop.instance);
    const pub = await t.spawn("publisher");
    const P = pub.ready;
    const name = t.n("prices");
    const got = {}; // tag → [{data, private, server}]
    const closed = {}; // tag → [info]
    const subscribe = async (args) => {
        got[args.tag] = [];
        closed[args.tag] = [];
        const sub = await interop.subscribe(name, { arguments: args, waitTimeoutMs: 3000, methodResponseTimeout: 5000 });
        sub.onData((d) => got[args.tag].push({ data: d.data, private: d.private, server: d.server?.peerId, requestArguments: d.requestArguments }));
        sub.onClosed((info) => closed[args.tag].push({ message: info.message, server: info.server?.peerId }));
        return sub;
    };
    const until = async (cond, ms = 3000) => {
        const t0 = Date.now();
        while (!cond() && Date.now() - t0 < ms) await sleep(20);
        return cond();
    };
    const datas = (tag) => got[tag].map((e) => e.data);
    const subs = {};

    await t.section("subscribe with arguments", async () => {
        subs.s1 = await subscribe({ tag: "s1", welcome: true, filter: { ccy: ["EUR", "USD"], depth: 5 } });
        const req = await pub.next("request", 3000, (r) => r.args?.tag === "s1");
        t.check("request arguments reach the publisher", req.args, { tag: "s1", welcome: true, filter: { ccy: ["EUR", "USD"], depth: 5 } });
        t.check("request instance is the subscriber", req.instance?.peerId, me.peerId);
        const added = await pub.next("added", 3000, (a) => a.args?.tag === "s1");
        t.check("subscriptionAddedHandler: arguments", added.args, { tag: "s1", welcome: true, filter: { ccy: ["EUR", "USD"], depth: 5 } });
        t.check("subscriptionAddedHandler: default branch", added.branch, "");
        t.check("subscriptionAddedHandler: instance", added.instance?.application, me.application);
        t.check("subscription.servers = [publisher]", subs.s1.servers.map((s) => s.peerId), [P.peerId]);
        t.check("subscription.requestArguments", subs.s1.requestArguments?.tag, "s1");
        t.ok("welcome (sub.push in added handler) arrives", await until(() => got.s1.length >= 1), got.s1);
        t.check("welcome is private", got.s1[0], { data: { welcome: "s1" }, private: true, server: P.peerId, requestArguments: subs.s1.requestArguments });

        subs.s2 = await subscribe({ tag: "s2", branch: "EUR" });
        subs.s3 = await subscribe({ tag: "s3", branch: "USD" });
        subs.s4 = await subscribe({ tag: "s4", branch: "EUR" });
        t.check("added on branches", [await pub.next("added"), await pub.next("added"), await pub.next("added")].map((a) => [a.args.tag, a.branch]), [
            ["s2", "EUR"],
            ["s3", "USD"],
            ["s4", "EUR"],
        ]);
        t.check("publisher branches and subscriptions", await pub.call("branches"), { keys: ["", "EUR", "USD"], subs: ["s1", "s2", "s3", "s4"] });
    });

    await t.section("push", async () => {
        await pub.call("push", { data: { n: 1, px: 1.5, tags: ["a"] } });
        await pub.call("push", { data: { n: 2 }, branches: "EUR" });
        await pub.call("push", { data: { n: 3 }, branches: ["USD", ""] });
        await pub.call("push", { data: { n: 4 }, branches: "NOPE" });
        await pub.call("push-private", { tag: "s3", data: { n: 5, only: "s3" } });
        await pub.call("push", { data: { n: 6, end: true } });
        await until(() => ["s1", "s2", "s3", "s4"].every((tag) => got[tag].some((e) => e.data.end)));
        const multicast = (tag) => got[tag].filter((e) => !e.private).map((e) => e.data.n);
        t.check("s1 (default branch) multicast", multicast("s1"), [1, 3, 6]);
        t.check("s2 (EUR) multicast", multicast("s2"), [1, 2, 6]);
        t.check("s3 (USD) multicast", multicast("s3"), [1, 3, 6]);
        t.check("s4 (EUR) multicast", multicast("s4"), [1, 2, 6]);
        t.check("s3 private data", got.s3.filter((e) => e.private).map((e) => e.data), [{ n: 5, only: "s3" }]);
        t.check("private data only to s3", ["s1", "s2", "s4"].map((tag) => got[tag].filter((e) => e.private && e.data.n === 5).length), [0, 0, 0]);
        t.check("data value intact", got.s2[0]?.data, { n: 1, px: 1.5, tags: ["a"] });
        t.check("data.server is the publisher", [...new Set(got.s2.map((e) => e.server))], [P.peerId]);
        t.check("multicast data is not private", got.s2[0]?.private, false);
    });

    await t.section("reject", async () => {
        got.r = [];
        const t0 = Date.now();
        await t.rejects(
            "subscribe rejects with the publisher's reason",
            interop.subscribe(name, { arguments: { tag: "r", reject: "not entitled to XYZ" }, waitTimeoutMs: 3000, methodResponseTimeout: 5000 }),
            "not entitled to XYZ"
        );
        t.ok("rejection is prompt", Date.now() - t0 < 2000, { elapsed: Date.now() - t0 });
        const req = await pub.next("request", 3000, (r) => r.args?.tag === "r");
        t.check("publisher saw the rejected request", req.args.reject, "not entitled to XYZ");
        t.check("rejected request leaves no subscription", (await pub.call("branches")).subs, ["s1", "s2", "s3", "s4"]);
    });

    await t.section("subscriber closes", async () => {
        subs.s1.close();
        const removed = await pub.next("removed");
        t.check("publisher's subscriptionRemovedHandler got s1", removed.args?.tag, "s1");
        t.check("closing side gets onClosed ClientInitiated", closed.s1.map((c) => c.message), ["ClientInitiated"]);
        t.check("default branch gone", (await pub.call("branches")).keys, ["EUR", "USD"]);
        const before = got.s1.length;
        await pub.call("push", { data: { n: 7 } });
        await until(() => got.s2.some((e) => e.data.n === 7) && got.s3.some((e) => e.data.n === 7));
        await sleep(100);
        t.check("closed subscription gets no more data", got.s1.length, before);
    });

    await t.section("publisher closes one subscription and one branch", async () => {
        await pub.call("close-sub", "s4");
        t.ok("s4 onClosed (ServerInitiated)", await until(() => closed.s4.length > 0), closed.s4);
        t.check("s4 close message", closed.s4.map((c) => c.message), ["ServerInitiated"]);
        t.check("s2 on the same branch still open", closed.s2, []);
        await pub.call("close-branch", "USD");
        t.ok("s3 onClosed after branch close", await until(() => closed.s3.length > 0), closed.s3);
        t.check("s3 close message", closed.s3.map((c) => c.message), ["ServerInitiated"]);
        await pub.call("push", { data: { n: 8 } });
        await until(() => got.s2.some((e) => e.data.n === 8));
        await sleep(100);
        t.check("s3 and s4 get nothing after close", [datas("s3").some((d) => d.n === 8), datas("s4").some((d) => d.n === 8)], [false, false]);
    });

    await t.section("subscribe to all publishers of a stream", async () => {
        const second = await t.spawn("second");
        const P2 = second.ready;
        const seen = [];
        const closedAll = [];
        const sub = await interop.subscribe(t.n("multi"), { target: "all", waitTimeoutMs: 3000 });
        sub.onData((d) => seen.push({ data: d.data, server: d.server?.peerId }));
        sub.onClosed((info) => closedAll.push(info.message));
        await until(() => sub.servers.length === 2, 2000);
        t.check("subscription covers both publishers", sub.servers.map((s) => s.peerId).sort(), [P.peerId, P2.peerId].sort());
        await pub.call("push-multi", { from: "P" });
        await second.call("push-multi", { from: "P2" });
        await until(() => seen.length >= 2);
        t.check(
            "data from each publisher, tagged with its server",
            seen.map((e) => [e.data.from, e.server]).sort(),
            [["P", P.peerId], ["P2", P2.peerId]].sort()
        );
        await second.kill("SIGKILL");
        await sleep(300);
        t.check("onClosed not yet fired while one publisher remains", closedAll, []);
        await pub.call("push-multi", { from: "P", again: true });
        t.ok("still receives from the remaining publisher", await until(() => seen.some((e) => e.data.again)), seen);
        sub.close();
    });

    await t.section("stream.close()", async () => {
        t.step("subscribe s5");
        subs.s5 = await subscribe({ tag: "s5" });
        t.step("added s5");
        await pub.next("added", 3000, (a) => a.args?.tag === "s5");
        t.step("stream.close()");
        await pub.call("close");
        t.step("onClosed");
        t.ok("onClosed for all open subscriptions", await until(() => closed.s2.length > 0 && closed.s5.length > 0), { s2: closed.s2, s5: closed.s5 });
        t.check("close messages", [closed.s2, closed.s5].map((c) => c.map((x) => x.message)), [["ServerInitiated"], ["ServerInitiated"]]);
        t.check("onClosed server is the publisher", closed.s2[0]?.server, P.peerId);
        t.step("method gone");
        t.ok("stream method gone", await until(() => interop.methods({ name }).length === 0), interop.methods({ name }).length);
        t.step("subscribe after close");
        await t.rejects(
            "subscribing to the closed stream fails",
            interop.subscribe(name, { arguments: { tag: "x" }, waitTimeoutMs: 600, methodResponseTimeout: 2000 }),
            "No available servers"
        );
    });

    await t.section("default accept handler, onData queueing", async () => {
        const sub = await interop.subscribe(t.n("simple"), { waitTimeoutMs: 3000 });
        await pub.call("push-simple", { q: 1 });
        await sleep(200);
        const seen = [];
        sub.onData((d) => seen.push(d.data));
        t.ok("data before onData is queued and flushed", await until(() => seen.length >= 1), seen);
        t.check("queued value", seen, [{ q: 1 }]);
        const count = 2000;
        await pub.call("burst", count);
        t.ok("a burst of pushes all arrives", await until(() => seen.length >= count + 1, 5000), { received: seen.length - 1, count });
        const order = seen.slice(1).map((d) => d.i);
        t.ok("in order, none lost or duplicated", order.length === count && order.every((v, i) => v === i), { first: order.slice(0, 5), length: order.length });
        sub.close();
    });
}

run(__filename, { main, roles });
