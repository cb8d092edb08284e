// Ports for the processes the JavaScript tests start (hubbub nodes,
// redis-server, nginx); shared by web-tests and clients/js/test.
//
// A port taken with listen(0) and released comes from the kernel's
// ephemeral range, where every outgoing connection's local port comes from
// too. Between the release and the child's own bind, a connection the box
// opens (a node to Cassandra, to Redis) can take it: CI saw nginx fail with
// "Address already in use" after the nodes had opened their CQL pools.
// Ports below the ephemeral range are never handed out by the kernel, so
// only another listener can hold one; we check that by binding, and no two
// callers in this process get the same port.
'use strict';
const fs = require('node:fs');
const net = require('node:net');

const LOW = 15000;

/** The kernel's ephemeral range, [first, last]. */
function ephemeralRange() {
  try {
    const [a, b] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (a > 0 && b >= a) return [a, b];
  } catch { /* not Linux: the usual defaults */ }
  return [32768, 60999];
}

function canListen(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function kernelPort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

let next = 0;

/** A loopback port that is free now and outside the kernel's ephemeral
 * range, so nothing but another listener can take it before the caller's
 * child binds it. */
async function freePort() {
  const [ephLo, ephHi] = ephemeralRange();
  const [lo, hi] = ephLo >= LOW + 2000 ? [LOW, ephLo] : [ephHi + 1, 65536];
  if (hi <= lo + 100) return kernelPort();
  const span = hi - lo;
  // Start where another test process is unlikely to be.
  if (next === 0) next = 1 + ((process.pid * 7919) % span);
  for (let i = 0; i < span; i++) {
    const port = lo + (next++ % span);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free loopback port in ${lo}..${hi}`);
}

module.exports = { freePort };
