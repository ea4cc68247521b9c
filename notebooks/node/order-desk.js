"use strict";
// An "order desk" written with the real io.Connect client (@interopio/core), talking to the
// Jupyter interop hub exactly as it would talk to io.Connect Desktop. 04-node-app.ipynb starts it.
//
//   method  Node.OrderDesk.Quote {symbol}        -> {symbol, bid, ask, from}
//   method  Node.OrderDesk.PortfolioValue {}     -> values the shared context "jupyter.portfolio"
//   stream  Node.OrderDesk.Trades                -> {symbol, price, qty, seq}
//   bus     orders.new {symbol, qty}             -> asks the notebook's Python.Risk.Check method,
//                                                   then publishes orders.ack {id, symbol, qty, approved, reason}
//
// It reaches the hub as hub.js says (the URL and token the notebook kernel inherited from Jupyter).

const { connect, run } = require("./hub");

const PRICES = { AAPL: 189.5, MSFT: 411.2, NVDA: 121.3 };

async function main() {
    const io = await connect("node-order-desk", { bus: true }); // pub/sub is off by default

    await io.interop.register("Node.OrderDesk.Quote", ({ symbol }) => {
        const mid = PRICES[symbol];
        if (mid === undefined) throw new Error(`unknown symbol ${symbol}`);
        return { symbol, bid: +(mid - 0.05).toFixed(2), ask: +(mid + 0.05).toFixed(2), from: "node" };
    });

    await io.interop.register("Node.OrderDesk.PortfolioValue", async () => {
        const portfolio = await io.contexts.get("jupyter.portfolio");
        let total = 0;
        const lines = [];
        for (const [symbol, qty] of Object.entries(portfolio)) {
            const value = +((PRICES[symbol] ?? 0) * qty).toFixed(2);
            lines.push({ symbol, qty, value });
            total += value;
        }
        return { lines, total: +total.toFixed(2) };
    });

    const trades = await io.interop.createStream("Node.OrderDesk.Trades");
    let seq = 0;
    const timer = setInterval(() => {
        const symbols = Object.keys(PRICES);
        const symbol = symbols[seq % symbols.length];
        PRICES[symbol] = +(PRICES[symbol] * (1 + (Math.random() - 0.5) / 500)).toFixed(2);
        trades.push({ symbol, price: PRICES[symbol], qty: 10 * (1 + (seq % 5)), seq: seq++ });
    }, 100);

    let nextId = 1;
    await io.bus.subscribe("orders.new", async (order) => {
        const id = nextId++;
        let approved = false;
        let reason = "";
        try {
            const check = await io.interop.invoke("Python.Risk.Check", order, "best", {
                waitTimeoutMs: 5000,
                methodResponseTimeoutMs: 10000,
            });
            approved = !!check.returned.approved;
            reason = check.returned.reason ?? "";
        } catch (error) {
            reason = `risk check failed: ${error.message ?? error}`;
        }
        io.bus.publish("orders.ack", { id, symbol: order.symbol, qty: order.qty, approved, reason });
    });

    console.log("order desk ready");

    const stop = async () => {
        clearInterval(timer);
        await io.done();
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}

run(main);
