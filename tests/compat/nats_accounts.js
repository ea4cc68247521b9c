"use strict";
// Makes a NATS operator, its accounts and their users with NATS's own JWT library
// (@nats-io/jwt, @nats-io/nkeys from tests/compat/node_modules), for the tests of
// federation credentials (tests/integration/test_federation_creds.py): what an admin makes
// with `nsc`, made fresh at test time.
//
// stdin (JSON): {"accounts": [{"name", "users": [{"name", "permissions", "exp"?}]}],
//                "nkey_users": ["name", ...]}
//   permissions: the user JWT's {pub, sub, resp}; exp: seconds since the epoch (a past one
//   makes an expired user). Every account gets JetStream without limits.
// stdout (JSON): {"operator": jwt, "system_account": public key,
//   "accounts": {name: {"public", "jwt"}}, "creds": {user: .creds text},
//   "nkey_users": {name: {"public", "seed"}}} (nkey users: a nats-server without JWTs).
const jwt = require("@nats-io/jwt");
const nkeys = require("@nats-io/nkeys");

const decoder = new TextDecoder();

async function readStdin() {
    const chunks = [];
    for await (const chunk of process.stdin) chunks.push(chunk);
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function account(operator, name, nats) {
    const key = nkeys.createAccount();
    return { key, jwt: await jwt.encodeAccount(name, key, nats, { signer: operator }) };
}

async function main() {
    const spec = await readStdin();
    const operator = nkeys.createOperator();
    const system = await account(operator, "SYS", {});
    const out = {
        operator: await jwt.encodeOperator("jupyter-interop-tests", operator, {
            system_account: system.key.getPublicKey(),
        }),
        system_account: system.key.getPublicKey(),
        accounts: { SYS: { public: system.key.getPublicKey(), jwt: system.jwt } },
        creds: {},
        nkey_users: {},
    };
    const unlimited = { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };
    for (const spaceAccount of spec.accounts || []) {
        const made = await account(operator, spaceAccount.name, {
            limits: { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, conn: -1, leaf: -1, ...unlimited },
        });
        out.accounts[spaceAccount.name] = { public: made.key.getPublicKey(), jwt: made.jwt };
        for (const user of spaceAccount.users) {
            const key = nkeys.createUser();
            const opts = user.exp ? { exp: user.exp } : {};
            const token = await jwt.encodeUser(user.name, key, made.key, user.permissions || {}, opts);
            out.creds[user.name] = decoder.decode(jwt.fmtCreds(token, key));
        }
    }
    for (const name of spec.nkey_users || []) {
        const key = nkeys.createUser();
        out.nkey_users[name] = { public: key.getPublicKey(), seed: decoder.decode(key.getSeed()) };
    }
    process.stdout.write(JSON.stringify(out));
}

main().catch((error) => {
    console.error(error);
    process.exit(1);
});
