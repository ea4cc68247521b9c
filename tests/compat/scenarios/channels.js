"use strict";
// Channels seen by JS clients through the contexts API, as io.Connect's channels API uses them:
// the hub's default colour channels are contexts "___channel___<Name>" holding {name, meta, data};
// publishing is setPaths on "data.<key>" (top-level keys replaced, null deletes), and a channel
// subscriber receives the whole {name, meta, data}.  (Needs a hub with the default channel set.)
const { run, sleep, ident } = require("../lib/harness");

const PREFIX = "___channel___";
const DEFAULT = ["Red", "Green", "Blue", "Pink", "Yellow", "DarkYellow", "Orange", "Purple", "Lime", "Cyan"];

const roles = {
    async peer(ctx) {
        const io = await ctx.connect({ application: `compat-channel-peer-${ctx.uid}` });
        const contexts = io.contexts;
        ctx.emit("ready", ident(io.interop.instance));
        await ctx.serve({
            all: () => contexts.all().filter((n) => n.startsWith(PREFIX)),
            subscribe: async (name) => {
                await contexts.subscribe(name, (data, _delta, _removed, _u, extra) => ctx.emit("update", { name, data, updaterId: extra?.updaterId }));
            },
            publish: ({ channel, data }) =>
                contexts.setPaths(PREFIX + channel, Object.keys(data).map((k) => ({ path: `data.${k}`, value: data[k] }))),
        });
    },
};

async function main(t) {
    const io = await t.connect(t.a, { application: `compat-channel-main-${t.uid}` });
    const contexts = io.contexts;
    const me = ident(io.interop.instance);
    const peer = await t.spawn("peer");
    const B = peer.ready;
    const key = `k${t.uid}`;
    const publish = (channel, data) =>
        contexts.setPaths(PREFIX + channel, Object.keys(data).map((k) => ({ path: `data.${k}`, value: data[k] })));

    await t.section("default channels", async () => {
        const names = contexts.all().filter((n) => n.startsWith(PREFIX)).map((n) => n.slice(PREFIX.length));
        t.ok("all ten colour channels are announced", DEFAULT.every((c) => names.includes(c)), names);
        const peerNames = await peer.call("all");
        t.ok("the other client sees them too", DEFAULT.every((c) => peerNames.includes(PREFIX + c)), peerNames);
        const red = await contexts.get(PREFIX + "Red");
        t.check("Red: name and colour", { name: red.name, color: red.meta?.color }, { name: "Red", color: "red" });
        t.ok("Red has a data object", red.data !== null && typeof red.data === "object", red);
        t.check("Blue colour", (await contexts.get(PREFIX + "Blue")).meta?.color, "#66ABFF");
    });

    await t.section("publish and subscribe", async () => {
        await peer.call("subscribe", PREFIX + "Red");
        const snap = await peer.next("update", 3000, (u) => u.name === PREFIX + "Red");
        t.check("subscriber snapshot has the channel shape", [snap.data.name, snap.data.meta?.color], ["Red", "red"]);
        await publish("Red", { [key]: { ticker: "AAPL", px: 1.5 } });
        const u = await peer.next("update", 3000, (x) => x.name === PREFIX + "Red" && x.data?.data?.[key]);
        t.check("published data under data.<key>", u.data.data[key], { ticker: "AAPL", px: 1.5 });
        t.check("name and meta kept", [u.data.name, u.data.meta?.color], ["Red", "red"]);
        t.check("updaterId is the publisher", u.updaterId, me.peerId);
        await publish("Red", { [key]: { ticker: "MSFT" } });
        const u2 = await peer.next("update", 3000, (x) => x.name === PREFIX + "Red" && x.data?.data?.[key]?.ticker === "MSFT");
        t.check("a top-level data key is replaced", u2.data.data[key], { ticker: "MSFT" });

        const mine = [];
        await contexts.subscribe(PREFIX + "Green", (data, _d, _r, _u, extra) => mine.push({ data, updaterId: extra?.updaterId }));
        await peer.call("publish", { channel: "Green", data: { [key]: 42 } });
        const t0 = Date.now();
        while (!mine.some((m) => m.data?.data?.[key] === 42) && Date.now() - t0 < 3000) await sleep(20);
        const got = mine.find((m) => m.data?.data?.[key] === 42);
        t.ok("A receives B's publish on Green", !!got, mine.slice(-2));
        t.check("from B", got?.updaterId, B.peerId);
        t.check("Green shape kept", [got?.data?.name, got?.data?.meta?.color], ["Green", "green"]);
        t.check("other channels untouched", (await contexts.get(PREFIX + "Blue")).data?.[key], undefined);
    });

    await t.section("clean up", async () => {
        await publish("Red", { [key]: null });
        await publish("Green", { [key]: null });
        t.check("null removes the key", key in ((await contexts.get(PREFIX + "Red")).data || {}), false);
    });
}

run(__filename, { main, roles });
