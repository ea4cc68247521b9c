"use strict";
// An io.Connect app in Node (the real @interopio/core) that speaks FDC3 the way io.Connect's
// FDC3 layer writes it into contexts (docs/FDC3.md, "The wire"), checking every context with
// the real @finos/fdc3 2.2 types (its generated Convert functions) and reporting the standard's
// error enums. Driven by test_fdc3_js.py over JSON lines (tests/compat/lib/linepeer.js).
//
// @finos/fdc3 2.2.0's package entry imports its parts without file extensions, which Node's
// ES module loader refuses; the two parts used here are self-contained and imported directly.
const path = require("path");
const { emit, serve, run } = require(path.join(__dirname, "..", "compat", "lib", "linepeer"));

const COMPAT = process.env.COMPAT_DIR;
const IO = require(path.join(COMPAT, "node_modules", "@interopio", "core"));
const FINOS = path.join(COMPAT, "node_modules", "@finos");

const CONTROL = "T42.FDC3.Client.Control";
const PRIVATE = "___privateFDC3Channel___";
const encode = (type) => type.split(".").join("&");
const decode = (key) => key.split("&").join(".");

async function main() {
    const { Convert } = await import(path.join(FINOS, "fdc3-context/dist/generated/context/ContextTypes.js"));
    const Errors = await import(path.join(FINOS, "fdc3-standard/dist/src/api/Errors.js"));
    // the FDC3 type check: Convert.to<Type> throws for a context that does not fit its type
    const checked = (context) => {
        const converter = {
            "fdc3.instrument": Convert.toInstrument,
            "fdc3.contact": Convert.toContact,
        }[context.type] || Convert.toContext;
        converter(JSON.stringify(context));
        return context;
    };
    const io = await IO({
        application: "js-fdc3",
        gateway: { ws: process.env.HUB_URL, reconnectAttempts: 1 },
        auth: { token: process.env.HUB_TOKEN },
        insights: false,
        logger: "error",
    });
    const commands = {
        async errors() {
            const out = {};
            for (const name of ["ChannelError", "OpenError", "ResolveError", "ResultError"]) out[name] = Errors[name];
            return out;
        },
        // follow a channel's context (a colour channel's ___channel___<Name>, or an app
        // channel's id): every change that names a latest FDC3 type reports that context
        async listen({ name }) {
            await io.contexts.subscribe(name, (data) => {
                const latest = data && data.latest_fdc3_type;
                const entry = latest && data.data && data.data["fdc3_" + latest];
                if (!entry) return;
                const context = checked({ ...entry, type: decode(latest) });
                emit({ event: "fdc3", name, context, value: data });
            });
            return true;
        },
        // broadcast as io.Connect's FDC3 layer does: one setPaths of the type's entry and
        // latest_fdc3_type
        async broadcast({ name, context }) {
            const { type, ...rest } = checked(context);
            await io.contexts.setPaths(name, [
                { path: "data.fdc3_" + encode(type), value: rest },
                { path: "latest_fdc3_type", value: encode(type) },
            ]);
            return true;
        },
        async get({ name }) {
            return await io.contexts.get(name);
        },
        // ---- private channels as io.Connect's FDC3 layer keeps them: the context
        // ___privateFDC3Channel___<id> with creatorId, clientId, disconnected and
        // contextListenerTypes; each event is an invocation of T42.FDC3.Client.Control on
        // the other party, {action, payload: {channelId, clientId, contextType?,
        // replayContextTypes?}}, clientId being the party invoked
        async me() {
            return io.interop.instance.instance;
        },
        // what every FDC3 app serves: each invocation is reported as it arrived
        async serveControl() {
            await io.interop.register(CONTROL, (args) => {
                emit({ event: "control", args });
                return {};
            });
            return true;
        },
        // an intent handler that creates a private channel and returns it in io.Connect's
        // form of a channel result
        async serveStreamIntent({ intent }) {
            await io.interop.register({ name: "Tick42.FDC3.Intents." + intent, flags: { intent: {} } }, async () => {
                const id = PRIVATE + Math.random().toString(36).slice(2);
                await io.contexts.update(id, { creatorId: io.interop.instance.instance });
                emit({ event: "created", channelId: id });
                return { id, type: "private", isChannel: true };
            });
            return true;
        },
        // an intent handler declaring resultType (io.Connect's flags.intent.resultType) that
        // returns the given result, whatever it declared
        async serveTypedIntent({ intent, resultType, result }) {
            await io.interop.register({ name: "Tick42.FDC3.Intents." + intent, flags: { intent: { resultType } } }, async () => result);
            return true;
        },
        // the raiser's side of an intent that returned a private channel: become its clientId
        async raiseForChannel({ intent, context }) {
            const result = await io.interop.invoke("Tick42.FDC3.Intents." + intent, context, "best", { waitTimeoutMs: 10000 });
            const channel = result.returned;
            if (!channel.isChannel || channel.type !== "private") throw new Error("not a private channel: " + JSON.stringify(channel));
            const { creatorId } = await io.contexts.get(channel.id);
            const me = io.interop.instance.instance;
            if (creatorId !== me) await io.contexts.update(channel.id, { clientId: me });
            return channel;
        },
        async privateAddListener({ id, contextType: given }) {
            const contextType = given ?? undefined; // a listener of every type: undefined, as in io.Connect
            const current = await io.contexts.get(id);
            const types = current.contextListenerTypes ? [...current.contextListenerTypes, contextType] : [contextType];
            await io.contexts.update(id, { ...current, contextListenerTypes: types });
            return await control(id, "onAddContextListener", { contextType });
        },
        async privateUnsubscribe({ id, contextType: given }) {
            const contextType = given ?? undefined;
            return await control(id, "onUnsubscribe", { contextType });
        },
        async privateDisconnect({ id }) {
            await io.contexts.update(id, { disconnected: true });
            const { contextListenerTypes } = await io.contexts.get(id);
            return await control(id, "onDisconnect", { replayContextTypes: contextListenerTypes });
        },
    };
    // invoke the control method on the other party of a private channel, as io.Connect does
    async function control(id, action, fields) {
        const { creatorId, clientId } = await io.contexts.get(id);
        const me = io.interop.instance.instance;
        const target = me === clientId ? creatorId : clientId;
        if (!target) return null;
        const payload = { channelId: id, clientId: target, ...fields };
        await io.interop.invoke(CONTROL, { action, payload }, { instance: target }, { waitTimeoutMs: 10000 });
        return payload;
    }
    serve(io, commands);
}

run(main, "fdc3 js peer");
