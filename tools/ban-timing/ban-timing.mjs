// Measures how long `hubbub admin ban` takes to close a user's sockets on
// every node (issue 16: "within a second"). Not a test: it prints figures.
//
//   node --experimental-websocket tools/ban-timing/ban-timing.mjs \
//     --nodes ws://127.0.0.1:9451/ws,ws://127.0.0.1:9452/ws \
//     --hubbub target/release/hubbub --data-dir DIR --redis redis://127.0.0.1:9450 \
//     [--sockets 20] [--runs 5]
//
// Each run registers a fresh user, opens --sockets sockets for it spread
// over the nodes (authenticated with auth.token), starts the admin ban
// command, and records when each socket sees close code 4501, measured
// from the command's start and from its exit (the command's own start-up
// and store opening are in the first figure, not in the second).
import { spawn } from "node:child_process";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const nodes = args.nodes.split(",");
const sockets = Number(args.sockets ?? 20);
const runs = Number(args.runs ?? 5);
const WAIT_MS = 15000;

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => reject(new Error(`connect ${url}: timeout`)), WAIT_MS);
    ws.onopen = () => { clearTimeout(timer); resolve(ws); };
    ws.onerror = (e) => { clearTimeout(timer); reject(new Error(`connect ${url}: ${e.message ?? "error"}`)); };
  });
}

function request(ws, frame) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${frame.type}: no reply`)), WAIT_MS);
    ws.onmessage = (m) => {
      const f = JSON.parse(m.data);
      if (f.id !== frame.id) return;
      clearTimeout(timer);
      f.type === "ok" ? resolve(f.data) : reject(new Error(`${frame.type}: ${f.code} ${f.message}`));
    };
    ws.send(JSON.stringify(frame));
  });
}

function admin(user) {
  return new Promise((resolve, reject) => {
    const cmd = [
      "admin", "ban", user, "--reason", "timing", "--data-dir", args["data-dir"],
      ...(args.redis ? ["--redis", args.redis] : []), ...(args.scylla ? ["--scylla", args.scylla] : []),
    ];
    const p = spawn(args.hubbub, cmd, { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => (err += d));
    p.on("exit", (code) => (code === 0 ? resolve(performance.now()) : reject(new Error(`admin ban: ${code} ${err}`))));
  });
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run(i) {
  const user = `bt${Date.now().toString(36)}${i}`;
  const first = await open(nodes[0]);
  const reg = await request(first, { type: "auth.register", id: 1, username: user, password: "password123" });
  const all = [first];
  for (let k = 1; k < sockets; k++) {
    const ws = await open(nodes[k % nodes.length]);
    await request(ws, { type: "auth.token", id: 1, token: reg.access_token });
    all.push(ws);
  }
  const closed = all.map((ws) => new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ at: Infinity, code: 0 }), WAIT_MS);
    ws.onclose = (e) => { clearTimeout(timer); resolve({ at: performance.now(), code: e.code }); };
  }));
  const started = performance.now();
  const exited = await admin(user);
  const ends = await Promise.all(closed);
  const wrong = ends.filter((e) => e.code !== 4501).length;
  const fromStart = ends.map((e) => e.at - started).sort((a, b) => a - b);
  const fromExit = ends.map((e) => e.at - exited).sort((a, b) => a - b);
  console.log(
    `run ${i + 1}: ${all.length} sockets on ${nodes.length} nodes; admin command ${(exited - started).toFixed(0)} ms; ` +
      `last close ${fromStart.at(-1).toFixed(0)} ms after the command started, ` +
      `${fromExit.at(-1).toFixed(0)} ms after it exited (p50 ${pct(fromExit, 50).toFixed(0)} ms); ` +
      `not closed with 4501: ${wrong}`,
  );
  return { last: fromStart.at(-1), lastAfterExit: fromExit.at(-1), wrong };
}

const results = [];
for (let i = 0; i < runs; i++) results.push(await run(i));
const worst = Math.max(...results.map((r) => r.last));
console.log(`worst last close: ${worst.toFixed(0)} ms after the ban command started; ` +
  `sockets not closed with 4501: ${results.reduce((n, r) => n + r.wrong, 0)}`);
process.exit(0);
