"use strict";
// Harness for the compat scenarios: the real @interopio/core and @glue42/core clients against a hub.
//
// A scenario file calls `run({main, roles})`.  Started without `--child`, it runs `main(t)`: the
// coordinating process, holding client A (flavor `--a`).  `t.spawn(role)` starts the same file again
// as `--child ROLE` (flavor `--b` by default) in a separate Node process, so peers can be killed.
// Children talk to the main process through JSON lines: children write `@@compat {"t","d"}` on
// stdout; the main process writes `{"t","d"}` lines on the child's stdin.  Library logs may also go
// to stdout/stderr, so only lines with the marker count.
//
// The main process records checks (`t.check(name, actual, expected)`), groups them in sections
// (an exception or a timeout in a section fails that section and the scenario moves on), and
// prints one line `@@result {...}` at the end, which the pytest driver asserts on.

const path = require("path");
const util = require("util");
const readline = require("readline");
const { spawn } = require("child_process");

const MARK = "@@compat ";
const RESULT_MARK = "@@result ";
const PACKAGES = { interopio: "@interopio/core", glue42: "@glue42/core" };

function parseArgs(argv) {
    const out = {};
    for (let i = 0; i < argv.length; i++) {
        if (argv[i].startsWith("--")) {
            const key = argv[i].slice(2);
            const next = argv[i + 1];
            if (next === undefined || next.startsWith("--")) {
                out[key] = true;
            } else {
                out[key] = next;
                i++;
            }
        }
    }
    return out;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class TimeoutError extends Error {}

function within(ms, promise, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(`timed out after ${ms} ms waiting for ${what}`)), ms);
    });
    return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

/** The message of whatever a client rejected with (Error, string, or invocation-result object). */
function errMsg(e) {
    if (e === undefined || e === null) return String(e);
    if (typeof e === "string") return e;
    if (e.err) return errMsg(e.err);
    if (typeof e.message === "string") return e.message;
    if (typeof e.reason === "string") return e.reason;
    try {
        return JSON.stringify(e);
    } catch {
        return String(e);
    }
}

/** A JSON-safe copy (drops functions, undefined, cycles become "[cycle]"). */
function plain(value) {
    if (value === undefined) return null;
    const seen = new WeakSet();
    return JSON.parse(
        JSON.stringify(value, (k, v) => {
            if (typeof v === "function") return undefined;
            if (v && typeof v === "object") {
                if (seen.has(v)) return "[cycle]";
                seen.add(v);
            }
            return v;
        })
    );
}

function deepEqual(a, b) {
    return util.isDeepStrictEqual(plain(a), plain(b));
}

/** Identity fields that survive JSON, for comparing instances across processes. */
function ident(inst) {
    if (!inst) return null;
    return {
        application: inst.application,
        instance: inst.instance,
        peerId: inst.peerId,
        pid: inst.pid,
        machine: inst.machine,
        user: inst.user,
    };
}

/** A list of items with waiters: `take` consumes the first matching item, `waitFor` does not. */
class Inbox {
    constructor() {
        this.items = [];
        this.waiters = [];
        this.closed = null;
    }
    push(item) {
        this.items.push(item);
        for (const w of [...this.waiters]) {
            if (w.pred(item)) {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                if (w.consume) this.items.splice(this.items.indexOf(item), 1);
                w.resolve(item);
                if (w.consume) return;
            }
        }
    }
    close(reason) {
        this.closed = reason;
        for (const w of this.waiters.splice(0)) w.reject(new Error(reason));
    }
    _wait(pred, ms, what, consume) {
        const idx = this.items.findIndex(pred);
        if (idx >= 0) {
            const item = this.items[idx];
            if (consume) this.items.splice(idx, 1);
            return Promise.resolve(item);
        }
        if (this.closed) return Promise.reject(new Error(`${this.closed} (while waiting for ${what})`));
        let waiter;
        const p = new Promise((resolve, reject) => {
            waiter = { pred, resolve, reject, consume };
            this.waiters.push(waiter);
        });
        return within(ms, p, what).catch((e) => {
            const i = this.waiters.indexOf(waiter);
            if (i >= 0) this.waiters.splice(i, 1);
            throw e;
        });
    }
    take(pred, ms, what) {
        return this._wait(pred, ms, what, true);
    }
    waitFor(pred, ms, what) {
        return this._wait(pred, ms, what, false);
    }
    filter(pred) {
        return this.items.filter(pred);
    }
}

async function connect(flavor, opts) {
    const pkg = PACKAGES[flavor];
    if (!pkg) throw new Error(`unknown client flavor ${flavor}`);
    const factory = require(pkg);
    // Default: @interopio/core logs in with an access token, @glue42/core with user + password
    // (both carry the hub token), so the matrix exercises both hello authentication methods.
    const auth =
        opts.auth ??
        (flavor === "interopio" ? { token: opts.token } : { username: "compat", password: opts.token });
    const config = {
        application: opts.application,
        gateway: { ws: opts.url, reconnectAttempts: 1, reconnectInterval: 500 },
        auth,
        bus: !!opts.bus,
        logger: opts.logger ?? "error",
    };
    if (flavor === "interopio") {
        // In Node, @interopio/core otherwise invokes "T42.Otel.GetConfig" at start (waitTimeoutMs 0)
        // and logs a warning when nobody offers it.
        config.insights = false;
    }
    const api = await within(opts.timeoutMs ?? 10000, factory(config), `${flavor} client to connect`);
    return api;
}

// ---------------------------------------------------------------------------------------------
// main side

class Peer {
    constructor(role, flavor, proc) {
        this.role = role;
        this.flavor = flavor;
        this.proc = proc;
        this.inbox = new Inbox();
        this.stderr = [];
        this.exited = new Promise((resolve) => {
            proc.on("exit", (code, signal) => {
                this.exitInfo = { code, signal };
                this.inbox.close(`peer ${role} exited (code ${code}, signal ${signal})`);
                resolve(this.exitInfo);
            });
        });
        readline.createInterface({ input: proc.stdout }).on("line", (line) => {
            const i = line.indexOf(MARK);
            if (i < 0) return;
            try {
                this.inbox.push(JSON.parse(line.slice(i + MARK.length)));
            } catch (e) {
                this.stderr.push(`bad line from peer: ${line}`);
            }
        });
        readline.createInterface({ input: proc.stderr }).on("line", (line) => {
            this.stderr.push(line);
            if (this.stderr.length > 40) this.stderr.shift();
        });
    }
    send(type, data) {
        if (this.proc.stdin.writable) this.proc.stdin.write(JSON.stringify({ t: type, d: data ?? null }) + "\n");
    }
    /** Next message of `type` from the peer (consumed), optionally the next one whose data matches `pred`. */
    async next(type, ms = 8000, pred = () => true) {
        const msg = await this.inbox.take((m) => m.t === type && pred(m.d), ms, `"${type}" from peer ${this.role}`);
        return msg.d;
    }
    /** Send a command and wait for its reply (the role's handler result or error). */
    async call(type, data, ms = 8000) {
        this.send(type, data);
        const msg = await this.inbox.take(
            (m) => m.t === `${type}:done` || m.t === `${type}:error`,
            ms,
            `reply to "${type}" from peer ${this.role}`
        );
        if (msg.t.endsWith(":error")) throw new Error(`peer ${this.role} failed "${type}": ${msg.d}`);
        return msg.d;
    }
    kill(signal = "SIGKILL") {
        if (!this.exitInfo) this.proc.kill(signal);
        return this.exited;
    }
}

class Scenario {
    constructor(file, args) {
        this.file = file;
        this.args = args;
        this.name = path.basename(file, ".js");
        this.a = args.a || "interopio";
        this.b = args.b || this.a;
        this.url = args.url;
        this.token = args.token;
        this.uid = args.uid || Math.random().toString(36).slice(2, 8);
        this.checks = [];
        this.warnings = [];
        this.peers = [];
        this.clients = [];
        this.currentSection = null;
        this.lastStep = null;
        this.started = Date.now();
    }
    /** A name unique to this run: compat.<uid>.<suffix> */
    n(suffix) {
        return `compat.${this.uid}.${suffix}`;
    }
    async connect(flavor, opts = {}) {
        const api = await connect(flavor || this.a, { url: this.url, token: this.token, ...opts });
        this.clients.push(api);
        return api;
    }
    async spawn(role, opts = {}) {
        const flavor = opts.flavor || this.b;
        const argv = [
            this.file,
            "--child", role,
            "--flavor", flavor,
            "--url", this.url,
            "--token", this.token,
            "--uid", this.uid,
            "--a", this.a,
            "--b", this.b,
        ];
        const proc = spawn(process.execPath, argv, { stdio: ["pipe", "pipe", "pipe"] });
        const peer = new Peer(role, flavor, proc);
        this.peers.push(peer);
        if (opts.wait !== false) {
            const ready = await peer.next("ready", opts.readyMs ?? 10000).catch((e) => {
                throw new Error(`${e.message}; stderr: ${peer.stderr.slice(-5).join(" | ")}`);
            });
            peer.ready = ready;
        }
        return peer;
    }
    _record(entry) {
        if (this.currentSection) entry.name = `${this.currentSection}: ${entry.name}`;
        this.checks.push(entry);
        return entry.ok;
    }
    check(name, actual, expected) {
        const ok = deepEqual(actual, expected);
        return this._record({ name, ok, actual: plain(actual), expected: plain(expected) });
    }
    ok(name, cond, detail) {
        return this._record({ name, ok: !!cond, detail: plain(detail) });
    }
    /** Checks that `promise` rejects and that the message contains `substring`. */
    async rejects(name, promise, substring, note) {
        const extra = note ? { note } : {};
        try {
            const value = await promise;
            return this._record({ name, ok: false, detail: { resolved: plain(value), expectedRejection: substring }, ...extra });
        } catch (e) {
            const message = errMsg(e);
            return this._record({
                name,
                ok: message.includes(substring),
                actual: message,
                expected: `a rejection containing ${JSON.stringify(substring)}`,
                ...extra,
            });
        }
    }
    /** Marks progress inside a section, so that a timeout says where it was stuck. */
    step(label) {
        this.lastStep = label;
    }
    async section(name, fn, ms = 10000) {
        const prev = this.currentSection;
        this.currentSection = name;
        this.lastStep = null;
        const t0 = Date.now();
        try {
            await within(ms, fn(), `section "${name}"`);
        } catch (e) {
            const where = this.lastStep ? ` (last step: ${this.lastStep})` : "";
            this._record({ name: "section completed", ok: false, error: errMsg(e) + where, stack: e?.stack });
        } finally {
            this.currentSection = prev;
            this.sectionTimes = this.sectionTimes || {};
            this.sectionTimes[name] = Date.now() - t0;
        }
    }
    result(extra) {
        return {
            scenario: this.name,
            a: this.a,
            b: this.b,
            uid: this.uid,
            elapsed_ms: Date.now() - this.started,
            section_ms: this.sectionTimes || {},
            checks: this.checks,
            warnings: this.warnings,
            peers_stderr: Object.fromEntries(this.peers.map((p, i) => [`${i}:${p.role}`, p.stderr.slice(-10)])),
            ...extra,
        };
    }
}

function emitResult(result) {
    process.stdout.write(RESULT_MARK + JSON.stringify(result) + "\n");
}

async function runMain(file, args, main) {
    const t = new Scenario(file, args);
    const deadline = Number(args["deadline-ms"] || 25000);
    let finished = false;
    const finish = (extra) => {
        if (finished) return;
        finished = true;
        for (const p of t.peers) p.kill("SIGKILL");
        emitResult(t.result(extra));
        // Give stdout a moment to flush, then exit without waiting for the clients' timers.
        setTimeout(() => process.exit(0), 50);
    };
    setTimeout(() => finish({ complete: false, error: `scenario deadline of ${deadline} ms exceeded` }), deadline).unref();
    // Reported, not failed: the client libraries themselves leave some rejections unhandled
    // (for example @interopio/core after a refused login).
    process.on("unhandledRejection", (e) => {
        t.warnings.push(`unhandled rejection (section ${t.currentSection}): ${errMsg(e)}`);
    });
    try {
        if (!t.url) throw new Error("--url is required");
        await main(t);
        finish({ complete: true });
    } catch (e) {
        finish({ complete: false, error: errMsg(e), stack: e?.stack });
    }
}

// ---------------------------------------------------------------------------------------------
// child side

async function runChild(file, args, roles) {
    const role = args.child;
    const fn = roles[role];
    const out = (t, d) => process.stdout.write(MARK + JSON.stringify({ t, d: plain(d) }) + "\n");
    const inbox = new Inbox();
    readline.createInterface({ input: process.stdin }).on("line", (line) => {
        try {
            inbox.push(JSON.parse(line));
        } catch {
            /* ignore */
        }
    });
    process.stdin.on("end", () => process.exit(0)); // main process went away
    const ctx = {
        role,
        flavor: args.flavor,
        a: args.a,
        b: args.b,
        url: args.url,
        token: args.token,
        uid: args.uid,
        n: (suffix) => `compat.${args.uid}.${suffix}`,
        emit: out,
        api: null,
        async connect(opts = {}) {
            ctx.api = await connect(args.flavor, { url: args.url, token: args.token, ...opts });
            return ctx.api;
        },
        /** Next command of `type` from the main process. */
        async next(type, ms = 20000) {
            const msg = await inbox.take((m) => m.t === type, ms, `command "${type}"`);
            return msg.d;
        },
        /** Serve commands: handlers[type](data) → reply `type:done` with the result, or `type:error`. */
        async serve(handlers) {
            for (;;) {
                const msg = await inbox.take(() => true, 3600e3, "a command");
                if (msg.t === "exit") {
                    if (ctx.api) await within(3000, ctx.api.done(), "done()").catch(() => undefined);
                    out("exit:done", null);
                    setTimeout(() => process.exit(0), 20);
                    return;
                }
                const h = handlers[msg.t];
                if (!h) {
                    out(`${msg.t}:error`, `no handler for command ${msg.t}`);
                    continue;
                }
                Promise.resolve()
                    .then(() => h(msg.d))
                    .then(
                        (r) => out(`${msg.t}:done`, r ?? null),
                        (e) => out(`${msg.t}:error`, errMsg(e))
                    );
            }
        },
    };
    if (!fn) {
        process.stderr.write(`unknown role ${role}\n`);
        process.exit(2);
    }
    try {
        await fn(ctx);
    } catch (e) {
        out("fatal", errMsg(e));
        process.stderr.write(`role ${role} failed: ${e?.stack || errMsg(e)}\n`);
        process.exit(1);
    }
}

function run(file, { main, roles = {} }) {
    const args = parseArgs(process.argv.slice(2));
    if (args.child) return runChild(file, args, roles);
    return runMain(file, args, main);
}

module.exports = { run, sleep, within, errMsg, plain, deepEqual, ident, Inbox, TimeoutError };
