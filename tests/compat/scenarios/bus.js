"use strict";
// Pub/Sub bus (config bus: true): exact topics, `*` (one segment) and `>` (the rest) wildcards,
// routing keys, publisher target, publisher identity, delivery to the publisher's own subscriptions.
// Main = client A (mostly publisher); child "subscriber" = client B.
const { run, sleep, ident } = require("../lib/harness");

const roles = {
    async subscriber(ctx) {
        const io = await ctx.connect({ application: `compat-bus-sub-${ctx.uid}`, bus: true });
        const T = ctx.n("bus");
        const got = {};
        const subs = {};
        const reported = new Set();
        const sub = async (key, topic, options) => {
            got[key] = [];
            subs[key] = await io.bus.subscribe(
                topic,
                (data, cbTopic, source) => {
                    got[key].push({ data, topic: cbTopic, source: source?.application });
                    // The order in which the subscriptions matching one publish are served is not
                    // defined: report once the end marker reached all three that match it.
                    const seq = data?.seq;
                    const reached = (k) => got[k].some((e) => e.data?.seq === seq);
                    if (seq !== undefined && !reported.has(seq) && ["end", "star", "gt"].every(reached)) {
                        reported.add(seq);
                        ctx.emit("collected", { seq, got });
                    }
                },
                options
            );
        };
        await sub("exact", `${T}.exact`);
        await sub("star", `${T}.*`);
        await sub("gt", `${T}.>`);
        await sub("rk", `${T}.rk`, { routingKey: "k1" });
        await sub("tgt", `${T}.tgt`);
        await sub("end", `${T}.end`);
        ctx.emit("ready", ident(io.interop.instance));
        await ctx.serve({
            "unsubscribe-exact": async () => {
                await subs.exact.unsubscribe();
                got.exact.push({ data: { unsubscribed: true } });
            },
            publish: ({ topic, data, options }) => io.bus.publish(`${T}.${topic}`, data, options),
        });
    },
};

async function main(t) {
    const io = await t.connect(t.a, { application: `compat-bus-pub-${t.uid}`, bus: true });
    const me = ident(io.interop.instance);
    const T = t.n("bus");
    const mine = { self: [], tgt: [], end: [], back: [] };
    for (const key of Object.keys(mine)) {
        await io.bus.subscribe(`${T}.${key}`, (data, topic, source) => mine[key].push({ data, topic, source: source?.application }));
    }
    const sub = await t.spawn("subscriber");
    const B = sub.ready;
    const pub = (topic, data, options) => io.bus.publish(`${T}.${topic}`, data, options);
    const until = async (cond, ms = 3000) => {
        const t0 = Date.now();
        while (!cond() && Date.now() - t0 < ms) await sleep(20);
        return cond();
    };
    const ns = (list) => (list || []).map((e) => e.data.n);

    await t.section("topics, wildcards, routing keys, targets", async () => {
        pub("exact", { n: 1, payload: { deep: [1, "x"] } });
        pub("a.b", { n: 2 });
        pub("rk", { n: 3 }, { routingKey: "k1" });
        pub("rk", { n: 4 }, { routingKey: "k2" });
        pub("rk", { n: 5 });
        pub("self", { n: 6 });
        pub("tgt", { n: 7 }, { target: { application: B.application } });
        pub("tgt", { n: 8 }, { target: { application: "nobody-has-this-name" } });
        pub("end", { n: 9, seq: 1 });
        const { got } = await sub.next("collected", 5000, (c) => c.seq === 1);
        t.check("exact topic", ns(got.exact), [1]);
        t.check("payload intact", got.exact[0]?.data, { n: 1, payload: { deep: [1, "x"] } });
        t.check("source is the publisher", got.exact[0]?.source, me.application);
        t.check("callback topic is the subscribed topic", got.exact[0]?.topic, `${T}.exact`);
        t.check("* matches exactly one segment", ns(got.star), [1, 3, 4, 5, 6, 7, 9]);
        t.check("> matches the rest", ns(got.gt), [1, 2, 3, 4, 5, 6, 7, 9]);
        t.check("routing key: same key or no key on the publisher", ns(got.rk), [3, 5]);
        t.check("publisher target: only the targeted peer", ns(got.tgt), [7]);
        await until(() => mine.end.length > 0);
        t.check("own subscription receives own publish", ns(mine.self), [6]);
        t.check("target excludes the non-matching publisher itself", ns(mine.tgt), []);
        t.check("own end", ns(mine.end), [9]);
    });

    await t.section("publish from the other side", async () => {
        await sub.call("publish", { topic: "back", data: { n: 20, from: "B" } });
        t.ok("A receives B's publish", await until(() => mine.back.length > 0), mine.back);
        t.check("A's data and source", mine.back[0], { data: { n: 20, from: "B" }, topic: `${T}.back`, source: B.application });
    });

    await t.section("unsubscribe", async () => {
        await sub.call("unsubscribe-exact");
        await sleep(100);
        pub("exact", { n: 10 });
        pub("end", { n: 11, seq: 2 });
        const { got } = await sub.next("collected", 5000, (c) => c.seq === 2);
        t.check("other subscriptions still deliver", [ns(got.star).includes(10), ns(got.gt).includes(10)], [true, true]);
        t.check("unsubscribed subscription delivers nothing more", got.exact.map((e) => e.data.n ?? "unsub"), [1, "unsub"]);
    });
}

run(__filename, { main, roles });
