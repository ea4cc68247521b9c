"use strict";
// Connection and authentication: hello with access-token and with secret (user + password), the
// resolved identity, bad credentials rejected, clean logout (done()) seen by the others.
const { run, sleep, ident, errMsg, within } = require("../lib/harness");

async function main(t) {
    const flavor = t.a;
    const byToken = await t.connect(flavor, { application: `compat-token-${t.uid}`, auth: { token: t.token } });
    const bySecret = await t.connect(flavor, { application: `compat-secret-${t.uid}`, auth: { username: "someone", password: t.token } });
    const A = ident(byToken.interop.instance);
    const S = ident(bySecret.interop.instance);
    const until = async (cond, ms = 3000) => {
        const t0 = Date.now();
        while (!cond() && Date.now() - t0 < ms) await sleep(20);
        return cond();
    };

    await t.section("identity", async () => {
        t.check("application as configured (token)", A.application, `compat-token-${t.uid}`);
        t.check("application as configured (secret)", S.application, `compat-secret-${t.uid}`);
        t.ok("peer ids assigned and distinct", A.peerId && S.peerId && A.peerId !== S.peerId, { A: A.peerId, S: S.peerId });
        t.ok("instance ids assigned and distinct", A.instance && S.instance && A.instance !== S.instance, { A: A.instance, S: S.instance });
        t.check("pid is this process", A.pid, process.pid);
        t.ok("user is set", typeof A.user === "string" && A.user.length > 0, A.user);
        t.ok("machine is set", typeof A.machine === "string" && A.machine.length > 0, A.machine);
        t.check("both logins map to the same user (so they see each other)", S.user, A.user);
        t.check("the connection's resolved identity matches", byToken.connection?.resolvedIdentity?.application, A.application);
    });

    await t.section("peers see each other", async () => {
        t.ok("token peer lists the secret peer", await until(() => byToken.interop.servers().some((s) => s.peerId === S.peerId)), byToken.interop.servers().map((s) => s.application));
        t.ok("secret peer lists the token peer", await until(() => bySecret.interop.servers().some((s) => s.peerId === A.peerId)), bySecret.interop.servers().map((s) => s.application));
        await bySecret.interop.register(t.n("hello"), (args) => ({ hi: args.name }));
        const r = await byToken.interop.invoke(t.n("hello"), { name: "x" }, "best", { waitTimeoutMs: 3000 });
        t.check("invoke across the two logins", r.returned, { hi: "x" });
    });

    await t.section("bad credentials", async () => {
        for (const [label, auth] of [
            ["wrong token", { token: "not-the-token" }],
            ["wrong password", { username: "someone", password: "not-the-token" }],
        ]) {
            const t0 = Date.now();
            let outcome;
            try {
                const api = await within(8000, t.connect(flavor, { application: `compat-bad-${t.uid}`, auth, timeoutMs: 8000 }), "bad login");
                outcome = { connected: true };
                api.done().catch(() => undefined);
            } catch (e) {
                outcome = { rejected: errMsg(e) };
            }
            t.ok(`${label}: connect rejects`, !!outcome.rejected && !outcome.rejected.includes("timed out"), outcome);
            t.ok(`${label}: promptly (< 3 s)`, Date.now() - t0 < 3000, { elapsed: Date.now() - t0 });
        }
        t.ok("no peer from the bad logins", !byToken.interop.servers().some((s) => s.application === `compat-bad-${t.uid}`));
    });

    await t.section("logout", async () => {
        const removed = [];
        byToken.interop.serverRemoved((s) => removed.push(s.peerId));
        await bySecret.done();
        t.ok("done() → serverRemoved at the other peer", await until(() => removed.includes(S.peerId)), removed);
        t.check("its method is gone", byToken.interop.methods({ name: t.n("hello") }).length, 0);
    });
}

run(__filename, { main });
