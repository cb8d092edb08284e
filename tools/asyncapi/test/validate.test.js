// The checker itself: the document parses, good frames pass, drift is caught.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const { checkDocument, checkRecords } = require('../validate');
const { checkExamples } = require('../examples');

const user = { id: '1', username: 'alice', display_name: 'Alice' };
const send = (frame, extra = {}) => ({ dir: 'send', frame, test: 't', conn: 1, ...extra });
const recv = (frame) => ({ dir: 'recv', frame, test: 't', conn: 1 });

test('asyncapi.yaml passes the official parser', async () => {
  assert.deepStrictEqual(await checkDocument(), []);
});

test('a request, its reply (by kind) and an event validate', () => {
  const r = checkRecords([
    send({ type: 'follow.add', id: 1, username: 'bob' }),
    recv({ type: 'event', event: 'follow.new', data: { follower: user }, pos: { epoch: 'e', offset: 1 } }),
    recv({ type: 'ok', id: 1, data: { following: true, changed: true } }),
  ]);
  assert.deepStrictEqual(r.mismatches, []);
  assert.strictEqual(r.counts['follow.add.ok'], 1);
});

test('a reply is checked against the schema of its own request kind', () => {
  const r = checkRecords([send({ type: 'ping', id: 'a' }), recv({ type: 'ok', id: 'a', data: { following: true } })]);
  assert.strictEqual(r.mismatches.length, 1);
  assert.match(r.mismatches[0].errors[0], /additional properties/);
});

test('an undocumented field, a missing pos and a numeric id are mismatches', () => {
  const r = checkRecords([
    recv({ type: 'event', event: 'follow.new', data: { follower: { ...user, extra: 1 } }, pos: { epoch: 'e', offset: 1 } }),
    recv({ type: 'event', event: 'follow.new', data: { follower: user } }),
    send({ type: 'post.get', id: 2, post_id: 5 }),
  ]);
  assert.strictEqual(r.mismatches.length, 3);
});

test('deliberately invalid requests: marked ones pass if the server refused them', () => {
  const bad = { type: 'message.sync', id: 3, since: 'x' };
  const refusal = { type: 'error', id: 3, code: 'bad_request', message: 'invalid' };
  assert.strictEqual(checkRecords([send(bad, { mark: 'expect_error' }), recv(refusal)]).refused, 1);
  assert.strictEqual(checkRecords([send(bad, { mark: 'expect_error' }), recv({ type: 'ok', id: 3, data: {} })]).mismatches.length, 1);
  assert.strictEqual(checkRecords([send('not json', { mark: 'malformed' }), recv({ ...refusal, id: null })]).mismatches.length, 0);
  assert.strictEqual(checkRecords([send(bad), recv(refusal)]).mismatches.length, 1);
});

test("protocol.md's whole-frame examples validate", () => {
  const r = checkExamples(path.join(__dirname, '..', '..', '..', 'protocol.md'));
  assert.deepStrictEqual(r.mismatches.map((m) => `${m.test}: ${m.errors.join('; ')}`), []);
  assert.ok(r.checked > 50);
});
