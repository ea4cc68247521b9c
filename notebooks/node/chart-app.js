"use strict";
// A chart app written with the real io.Connect client (@interopio/core) that handles the intent
// ViewChart for fdc3.instrument contexts, as an io.Connect app's intents.addIntentListener does
// on the wire. 06-node-intents.ipynb starts it; notebooks find it with `%interop intents` and
// raise to it with `%interop intent raise ViewChart ...`.
//
//   intent  ViewChart {type: "fdc3.instrument", id: {ticker}}
//           -> {type: "fdc3.chart", ticker, days, last, from: "node"}

const { connect, run, intentMethod } = require("./hub");

const DAYS = 30;

// Made-up daily closes: the same ticker always gives the same prices.
function closes(ticker) {
    let seed = [...ticker].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
    const next = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32;
    let price = 50 + 450 * next();
    return Array.from({ length: DAYS }, () => +(price *= 1 + (next() - 0.5) / 25).toFixed(2));
}

async function main() {
    const io = await connect("node-chart-app");
    const definition = {
        name: intentMethod("ViewChart"),
        flags: { intent: { contextTypes: ["fdc3.instrument"], displayName: "Node chart" } },
    };
    await io.interop.register(definition, (context, caller) => {
        const ticker = context?.id?.ticker;
        if (typeof ticker !== "string") throw new Error("the context needs id.ticker");
        const series = closes(ticker);
        console.log(`charting ${ticker} for ${caller.application}`);
        return { type: "fdc3.chart", ticker, days: series.length, last: series[series.length - 1], from: "node" };
    });
    console.log("chart app ready");

    const stop = async () => {
        await io.done();
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
}

run(main);
