"use strict";
// A Node peer holding a real @interopio/core or @glue42/core client (from tests/compat/node_modules),
// driven by gateway_support.JsClient over JSON lines: commands on stdin `{"id", "cmd", "args"}`,
// replies and events on stdout as `@@peer {"id"|"event", ...}`. PEER_CONFIG (JSON) holds
// {flavor, url, auth, application}. Channels are used the way io.Connect's clients use them:
// the context "___channel___<Name>", published into with setPaths("data.<key>").
const path = require("path");
const { emit, serve, run } = require(path.join(__dirname, "..", "compat", "lib", "linepeer"));

const config = JSON.parse(process.env.PEER_CONFIG);
const modules = path.join(process.env.COMPAT_DIR, "node_modules");
const factory = require(path.join(modules, config.flavor === "glue42" ? "@glue42/core" : "@interopio/core"));


async function main() {
    const options = {
        application: config.application,
        gateway: { ws: config.url, reconnectAttempts: 1 },
        auth: config.auth,
        bus: true,
        logger: "error",
    };
    if (config.flavor === "interopio") options.insights = false;
    const io = await factory(options);
    const streams = new Map();
    const commands = {
        async register({ name }) {
            await io.interop.register(name, (args, caller) => ({ echo: args, caller: caller.application }));
            return true;
        },
        async invoke({ method, args }) {
            const result = await io.interop.invoke(method, args, "best", { waitTimeoutMs: 10000 });
            return result.returned;
        },
        async createStream({ name }) {
            const stream = await io.interop.createStream(name, {
                subscriptionRequestHandler: (request) => {
                    request.accept();
                    emit({ event: "stream-subscribed", name, args: request.arguments });
                },
            });
            streams.set(name, stream);
            return true;
        },
        async push({ name, data }) {
            streams.get(name).push(data);
            return true;
        },
        async subscribe({ name, args }) {
            const sub = await io.interop.subscribe(name, { arguments: args, waitTimeoutMs: 10000 });
            sub.onData((d) => emit({ event: "stream-data", name, data: d.data }));
            return true;
        },
        async ctxSubscribe({ name }) {
            await io.contexts.subscribe(name, (data) => emit({ event: "ctx", name, data }));
            return true;
        },
        async ctxUpdate({ name, data }) {
            await io.contexts.update(name, data);
            return true;
        },
        async ctxSetPaths({ name, paths }) {
            await io.contexts.setPaths(name, paths);
            return true;
        },
        async gatewayToken() {
            return io.connection.authToken();
        },
        async ctxAll() {
            return io.contexts.all();
        },
        async busSubscribe({ topic }) {
            await io.bus.subscribe(topic, (data, t) => emit({ event: "bus", topic: t, data }));
            return true;
        },
        async busPublish({ topic, data }) {
            io.bus.publish(topic, data);
            return true;
        },
    };
    serve(io, commands);
}

run(main, "peer");
